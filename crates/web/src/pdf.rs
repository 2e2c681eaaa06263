//! A printable summary of one's own record as PDF (issue 27, item 2).
//!
//! The text is set in Adobe's standard Traditional Chinese font `MSung-Light` (collection
//! Adobe-CNS1, encoding `UniCNS-UCS2-H`), which PDF readers supply themselves: nothing is
//! embedded, so the file stays a few kilobytes and the server needs no font. A `ToUnicode`
//! map makes the text searchable and extractable (`pdftotext`) exactly as written. Characters
//! beyond the Basic Multilingual Plane, which the encoding cannot carry, print as `?`.

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str};

/// One line of the summary: its text and its size in points.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: String,
    pub size: f32,
}

impl Line {
    pub fn title(text: impl Into<String>) -> Line {
        Line {
            text: text.into(),
            size: 16.0,
        }
    }

    pub fn heading(text: impl Into<String>) -> Line {
        Line {
            text: text.into(),
            size: 12.5,
        }
    }

    pub fn body(text: impl Into<String>) -> Line {
        Line {
            text: text.into(),
            size: 10.0,
        }
    }
}

const A4: (f32, f32) = (595.0, 842.0);
const MARGIN: f32 = 50.0;
const FONT: Name<'static> = Name(b"F1");
/// The first and last CIDs of the collection's Latin glyphs, proportional and half-width.
const HALF_WIDTH_CIDS: [(u16, u16); 2] = [(1, 95), (13648, 13742)];

/// A character as the encoding carries it (UCS-2), and whether it is set full width: only
/// printable ASCII has the collection's half-width glyphs; everything else (CJK, and the few
/// accented letters and symbols Big5 has) is set full width, so that nothing overlaps.
fn code(c: char) -> (u16, bool) {
    let c = if c.is_control() { ' ' } else { c };
    match u16::try_from(u32::from(c)) {
        Ok(u) if !(0xD800..0xE000).contains(&u) => (u, !(0x20..0x7F).contains(&u)),
        _ => (u16::from(b'?'), false),
    }
}

/// `text` broken into lines no wider than `width` points at `size`.
fn wrap(text: &str, size: f32, width: f32) -> Vec<Vec<u16>> {
    let mut lines = vec![Vec::new()];
    let mut used = 0.0;
    for c in text.chars() {
        let (u, wide) = code(c);
        let w = if wide { size } else { size / 2.0 };
        if used + w > width && !lines.last().is_some_and(Vec::is_empty) {
            lines.push(Vec::new());
            used = 0.0;
        }
        if let Some(l) = lines.last_mut() {
            l.push(u);
        }
        used += w;
    }
    lines
}

/// The PDF of `lines`, on as many A4 pages as they take.
pub fn render(lines: &[Line]) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let font = Ref::new(3);
    let cid_font = Ref::new(4);
    let descriptor = Ref::new(5);
    let to_unicode = Ref::new(6);
    let mut next = 7;

    // Lay the text out in pages of (size, x, y, codes).
    let mut pages: Vec<Vec<(f32, f32, Vec<u16>)>> = vec![Vec::new()];
    let mut y = A4.1 - MARGIN;
    let mut used = std::collections::BTreeSet::new();
    for line in lines {
        let gap = if line.size > 11.0 { line.size } else { 0.0 };
        y -= gap;
        for codes in wrap(&line.text, line.size, A4.0 - 2.0 * MARGIN) {
            y -= line.size * 1.4;
            if y < MARGIN {
                pages.push(Vec::new());
                y = A4.1 - MARGIN - line.size * 1.4;
            }
            used.extend(codes.iter().copied());
            if let Some(p) = pages.last_mut() {
                p.push((line.size, y, codes));
            }
        }
    }

    let mut page_refs = Vec::new();
    for items in &pages {
        let page = Ref::new(next);
        let content_id = Ref::new(next + 1);
        next += 2;
        page_refs.push(page);
        let mut content = Content::new();
        for (size, y, codes) in items {
            let bytes: Vec<u8> = codes.iter().flat_map(|u| u.to_be_bytes()).collect();
            content
                .begin_text()
                .set_font(FONT, *size)
                .next_line(MARGIN, *y)
                .show(Str(&bytes))
                .end_text();
        }
        let data = content.finish();
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&data, 6);
        pdf.stream(content_id, &compressed)
            .filter(Filter::FlateDecode);
        let mut p = pdf.page(page);
        p.media_box(Rect::new(0.0, 0.0, A4.0, A4.1));
        p.parent(tree);
        p.contents(content_id);
        p.resources().fonts().pair(FONT, font);
        p.finish();
    }
    pdf.catalog(catalog).pages(tree);
    let count = i32::try_from(page_refs.len()).unwrap_or(i32::MAX);
    pdf.pages(tree).kids(page_refs).count(count);

    let info = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"CNS1"),
        supplement: 0,
    };
    pdf.type0_font(font)
        .base_font(Name(b"MSung-Light"))
        .encoding_predefined(Name(b"UniCNS-UCS2-H"))
        .descendant_font(cid_font)
        .to_unicode(to_unicode);
    let mut cid = pdf.cid_font(cid_font);
    cid.subtype(CidFontType::Type0)
        .base_font(Name(b"MSung-Light"))
        .system_info(info)
        .font_descriptor(descriptor)
        .default_width(1000.0);
    let mut widths = cid.widths();
    for (first, last) in HALF_WIDTH_CIDS {
        widths.same(first, last, 500.0);
    }
    widths.finish();
    cid.finish();
    pdf.font_descriptor(descriptor)
        .name(Name(b"MSung-Light"))
        .flags(FontFlags::SERIF | FontFlags::SYMBOLIC)
        .bbox(Rect::new(0.0, -208.0, 1000.0, 880.0))
        .italic_angle(0.0)
        .ascent(880.0)
        .descent(-120.0)
        .cap_height(880.0)
        .stem_v(93.0);
    let mut cmap = UnicodeCmap::new(Name(b"Ehrshare-UCS2"), info);
    for u in used {
        if let Some(c) = char::from_u32(u32::from(u)) {
            cmap.pair(u, c);
        }
    }
    pdf.cmap(to_unicode, &cmap.finish())
        .name(Name(b"Ehrshare-UCS2"))
        .system_info(info);
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_wraps_and_pages_break() {
        let wide = "陳".repeat(100);
        let lines = wrap(&wide, 10.0, 495.0);
        assert_eq!(lines.len(), 3, "49 full-width characters a line");
        assert!(lines.iter().all(|l| l.len() <= 49));
        let narrow = wrap(&"a".repeat(100), 10.0, 495.0);
        assert_eq!(narrow.len(), 2);
        let many: Vec<Line> = (0..200).map(|i| Line::body(format!("line {i}"))).collect();
        let pdf = render(&many);
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(
            text.contains("/Count 4"),
            "200 lines of 14 points take 4 pages"
        );
    }

    #[test]
    fn characters_the_encoding_cannot_carry_print_as_question_marks() {
        assert_eq!(code('𠮷'), (u16::from(b'?'), false));
        assert_eq!(code('\u{7}'), (u16::from(b' '), false));
        assert_eq!(code('陳'), (0x9673, true));
        assert_eq!(code('A'), (0x41, false));
        assert_eq!(code('é'), (0xE9, true), "set full width: no overlap");
    }
}
