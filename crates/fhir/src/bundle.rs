//! The Bundles `/fhir` answers with (issue 25, item 6): a `searchset` (with `total`, the
//! paging `link`s and each entry's `search.mode`), a `history` (each version with the
//! `request` that made it and its `response`), and the answer to a batch or a transaction
//! (each entry's `response`).

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

/// A recipient's record to keep (issue 27: the download of one's own record): a
/// `collection` Bundle made at `timestamp`, each entry a resource as served with its URL.
pub fn collection(timestamp: &str, entries: Vec<(String, Map<String, Value>)>) -> Value {
    let entry: Vec<Value> = entries
        .into_iter()
        .map(|(full_url, resource)| json!({"fullUrl": full_url, "resource": resource}))
        .collect();
    let mut b = json!({"resourceType": "Bundle", "type": "collection", "timestamp": timestamp});
    if !entry.is_empty() {
        b["entry"] = Value::Array(entry);
    }
    b
}

/// The interaction that made a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MadeBy {
    /// `POST`, `201`.
    Create,
    /// `PUT`, `200`.
    Update,
    /// `DELETE`, `204`: the version that withdrew the resource (entered in error).
    Delete,
}

/// One version in a history.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// The resource's URL without its version.
    pub full_url: String,
    /// `Type/id`, as the request named it.
    pub relative_url: String,
    /// The version as served (left out of a deletion's entry).
    pub resource: Map<String, Value>,
    pub made_by: MadeBy,
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
            let of_type = v
                .relative_url
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let (method, url, status) = match v.made_by {
                MadeBy::Create => ("POST", of_type, "201 Created"),
                MadeBy::Update => ("PUT", v.relative_url.clone(), "200 OK"),
                MadeBy::Delete => ("DELETE", v.relative_url.clone(), "204 No Content"),
            };
            let mut e = json!({
                "fullUrl": v.full_url,
                "request": {"method": method, "url": url},
                "response": {"status": status, "etag": v.etag, "lastModified": v.last_modified}
            });
            if v.made_by != MadeBy::Delete {
                e["resource"] = Value::Object(v.resource);
            }
            e
        })
        .collect();
    let mut b =
        json!({"resourceType": "Bundle", "type": "history", "total": total, "link": links(link)});
    if !entry.is_empty() {
        b["entry"] = Value::Array(entry);
    }
    b
}

/// The answer to one entry of a batch or a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryResponse {
    /// `201 Created`, `200 OK`, `204 No Content`, or an error's status.
    pub status: String,
    pub location: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The resource as it is now, when the client asked for it (`Prefer`).
    pub resource: Option<(String, Map<String, Value>)>,
    /// An OperationOutcome: the error of a batch entry, or what was asked for.
    pub outcome: Option<Value>,
}

/// A `batch-response` (`transaction` false) or `transaction-response`: one entry per entry
/// of the request, in its order.
pub fn response(transaction: bool, entries: Vec<EntryResponse>) -> Value {
    let entry: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let mut response = Map::new();
            response.insert("status".into(), Value::String(e.status));
            for (key, value) in [
                ("location", e.location),
                ("etag", e.etag),
                ("lastModified", e.last_modified),
            ] {
                if let Some(v) = value {
                    response.insert(key.into(), Value::String(v));
                }
            }
            if let Some(outcome) = e.outcome {
                response.insert("outcome".into(), outcome);
            }
            let mut entry = Map::new();
            if let Some((full_url, resource)) = e.resource {
                entry.insert("fullUrl".into(), Value::String(full_url));
                entry.insert("resource".into(), Value::Object(resource));
            }
            entry.insert("response".into(), Value::Object(response));
            Value::Object(entry)
        })
        .collect();
    let kind = if transaction {
        "transaction-response"
    } else {
        "batch-response"
    };
    let mut b = json!({"resourceType": "Bundle", "type": kind});
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
        let v = |made_by: MadeBy, n: &str| Version {
            full_url: "https://x/fhir/Condition/1".into(),
            relative_url: "Condition/1".into(),
            resource: Map::new(),
            made_by,
            etag: format!("W/\"{n}\""),
            last_modified: "2026-12-07T00:00:00Z".into(),
        };
        let b = history(
            &[],
            vec![
                v(MadeBy::Delete, "3"),
                v(MadeBy::Update, "2"),
                v(MadeBy::Create, "1"),
            ],
        );
        assert_eq!(b["total"], 3);
        assert_eq!(b["entry"][0]["request"]["method"], "DELETE");
        assert!(b["entry"][0].get("resource").is_none());
        let b = history(&[], vec![v(MadeBy::Update, "2"), v(MadeBy::Create, "1")]);
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
