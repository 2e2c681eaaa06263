//! The CapabilityStatement served at `/fhir/metadata` (issue 25, item 1), built from the table
//! of what the server routes (`web::fhir::SERVED`), so that it lists exactly what works: a
//! test walks every interaction it lists against the running server.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// An interaction on a resource type (R4 `TypeRestfulInteraction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeInteraction {
    Read,
    Vread,
    HistoryInstance,
    SearchType,
    Create,
    Update,
    Delete,
}

impl TypeInteraction {
    /// The R4 code.
    pub fn code(self) -> &'static str {
        match self {
            TypeInteraction::Read => "read",
            TypeInteraction::Vread => "vread",
            TypeInteraction::HistoryInstance => "history-instance",
            TypeInteraction::SearchType => "search-type",
            TypeInteraction::Create => "create",
            TypeInteraction::Update => "update",
            TypeInteraction::Delete => "delete",
        }
    }
}

/// A search parameter's type (R4 `SearchParamType`), the subset served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchKind {
    Token,
    Date,
    Reference,
    String,
}

impl SearchKind {
    /// The R4 code.
    pub fn code(self) -> &'static str {
        match self {
            SearchKind::Token => "token",
            SearchKind::Date => "date",
            SearchKind::Reference => "reference",
            SearchKind::String => "string",
        }
    }
}

/// A search parameter served on a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParam {
    pub name: &'static str,
    pub kind: SearchKind,
}

/// What the server does with one resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeSupport {
    pub resource_type: &'static str,
    pub interactions: &'static [TypeInteraction],
    pub search_params: &'static [SearchParam],
    /// Operations on an instance: their name (without `$`) and their definition's canonical.
    pub operations: &'static [(&'static str, &'static str)],
}

/// The OAuth 2 endpoints that issue and manage the bearer tokens `/fhir` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthEndpoints<'a> {
    pub authorize: &'a str,
    pub token: &'a str,
    pub revoke: &'a str,
    pub introspect: &'a str,
}

/// The server, as the statement describes it.
#[derive(Debug, Clone, Copy)]
pub struct Server<'a> {
    /// The FHIR base URL (`https://host/fhir`).
    pub base_url: &'a str,
    pub software_version: &'a str,
    /// When the statement was made (the process's start).
    pub date: OffsetDateTime,
    pub types: &'a [TypeSupport],
    pub oauth: OAuthEndpoints<'a>,
}

/// The CapabilityStatement of `server`.
pub fn capability_statement(server: &Server<'_>) -> Value {
    let resources: Vec<Value> = server
        .types
        .iter()
        .map(|t| {
            let mut r = Map::new();
            r.insert("type".to_owned(), json!(t.resource_type));
            r.insert(
                "interaction".to_owned(),
                Value::Array(
                    t.interactions
                        .iter()
                        .map(|i| json!({"code": i.code()}))
                        .collect(),
                ),
            );
            let versioned = t.interactions.contains(&TypeInteraction::Vread);
            let updated = t.interactions.contains(&TypeInteraction::Update);
            // `versioned-update`: an update's `If-Match` is honoured (412 when stale).
            r.insert(
                "versioning".to_owned(),
                json!(match (versioned, updated) {
                    (true, true) => "versioned-update",
                    (true, false) => "versioned",
                    _ => "no-version",
                }),
            );
            r.insert("readHistory".to_owned(), json!(versioned));
            r.insert(
                "updateCreate".to_owned(),
                json!(t.interactions.contains(&TypeInteraction::Update)),
            );
            // One condition only: `identifier` in the provider's own id system (`web::fhir::write`).
            r.insert(
                "conditionalCreate".to_owned(),
                json!(t.interactions.contains(&TypeInteraction::Create)),
            );
            if !t.operations.is_empty() {
                r.insert(
                    "operation".to_owned(),
                    Value::Array(
                        t.operations
                            .iter()
                            .map(|(name, definition)| json!({"name": name, "definition": definition}))
                            .collect(),
                    ),
                );
            }
            if !t.search_params.is_empty() {
                r.insert(
                    "searchParam".to_owned(),
                    Value::Array(
                        t.search_params
                            .iter()
                            .map(|p| json!({"name": p.name, "type": p.kind.code()}))
                            .collect(),
                    ),
                );
            }
            Value::Object(r)
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": crate::served::instant(server.date),
        "publisher": "ehrshare",
        "kind": "instance",
        "software": {"name": "ehrshare", "version": server.software_version},
        "implementation": {
            "description": "ehrshare: an electronic health record sharing system",
            "url": server.base_url
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "Every read and write passes the access decision (the patient's sharing consent, \
                a care episode, the role's domains) and leaves an audit entry before data moves. \
                A record the caller may not see answers 404, like one that does not exist; a search \
                the decision refuses finds nothing; a refused write answers 403 with its reason. \
                A search names one patient; parameters not listed for a type are refused (400); \
                _sort takes _lastUpdated, and date where a type has it, either way. \
                Conditional create takes one condition: identifier={your provider's id system}|{id}.",
            "security": {
                "cors": false,
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "authorize", "valueUri": server.oauth.authorize},
                        {"url": "token", "valueUri": server.oauth.token},
                        {"url": "revoke", "valueUri": server.oauth.revoke},
                        {"url": "introspect", "valueUri": server.oauth.introspect}
                    ]
                }],
                "service": [{
                    "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR"
                    }]
                }],
                "description": format!(
                    "Bearer tokens from the OAuth 2 server (SMART App Launch; discovery at \
                     {}/.well-known/smart-configuration): authorize {}, token {}, revoke {}, introspect {}.",
                    server.base_url, server.oauth.authorize, server.oauth.token, server.oauth.revoke,
                    server.oauth.introspect
                )
            },
            "resource": resources,
            "interaction": [
                {"code": "transaction", "documentation": "POST, PUT and DELETE entries, all or none, \
                    their audit entries in the same database transaction; urn:uuid fullUrls resolve, \
                    a Patient entry's to the registered person its identity document names."},
                {"code": "batch", "documentation": "POST, PUT and DELETE entries, each on its own."}
            ]
        }]
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_statement_lists_what_it_is_given_and_nothing_else() {
        let types = [TypeSupport {
            resource_type: "Condition",
            interactions: &[TypeInteraction::Read, TypeInteraction::Vread],
            search_params: &[],
            operations: &[],
        }];
        let s = capability_statement(&Server {
            base_url: "https://ehr.example/fhir",
            software_version: "0.1.0",
            date: datetime!(2026-12-07 00:00 UTC),
            types: &types,
            oauth: OAuthEndpoints {
                authorize: "a",
                token: "t",
                revoke: "r",
                introspect: "i",
            },
        });
        assert_eq!(s["fhirVersion"], "4.0.1");
        let rest = &s["rest"][0];
        assert_eq!(rest["resource"].as_array().unwrap().len(), 1);
        assert_eq!(
            rest["resource"][0]["interaction"],
            json!([{"code": "read"}, {"code": "vread"}])
        );
        assert_eq!(rest["resource"][0]["versioning"], "versioned");
        assert!(rest["resource"][0].get("searchParam").is_none());
    }
}
