//! QR codes as SVG (the security token's `otpauth://` URI; later the vaccination record).

use ehrshare_app::AppError;
use qrcode::QrCode;
use qrcode::render::svg;

/// `text` as an SVG QR code (medium error correction, dark on light, with its quiet zone).
pub fn svg(text: &str) -> Result<String, AppError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| AppError::Internal(e.to_string().into()))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_svg_document() {
        let s = super::svg("otpauth://totp/ehrshare:chan?secret=ABC").unwrap();
        assert!(
            s.starts_with("<?xml") && s.contains("<svg") && s.ends_with("</svg>"),
            "{s}"
        );
    }
}
