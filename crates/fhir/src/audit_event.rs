//! An audit entry as a FHIR R4 `AuditEvent`, in the style of IHE Basic Audit Log Patterns
//! (BALP), and back: the mapping is one-to-one, so a patient-facing `AuditEvent` says exactly
//! what the signed log holds.
//!
//! Choices (where R4 and BALP leave room):
//! - `type` is `audit-event-type#rest`; ehrshare's own action code (`record.read`, ...) is the
//!   one `subtype`, in the code system `urn:ehrshare:audit-action`; `action` (C/R/U/D/E) is
//!   derived from it.
//! - `outcome`: `0` allowed, `4` denied (minor failure: the request was refused by a rule),
//!   `8` failed; `outcomeDesc` carries the denial reason code.
//! - The stated reason is `purposeOfEvent.text`.
//! - Agents: the actor (requestor; `type` in `urn:ehrshare:actor-kind`, `role.text` its role,
//!   its location and network address), then the HCP and the substitute decision maker, if any,
//!   as non-requesting agents typed in `urn:ehrshare:agent`.
//! - Entities: the patient (`Patient/<id>`, type 1, role 1), each record (identifier in
//!   `urn:ehrshare:record`, type 2, role 4), the domains (one entity with a `detail` per
//!   domain), the consent and the episode that allowed it, and the request id (BALP's
//!   `XrequestId` entity type).
//! - `id` is the sequence number.

use ehrshare_core::audit::{Actor, ActorKind, AuditEntry, NewAuditEntry, Outcome};
use serde::{Deserialize, Serialize};

pub use crate::datatypes::{CodeableConcept, Coding, Identifier, Reference};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const ACTION_SYSTEM: &str = "urn:ehrshare:audit-action";
const ACTOR_KIND_SYSTEM: &str = "urn:ehrshare:actor-kind";
const AGENT_SYSTEM: &str = "urn:ehrshare:agent";
const ACCOUNT_SYSTEM: &str = "urn:ehrshare:account";
const HCP_SYSTEM: &str = "urn:ehrshare:hcp";
const LOCATION_SYSTEM: &str = "urn:ehrshare:location";
const SDM_SYSTEM: &str = "urn:ehrshare:sdm";
const RECORD_SYSTEM: &str = "urn:ehrshare:record";
const EPISODE_SYSTEM: &str = "urn:ehrshare:episode";
const ENTITY_SYSTEM: &str = "urn:ehrshare:entity";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
const BALP_ENTITY_TYPE: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType";

/// AuditEvent.agent.network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub address: String,
    /// `2`: IP address.
    #[serde(rename = "type")]
    pub kind: String,
}

/// AuditEvent.agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Agent {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<Reference>,
    pub requestor: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
}

/// AuditEvent.source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub observer: Reference,
    #[serde(rename = "type", default, skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<Coding>,
}

/// AuditEvent.entity.detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "valueString")]
    pub value_string: String,
}

/// AuditEvent.entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Entity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<Reference>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Coding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Coding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<Detail>,
}

/// The AuditEvent resource (R4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "resourceType", rename = "AuditEvent")]
pub struct AuditEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Coding,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtype: Vec<Coding>,
    pub action: String,
    pub recorded: String,
    pub outcome: String,
    #[serde(
        rename = "outcomeDesc",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub outcome_desc: Option<String>,
    #[serde(
        rename = "purposeOfEvent",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub purpose_of_event: Vec<CodeableConcept>,
    pub agent: Vec<Agent>,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entity: Vec<Entity>,
}

fn coding(system: &str, code: &str) -> Coding {
    Coding {
        system: Some(system.to_owned()),
        code: Some(code.to_owned()),
        display: None,
    }
}

fn identified(system: &str, id: Uuid) -> Reference {
    Reference {
        reference: None,
        identifier: Some(Identifier {
            system: Some(system.to_owned()),
            value: Some(id.to_string()),
        }),
        display: None,
    }
}

/// The R4 `action` code an ehrshare action implies.
fn action_code(action: &str) -> &'static str {
    let verb = action.rsplit('.').next().unwrap_or("");
    match verb {
        "read" | "search" | "list" | "view" | "export" | "verify" => "R",
        "create" | "give" | "register" | "deposit" | "open" => "C",
        "update" | "amend" | "change" | "renew" | "revoke" | "close" | "restrict" | "unlock" => "U",
        "delete" | "withdraw" => "D",
        _ => "E",
    }
}

