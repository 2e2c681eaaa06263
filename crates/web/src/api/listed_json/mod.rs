//! The summary and a domain's page as JSON, written straight from the store's rows in the
//! shape serde gives their documented types ([`SummaryView`], [`RecordPage`]; a test holds
//! them equal): these answers carry tens of records, and serde's derived path cost more than
//! reading them (ADR 0013).
//!
//! The resource is written as stored, without parsing it again. The store's `body` column is
//! written by the deposit path only, and only as serde_json's canonical serialisation of a
//! resource that passed validation; the single-record paths still go through `RawValue`.
use std::io::Write as _;

use axum::response::IntoResponse as _;
use ehrshare_app::record::{ListedRecord, Summary};
use ehrshare_core::domain::Domain;

use crate::error::HttpError;

fn internal(e: impl std::fmt::Display) -> HttpError {
    HttpError(ehrshare_app::AppError::Internal(
        format!("writing records as JSON: {e}").into(),
    ))
}

/// Room for `records` and what surrounds them.
fn buffer<'a>(records: impl Iterator<Item = &'a ListedRecord>) -> Vec<u8> {
    Vec::with_capacity(records.map(|r| r.body.len() + 300).sum::<usize>() + 100)
}

/// `sep"key":`, for a key of the fixed set below (none needs escaping).
fn key(out: &mut Vec<u8>, sep: u8, k: &str) {
    out.push(sep);
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn uuid(out: &mut Vec<u8>, id: &uuid::Uuid) {
    let mut buf = uuid::Uuid::encode_buffer();
    out.push(b'"');
    out.extend_from_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
    out.push(b'"');
}

/// A string, escaped as serde_json escapes it.
fn string(out: &mut Vec<u8>, s: &str) -> Result<(), HttpError> {
    serde_json::to_writer(&mut *out, s).map_err(internal)
}

/// An instant as `time`'s RFC 3339 format writes it (what `time::serde::rfc3339` gives),
/// by hand for the common case, a UTC instant of a four-digit year: `time`'s general
/// formatter was a visible part of writing a summary (ADR 0013). Anything else goes to
/// `time`. A test holds the two equal.
pub(super) fn instant(out: &mut Vec<u8>, t: &time::OffsetDateTime) -> Result<(), HttpError> {
    let year = t.year();
    if !t.offset().is_utc() || !(0..=9999).contains(&year) {
        return t
            .format_into(out, &time::format_description::well_known::Rfc3339)
            .map(|_| ())
            .map_err(internal);
    }
    let digits = |out: &mut Vec<u8>, n: u32, width: u32| {
        for i in (0..width).rev() {
            out.push(b'0' + u8::try_from(n / 10_u32.pow(i) % 10).unwrap_or(0));
        }
    };
    digits(out, year.unsigned_abs(), 4);
    out.push(b'-');
    digits(out, u32::from(u8::from(t.month())), 2);
    out.push(b'-');
    digits(out, u32::from(t.day()), 2);
    out.push(b'T');
    digits(out, u32::from(t.hour()), 2);
    out.push(b':');
    digits(out, u32::from(t.minute()), 2);
    out.push(b':');
    digits(out, u32::from(t.second()), 2);
    let nanos = t.nanosecond();
    if nanos != 0 {
        // As `time` writes them: nine digits less the trailing zeros.
        let mut width = 9;
        let mut n = nanos;
        while n.is_multiple_of(10) {
            n /= 10;
            width -= 1;
        }
        out.push(b'.');
        digits(out, n, width);
    }
    out.push(b'Z');
    Ok(())
}

/// An integer, as serde_json writes it.
pub(super) fn integer(out: &mut Vec<u8>, n: i64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + u8::try_from(m % 10).unwrap_or(0);
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[at..]);
}

/// What the records of one answer share: their recipient's id, encoded once.
struct Shared {
    recipient: uuid::Uuid,
    encoded: Vec<u8>,
}

impl Shared {
    fn new(recipient: uuid::Uuid) -> Shared {
        let mut encoded = Vec::with_capacity(38);
        uuid(&mut encoded, &recipient);
        Shared { recipient, encoded }
    }
}

/// One record, as [`crate::api::records::RecordView`] serialises.
fn record(out: &mut Vec<u8>, shared: &Shared, r: &ListedRecord) -> Result<(), HttpError> {
    key(out, b'{', "id");
    uuid(out, &r.id);
    key(out, b',', "recipient");
    if r.recipient_id == shared.recipient {
        out.extend_from_slice(&shared.encoded);
    } else {
        uuid(out, &r.recipient_id);
    }
    key(out, b',', "domain");
    // A code of core's closed list: lower-case letters and hyphens, nothing to escape.
    out.push(b'"');
    out.extend_from_slice(r.domain.code().as_bytes());
    out.push(b'"');
    key(out, b',', "resource_type");
    string(out, &r.resource_type)?;
    key(out, b',', "source_hcp");
    uuid(out, &r.source_hcp);
    key(out, b',', "version");
    integer(out, r.version);
    key(out, b',', "updated_at");
    out.push(b'"');
    instant(out, &r.updated_at)?;
    out.push(b'"');
    key(out, b',', "resource");
    out.extend_from_slice(r.body.as_bytes());
    out.push(b'}');
    Ok(())
}

/// A JSON array of records.
fn records<'a>(
    out: &mut Vec<u8>,
    shared: &Shared,
    records: impl IntoIterator<Item = &'a ListedRecord>,
) -> Result<(), HttpError> {
    out.push(b'[');
    for (i, r) in records.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        record(out, shared, r)?;
    }
    out.push(b']');
    Ok(())
}

/// A summary, as [`crate::api::recipients::summary::SummaryView`] serialises.
pub(super) fn summary(s: &Summary) -> Result<Vec<u8>, HttpError> {
    let mut out = buffer(s.domains.values().flatten());
    let shared = Shared::new(s.recipient);
    key(&mut out, b'{', "recipient");
    out.extend_from_slice(&shared.encoded);
    key(&mut out, b',', "domains");
    out.push(b'[');
    for (i, (d, rs)) in s.domains.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        key(&mut out, b'{', "domain");
        string(&mut out, d.code())?;
        key(&mut out, b',', "records");
        records(&mut out, &shared, rs)?;
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// A domain's page, as [`crate::api::recipients::records::RecordPage`] serialises.
pub(super) fn page(
    domain: Domain,
    page: usize,
    per_page: usize,
    s: &Summary,
) -> Result<Vec<u8>, HttpError> {
    let mut out = buffer(s.domains.values().flatten());
    key(&mut out, b'{', "domain");
    string(&mut out, domain.code())?;
    for (k, n) in [("page", page), ("per_page", per_page), ("total", s.total)] {
        key(&mut out, b',', k);
        write!(out, "{n}").map_err(internal)?;
    }
    key(&mut out, b',', "records");
    records(
        &mut out,
        &Shared::new(s.recipient),
        s.domains.values().flatten(),
    )?;
    out.push(b'}');
    Ok(out)
}

/// A `200 application/json` answer of `body`.
pub(super) fn response(body: Vec<u8>) -> axum::response::Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
