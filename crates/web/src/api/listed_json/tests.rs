//! The JSON written from rows is byte for byte what serde makes of the documented views.

use std::collections::BTreeMap;

use ehrshare_app::record::{ListedRecord, Summary};
use ehrshare_core::domain::Domain;
use time::macros::datetime;
use uuid::Uuid;

use crate::api::recipients::records::RecordPage;
use crate::api::recipients::summary::{DomainView, SummaryView};
use crate::api::records::RecordView;

fn record(n: u128, domain: Domain, body: &str) -> ListedRecord {
    ListedRecord {
        id: Uuid::from_u128(n),
        recipient_id: Uuid::from_u128(7),
        domain,
        // Not from a closed list in the type: escaped like any string.
        resource_type: format!("Type \"{n}\" \\ \u{1} 中文"),
        source_hcp: Uuid::from_u128(u128::MAX - n),
        version: i64::try_from(n).unwrap() * 1_000_000_007,
        body: body.to_owned(),
        created_at: datetime!(2026-01-15 09:30:00 UTC),
        updated_at: datetime!(2026-01-15 09:30:00.123456 UTC)
            + time::Duration::seconds(i64::try_from(n).unwrap()),
    }
}

/// The documented view of a listed record, as serde makes it.
fn view(r: &ListedRecord) -> RecordView {
    RecordView {
        id: r.id,
        recipient: r.recipient_id,
        domain: r.domain.code().to_owned(),
        resource_type: r.resource_type.clone(),
        source_hcp: r.source_hcp,
        version: r.version,
        updated_at: r.updated_at,
        resource: serde_json::value::RawValue::from_string(r.body.clone()).unwrap(),
    }
}

fn summary() -> Summary {
    let mut domains = BTreeMap::new();
    domains.insert(
        Domain::parse("diagnosis").unwrap(),
        vec![
            record(
                1,
                Domain::parse("diagnosis").unwrap(),
                r#"{"resourceType":"Condition","note":[{"text":"\"q\" \u0001 痛"}]}"#,
            ),
            record(
                2,
                Domain::parse("diagnosis").unwrap(),
                r#"{"resourceType":"Condition","id":"x"}"#,
            ),
        ],
    );
    domains.insert(Domain::parse("allergy").unwrap(), Vec::new());
    domains.insert(
        Domain::parse("laboratory").unwrap(),
        vec![record(
            3,
            Domain::parse("laboratory").unwrap(),
            r#"{"resourceType":"Observation","valueQuantity":{"value":5.4}}"#,
        )],
    );
    Summary {
        recipient: Uuid::from_u128(7),
        domains,
        total: 3,
    }
}

/// The writer's JSON is what serde makes of the documented types (the OpenAPI schema's).
#[test]
fn a_summary_is_written_as_its_view_serialises() {
    let s = summary();
    let bytes = crate::api::listed_json::summary(&s).unwrap();
    let written: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let expected = SummaryView {
        recipient: s.recipient,
        domains: s
            .domains
            .iter()
            .map(|(d, rs)| DomainView {
                domain: d.code().to_owned(),
                records: rs.iter().map(view).collect(),
            })
            .collect(),
    };
    assert_eq!(written, serde_json::to_value(&expected).unwrap());
    // Byte for byte, too: the same keys in the same order, the same escapes.
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        serde_json::to_string(&expected).unwrap()
    );
    assert_eq!(written["domains"].as_array().unwrap().len(), 3);
}

/// The hand-written pieces against what they stand in for: `time`'s RFC 3339 for
/// instants (every trailing-zero width of the fraction, none, the first and last years, an offset),
/// serde_json for integers, and domain codes that need no escape.
#[test]
fn instants_integers_and_codes_are_written_as_serde_writes_them() {
    let base = datetime!(2026-01-15 09:30:05 UTC);
    let mut instants = vec![
        base,
        datetime!(0001-01-01 00:00:00 UTC),
        datetime!(9999-12-31 23:59:59.999999999 UTC),
        datetime!(2026-01-15 09:30:05 +08:00),
    ];
    for nanos in [
        1,
        10,
        100,
        120,
        123_000,
        123_456_000,
        500_000_000,
        999_999_999,
    ] {
        instants.push(base + time::Duration::nanoseconds(nanos));
    }
    for t in instants {
        let mut out = Vec::new();
        crate::api::listed_json::instant(&mut out, &t).unwrap();
        let expected = t
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected, "{t}");
    }
    for n in [0_i64, 7, 10, 1_000_000_007, -1, -90, i64::MAX, i64::MIN] {
        let mut out = Vec::new();
        crate::api::listed_json::integer(&mut out, n);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&n).unwrap()
        );
    }
    for d in Domain::ALL {
        assert_eq!(
            serde_json::to_string(d.code()).unwrap(),
            format!("\"{}\"", d.code())
        );
    }
}

#[test]
fn a_page_is_written_as_its_view_serialises() {
    let s = summary();
    let domain = Domain::parse("diagnosis").unwrap();
    let bytes = crate::api::listed_json::page(domain, 2, 20, &s).unwrap();
    let written: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let page = RecordPage {
        domain: "diagnosis".to_owned(),
        page: 2,
        per_page: 20,
        total: 3,
        records: s.domains.values().flatten().map(view).collect(),
    };
    assert_eq!(written, serde_json::to_value(&page).unwrap());
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        serde_json::to_string(&page).unwrap()
    );
}