/// The entry as an AuditEvent.
pub fn to_audit_event(entry: &AuditEntry) -> AuditEvent {
    let e = &entry.entry;
    let mut agents = vec![Agent {
        kind: Some(CodeableConcept {
            coding: vec![coding(ACTOR_KIND_SYSTEM, e.actor.kind.code())],
            text: None,
        }),
        role: e
            .actor
            .role
            .iter()
            .map(|r| CodeableConcept {
                coding: Vec::new(),
                text: Some(r.clone()),
            })
            .collect(),
        who: e.actor.account.map(|a| identified(ACCOUNT_SYSTEM, a)),
        requestor: true,
        location: e.actor.location.map(|l| identified(LOCATION_SYSTEM, l)),
        network: e.client_addr.as_ref().map(|a| Network {
            address: a.clone(),
            kind: "2".to_owned(),
        }),
    }];
    for (code, system, id) in [("hcp", HCP_SYSTEM, e.actor.hcp), ("sdm", SDM_SYSTEM, e.sdm)] {
        if let Some(id) = id {
            agents.push(Agent {
                kind: Some(CodeableConcept {
                    coding: vec![coding(AGENT_SYSTEM, code)],
                    text: None,
                }),
                who: Some(identified(system, id)),
                requestor: false,
                ..Agent::default()
            });
        }
    }
    let mut entities = Vec::new();
    if let Some(p) = e.recipient {
        entities.push(Entity {
            what: Some(Reference {
                reference: Some(format!("Patient/{p}")),
                ..Reference::default()
            }),
            kind: Some(coding(ENTITY_TYPE, "1")),
            role: Some(coding(OBJECT_ROLE, "1")),
            detail: Vec::new(),
        });
    }
    for r in &e.record_ids {
        entities.push(Entity {
            what: Some(identified(RECORD_SYSTEM, *r)),
            kind: Some(coding(ENTITY_TYPE, "2")),
            role: Some(coding(OBJECT_ROLE, "4")),
            detail: Vec::new(),
        });
    }
    if !e.domains.is_empty() {
        entities.push(Entity {
            kind: Some(coding(ENTITY_SYSTEM, "domains")),
            detail: e
                .domains
                .iter()
                .map(|d| Detail {
                    kind: "domain".to_owned(),
                    value_string: d.clone(),
                })
                .collect(),
            ..Entity::default()
        });
    }
    if let Some(c) = e.consent_id {
        entities.push(Entity {
            what: Some(Reference {
                reference: Some(format!("Consent/{c}")),
                ..Reference::default()
            }),
            kind: Some(coding(ENTITY_SYSTEM, "consent")),
            ..Entity::default()
        });
    }
    if let Some(ep) = e.episode_id {
        entities.push(Entity {
            what: Some(identified(EPISODE_SYSTEM, ep)),
            kind: Some(coding(ENTITY_SYSTEM, "episode")),
            ..Entity::default()
        });
    }
    if let Some(r) = e.request_id {
        entities.push(Entity {
            what: Some(Reference {
                identifier: Some(Identifier {
                    system: None,
                    value: Some(r.to_string()),
                }),
                ..Reference::default()
            }),
            kind: Some(coding(BALP_ENTITY_TYPE, "XrequestId")),
            ..Entity::default()
        });
    }
    AuditEvent {
        id: entry.seq.to_string(),
        kind: Coding {
            display: Some("RESTful Operation".to_owned()),
            ..coding(AUDIT_EVENT_TYPE, "rest")
        },
        subtype: vec![coding(ACTION_SYSTEM, &e.action)],
        action: action_code(&e.action).to_owned(),
        recorded: e.at.format(&Rfc3339).unwrap_or_default(),
        outcome: match e.outcome {
            Outcome::Allowed => "0",
            Outcome::Denied => "4",
            Outcome::Failed => "8",
        }
        .to_owned(),
        outcome_desc: e.denial_reason.clone(),
        purpose_of_event: e
            .reason
            .iter()
            .map(|r| CodeableConcept {
                coding: Vec::new(),
                text: Some(r.clone()),
            })
            .collect(),
        agent: agents,
        source: Source {
            observer: Reference {
                display: Some("ehrshare".to_owned()),
                ..Reference::default()
            },
            kind: vec![coding(SOURCE_TYPE, "4")],
        },
        entity: entities,
    }
}

/// Why an AuditEvent is not one that [`to_audit_event`] could have made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ehrshare audit event: {0}")]
pub struct NotOurs(pub String);

