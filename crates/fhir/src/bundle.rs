//! The Bundles `/fhir` answers with (issue 25, item 6): a `searchset` (with `total`, the
//! paging `link`s and each entry's `search.mode`) and a `history` (each version with the
//! `request` that made it and its `response`).

use serde_json::{Map, Value, json};

/// A link of a Bundle (`self`, `first`, `previous`, `next`, `last`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub relation: &'static str,
    pub url: String,
}

fn links(list: &[Link]) -> Value {
    Value::Array(
        list.iter()
            .map(|l| json!({"relation": l.relation, "url": l.url}))
            .collect(),
    )
}

/// A searchset: `total` matches in all, this page's resources (each with its `fullUrl`).
pub fn searchset(total: usize, link: &[Link], matches: Vec<(String, Map<String, Value>)>) -> Value {
    let entry: Vec<Value> = matches
        .into_iter()
        .map(|(full_url, resource)| {
            json!({"fullUrl": full_url, "resource": resource, "search": {"mode": "match"}})
        })
        .collect();
    let mut b =
        json!({"resourceType": "Bundle", "type": "searchset", "total": total, "link": links(link)});
    if !entry.is_empty() {
        b["entry"] = Value::Array(entry);
    }
    b
}

/// One version in a history.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// The resource's URL without its version.
    pub full_url: String,
    /// `Type/id`, as the request named it.
    pub relative_url: String,
    /// The version as served.
    pub resource: Map<String, Value>,
    /// Whether this version created the resource (`POST`, `201`) or changed it (`PUT`, `200`).
    pub created: bool,
    pub etag: String,
    /// `meta.lastUpdated` of the version.
    pub last_modified: String,
}

/// A history: every version, newest first.
pub fn history(link: &[Link], versions: Vec<Version>) -> Value {
    let total = versions.len();
    let entry: Vec<Value> = versions
        .into_iter()
        .map(|v| {
            let (method, url, status) = if v.created {
                (
                    "POST",
                    v.relative_url
                        .split('/')
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                    "201 Created",
                )
            } else {
                ("PUT", v.relative_url.clone(), "200 OK")
            };
            json!({
                "fullUrl": v.full_url,
                "resource": v.resource,
                "request": {"method": method, "url": url},
                "response": {"status": status, "etag": v.etag, "lastModified": v.last_modified}
            })
        })
        .collect();
    let mut b =
        json!({"resourceType": "Bundle", "type": "history", "total": total, "link": links(link)});
    if !entry.is_empty() {
        b["entry"] = Value::Array(entry);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_searchset_has_its_total_and_links_and_no_entry() {
        let b = searchset(
            0,
            &[Link {
                relation: "self",
                url: "https://x/fhir/Condition?patient=1".into(),
            }],
            Vec::new(),
        );
        assert_eq!(b["total"], 0);
        assert!(b.get("entry").is_none());
        assert_eq!(b["link"][0]["relation"], "self");
    }

    #[test]
    fn a_history_says_which_request_made_each_version() {
        let v = |created: bool, n: &str| Version {
            full_url: "https://x/fhir/Condition/1".into(),
            relative_url: "Condition/1".into(),
            resource: Map::new(),
            created,
            etag: format!("W/\"{n}\""),
            last_modified: "2026-12-07T00:00:00Z".into(),
        };
        let b = history(&[], vec![v(false, "2"), v(true, "1")]);
        assert_eq!(b["total"], 2);
        assert_eq!(
            b["entry"][0]["request"],
            json!({"method": "PUT", "url": "Condition/1"})
        );
        assert_eq!(
            b["entry"][1]["request"],
            json!({"method": "POST", "url": "Condition"})
        );
        assert_eq!(b["entry"][1]["response"]["status"], "201 Created");
    }
}
