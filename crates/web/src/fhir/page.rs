//! What every `/fhir` search shares: the page sizes, the paging links, and the patient a
//! reference names.

use ehrshare_fhir::bundle::Link;
use uuid::Uuid;

use super::format::server_id;
use super::served::FhirBase;

/// The page size when `_count` is not given, and the largest one answered.
pub const DEFAULT_COUNT: usize = 20;
pub const MAX_COUNT: usize = 100;

/// The record id a patient reference names: `Patient/{id}`, `{id}`, or this server's URL of it.
pub(super) fn patient_id(base: &FhirBase, value: &str) -> Option<Uuid> {
    let id = value
        .strip_prefix(&format!("{}/", base.url))
        .unwrap_or(value);
    let id = id.strip_prefix("Patient/").unwrap_or(id);
    server_id(id)
}

/// A searchset's `self`, `first`, `previous`, `next` and `last` links: each repeats the whole
/// search with its page, so editing one is only a new search, decided again.
pub(super) fn page_links(
    base: &FhirBase,
    resource_type: &str,
    params: &[(String, String)],
    count: usize,
    offset: usize,
    total: usize,
) -> Vec<Link> {
    let page_url = |offset: usize| {
        let mut kept: Vec<(&str, &str)> = params
            .iter()
            .filter(|(k, _)| k != "_offset" && k != "_count")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let count_text = count.to_string();
        let offset_text = offset.to_string();
        kept.push(("_count", &count_text));
        kept.push(("_offset", &offset_text));
        format!(
            "{}/{resource_type}?{}",
            base.url,
            serde_urlencoded::to_string(&kept).unwrap_or_default()
        )
    };
    let mut links = vec![
        Link {
            relation: "self",
            url: page_url(offset),
        },
        Link {
            relation: "first",
            url: page_url(0),
        },
    ];
    if count > 0 && offset > 0 {
        links.push(Link {
            relation: "previous",
            url: page_url(offset.saturating_sub(count)),
        });
    }
    if count > 0 && offset.saturating_add(count) < total {
        links.push(Link {
            relation: "next",
            url: page_url(offset.saturating_add(count)),
        });
    }
    if count > 0 && total > 0 {
        links.push(Link {
            relation: "last",
            url: page_url((total - 1) / count * count),
        });
    }
    links
}