fn uuid_of(r: &Option<Reference>, system: &str) -> Result<Uuid, NotOurs> {
    let id = r
        .as_ref()
        .and_then(|r| r.identifier.as_ref())
        .filter(|i| i.system.as_deref() == Some(system))
        .and_then(|i| i.value.as_deref())
        .ok_or_else(|| NotOurs(format!("missing {system} identifier")))?;
    Uuid::parse_str(id).map_err(|_| NotOurs(format!("bad {system} identifier")))
}

fn uuid_after(r: &Option<Reference>, prefix: &str) -> Result<Uuid, NotOurs> {
    r.as_ref()
        .and_then(|r| r.reference.as_deref())
        .and_then(|s| s.strip_prefix(prefix))
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| NotOurs(format!("bad {prefix} reference")))
}

fn code_in<'a>(c: &'a Option<Coding>, system: &str) -> Option<&'a str> {
    c.as_ref()
        .filter(|c| c.system.as_deref() == Some(system))
        .and_then(|c| c.code.as_deref())
}

/// The entry an AuditEvent made by [`to_audit_event`] describes.
pub fn from_audit_event(event: &AuditEvent) -> Result<AuditEntry, NotOurs> {
    let bad = |what: &str| NotOurs(what.to_owned());
    let seq = event.id.parse::<u64>().map_err(|_| bad("id"))?;
    let at = OffsetDateTime::parse(&event.recorded, &Rfc3339).map_err(|_| bad("recorded"))?;
    let action = event
        .subtype
        .iter()
        .find(|c| c.system.as_deref() == Some(ACTION_SYSTEM))
        .and_then(|c| c.code.clone())
        .ok_or_else(|| bad("subtype"))?;
    let outcome = match event.outcome.as_str() {
        "0" => Outcome::Allowed,
        "4" => Outcome::Denied,
        "8" => Outcome::Failed,
        _ => return Err(bad("outcome")),
    };
    let requestor = event
        .agent
        .iter()
        .find(|a| a.requestor)
        .ok_or_else(|| bad("requestor"))?;
    let kind = requestor
        .kind
        .as_ref()
        .and_then(|k| {
            k.coding
                .iter()
                .find(|c| c.system.as_deref() == Some(ACTOR_KIND_SYSTEM))
        })
        .and_then(|c| c.code.as_deref())
        .and_then(ActorKind::parse)
        .ok_or_else(|| bad("actor kind"))?;
    let other_agent = |code: &str, system: &str| -> Result<Option<Uuid>, NotOurs> {
        event
            .agent
            .iter()
            .filter(|a| !a.requestor)
            .find(|a| {
                a.kind.as_ref().is_some_and(|k| {
                    k.coding.iter().any(|c| {
                        c.system.as_deref() == Some(AGENT_SYSTEM) && c.code.as_deref() == Some(code)
                    })
                })
            })
            .map(|a| uuid_of(&a.who, system))
            .transpose()
    };
    let mut entry = NewAuditEntry::new(
        at,
        Actor {
            kind,
            account: requestor
                .who
                .as_ref()
                .map(|_| uuid_of(&requestor.who, ACCOUNT_SYSTEM))
                .transpose()?,
            role: requestor.role.first().and_then(|r| r.text.clone()),
            hcp: other_agent("hcp", HCP_SYSTEM)?,
            location: requestor
                .location
                .as_ref()
                .map(|_| uuid_of(&requestor.location, LOCATION_SYSTEM))
                .transpose()?,
        },
        &action,
        outcome,
    );
    entry.sdm = other_agent("sdm", SDM_SYSTEM)?;
    entry.client_addr = requestor.network.as_ref().map(|n| n.address.clone());
    entry.reason = event.purpose_of_event.first().and_then(|p| p.text.clone());
    entry.denial_reason = event.outcome_desc.clone();
    for entity in &event.entity {
        if code_in(&entity.kind, ENTITY_TYPE) == Some("1") {
            entry.recipient = Some(uuid_after(&entity.what, "Patient/")?);
        } else if code_in(&entity.kind, ENTITY_TYPE) == Some("2") {
            entry.record_ids.push(uuid_of(&entity.what, RECORD_SYSTEM)?);
        } else if code_in(&entity.kind, ENTITY_SYSTEM) == Some("domains") {
            entry.domains = entity
                .detail
                .iter()
                .map(|d| d.value_string.clone())
                .collect();
        } else if code_in(&entity.kind, ENTITY_SYSTEM) == Some("consent") {
            entry.consent_id = Some(uuid_after(&entity.what, "Consent/")?);
        } else if code_in(&entity.kind, ENTITY_SYSTEM) == Some("episode") {
            entry.episode_id = Some(uuid_of(&entity.what, EPISODE_SYSTEM)?);
        } else if code_in(&entity.kind, BALP_ENTITY_TYPE) == Some("XrequestId") {
            let value = entity
                .what
                .as_ref()
                .and_then(|w| w.identifier.as_ref())
                .and_then(|i| i.value.as_deref())
                .ok_or_else(|| bad("request id"))?;
            entry.request_id = Some(Uuid::parse_str(value).map_err(|_| bad("request id"))?);
        } else {
            return Err(bad("unknown entity"));
        }
    }
    Ok(entry.at_seq(seq))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn full() -> AuditEntry {
        let mut e = NewAuditEntry::new(
            datetime!(2026-01-15 09:30:00.123456 UTC),
            Actor {
                kind: ActorKind::HcpUser,
                account: Some(Uuid::from_u128(1)),
                role: Some("chinese-medicine-practitioner".into()),
                hcp: Some(Uuid::from_u128(2)),
                location: Some(Uuid::from_u128(3)),
            },
            "record.read",
            Outcome::Denied,
        );
        e.sdm = Some(Uuid::from_u128(9));
        e.recipient = Some(Uuid::from_u128(4));
        e.domains = vec!["cm-prescription".into(), "allergy".into()];
        e.record_ids = vec![Uuid::from_u128(5), Uuid::from_u128(6)];
        e.reason = Some("急診 emergency".into());
        e.denial_reason = Some("consent-required".into());
        e.consent_id = Some(Uuid::from_u128(7));
        e.episode_id = Some(Uuid::from_u128(8));
        e.client_addr = Some("2001:db8::1".into());
        e.request_id = Some(Uuid::from_u128(10));
        e.at_seq(41)
    }

    fn minimal() -> AuditEntry {
        NewAuditEntry::new(
            datetime!(2026-01-15 09:30:00 UTC),
            Actor::system(),
            "audit.checkpoint",
            Outcome::Allowed,
        )
        .at_seq(0)
    }

    #[test]
    fn maps_one_to_one() {
        for entry in [full(), minimal()] {
            let event = to_audit_event(&entry);
            let json = serde_json::to_string(&event).unwrap();
            let parsed: AuditEvent = serde_json::from_str(&json).unwrap();
            assert_eq!(from_audit_event(&parsed).unwrap(), entry, "{json}");
        }
    }

    #[test]
    fn has_the_r4_required_elements_and_balp_shape() {
        let v = serde_json::to_value(to_audit_event(&full())).unwrap();
        assert_eq!(v["resourceType"], "AuditEvent");
        assert_eq!(v["type"]["code"], "rest");
        assert_eq!(v["action"], "R");
        assert_eq!(v["outcome"], "4");
        assert_eq!(v["outcomeDesc"], "consent-required");
        assert_eq!(v["recorded"], "2026-01-15T09:30:00.123456Z");
        assert_eq!(v["agent"][0]["requestor"], true);
        assert_eq!(v["agent"][0]["network"]["type"], "2");
        assert_eq!(v["source"]["observer"]["display"], "ehrshare");
        assert_eq!(
            v["entity"][0]["what"]["reference"],
            format!("Patient/{}", Uuid::from_u128(4))
        );
        assert_eq!(v["entity"][0]["role"]["code"], "1");
        let request = v["entity"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(request["type"]["code"], "XrequestId");
        // R4: every agent has `requestor`; no empty arrays or nulls are written.
        let text = v.to_string();
        assert!(!text.contains("null") && !text.contains("[]"), "{text}");
    }

    #[test]
    fn derives_the_action_code() {
        for (action, code) in [
            ("record.read", "R"),
            ("consent.give", "C"),
            ("consent.revoke", "U"),
            ("recipient.withdraw", "D"),
            ("login.attempt", "E"),
        ] {
            assert_eq!(action_code(action), code, "{action}");
        }
    }

    #[test]
    fn refuses_events_it_did_not_make() {
        let mut event = to_audit_event(&full());
        event.outcome = "12".into();
        assert!(from_audit_event(&event).is_err());
        let mut event = to_audit_event(&full());
        event.agent.retain(|a| !a.requestor);
        assert!(from_audit_event(&event).is_err());
    }
}
