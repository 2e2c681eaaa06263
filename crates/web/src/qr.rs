//! QR codes as SVG and PNG (the security token's `otpauth://` URI; a service location's
//! consent code, ADR 0018).

use ehrshare_app::AppError;
use qrcode::render::svg;
use qrcode::{Color, QrCode};

fn code(text: &str) -> Result<QrCode, AppError> {
    QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| AppError::Internal(e.to_string().into()))
}

/// `text` as an SVG QR code (medium error correction, dark on light, with its quiet zone).
pub fn svg(text: &str) -> Result<String, AppError> {
    Ok(code(text)?
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

/// The quiet zone around a code, in modules (ISO/IEC 18004 asks for 4).
const QUIET: usize = 4;

/// `text` as a PNG QR code: 8-bit greyscale, `scale` pixels a module, with its quiet zone.
pub fn png(text: &str, scale: usize) -> Result<Vec<u8>, AppError> {
    let code = code(text)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * scale;
    let mut pixels = vec![0xffu8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c != Color::Dark {
            continue;
        }
        let (x, y) = ((i % modules + QUIET) * scale, (i / modules + QUIET) * scale);
        for row in y..y + scale {
            pixels[row * side + x..row * side + x + scale].fill(0);
        }
    }
    let internal = |e: png::EncodingError| AppError::Internal(Box::new(e));
    let mut out = Vec::new();
    let side32 = u32::try_from(side).map_err(|e| AppError::Internal(Box::new(e)))?;
    let mut encoder = png::Encoder::new(&mut out, side32, side32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(internal)?;
    writer.write_image_data(&pixels).map_err(internal)?;
    writer.finish().map_err(internal)?;
    Ok(out)
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

    #[test]
    fn a_png_image_of_the_code_with_its_quiet_zone() {
        let bytes = super::png("ehrshare:location:1.abc.def", 4).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.width, info.height);
        let side = info.width as usize;
        // The quiet zone is white; the top-left finder pattern's corner is black.
        assert_eq!(buf[0], 0xff);
        assert_eq!(
            buf[16 * side + 16],
            0,
            "the first module after 4 quiet ones"
        );
        assert_eq!(side % 4, 0);
    }
}
