//! FHIR search of records (issue 25, item 4; ADR 0014): one resource type in one recipient's
//! record, narrowed by R4's search parameters, sorted and paged, through the one access
//! decision and its audit entry, as the summary is read (`crate::record`).

use ehrshare_core::access::{Action, Ask, Decision, DenyReason, need_to_know};
use ehrshare_core::audit::Outcome;
use ehrshare_core::search::DateParam;
use ehrshare_store::facts::ListedRecord;
use uuid::Uuid;

use crate::auth::Session;
use crate::caller::Caller;
use crate::record::hidden;
use crate::{App, AppError};

/// A FHIR search of one resource type in one recipient's record (issue 25, item 4). Every
/// condition must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSearch {
    pub recipient: Uuid,
    pub resource_type: String,
    /// `_id`: only these records.
    pub ids: Option<Vec<Uuid>>,
    /// `_lastUpdated`.
    pub last_updated: Vec<DateParam>,
    /// `code`: each parameter a list of tokens, any of which matches.
    pub codes: Vec<Vec<ehrshare_fhir::search::Token>>,
    /// `date`.
    pub dates: Vec<DateParam>,
    /// `category`, `status`, `identifier`: each a parameter and its tokens, any of which
    /// matches.
    pub tokens: Vec<(String, Vec<ehrshare_fhir::search::Token>)>,
    /// `_sort`: the order of the matches before the page is cut (the store's when `None`).
    pub sort: Option<SortBy>,
    /// The page: how many matches to skip, and at most how many to answer.
    pub offset: usize,
    pub count: usize,
}

/// The orders a search may ask for (`_sort`): by the last change, or by the type's `date`
/// (resources without one last), each either way; ties by record id, so that pages are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    LastUpdated { descending: bool },
    Date { descending: bool },
}

/// What a search found: a page of records, and how many match in all.
#[derive(Debug, Clone)]
pub struct Found {
    pub records: Vec<ListedRecord>,
    pub total: usize,
}

impl App {
    /// Searches one resource type in a recipient's record, as the caller may see it: the
    /// role's domains that hold the type, restricted items neither listed nor counted. A
    /// search the decision refuses, or of a recipient who does not exist, finds nothing (the
    /// audit keeps the reason): a search never tells a patient one may not see from one who
    /// is not there. The page's record ids are in the audit entry, durable before they leave.
    pub async fn search_records(
        &self,
        session: &Session,
        caller: &Caller,
        search: &RecordSearch,
    ) -> Result<Found, AppError> {
        let nothing = Found {
            records: Vec::new(),
            total: 0,
        };
        let asker = self.asker(session).await?;
        let domains = ehrshare_core::domain::domains_holding(&search.resource_type);
        let ask = Ask {
            action: Action::Read,
            domains,
            record: None,
            reason: None,
        };
        let prefetch: Vec<String> =
            need_to_know(asker.requester.role, &ask, self.policy().profiles)
                .iter()
                .map(|d| d.code().to_owned())
                .collect();
        let mut facts = match self.facts(search.recipient, &prefetch).await {
            Ok(facts) => facts,
            Err(AppError::NotFound) => {
                let mut entry = caller.entry(self, "record.search", Outcome::Denied);
                entry.denial_reason = Some("not-found".to_owned());
                self.audit(entry).await?;
                return Ok(nothing);
            }
            Err(e) => return Err(e),
        };
        let decision = if domains.is_empty()
            || asker.system_only
            || !asker.scope_allows(ehrshare_core::oauth::Access::Search, &search.resource_type)
        {
            Decision::Deny {
                reason: DenyReason::RoleNotPermitted,
            }
        } else {
            self.decide_for(&asker, &facts, &ask)
        };
        let mut entry =
            self.decision_entry(caller, "record.search", search.recipient, &decision, None);
        let Decision::Permit { basis, obligations } = &decision else {
            self.audit(entry).await?;
            return Ok(nothing);
        };
        // What left is named by reference: the permitted domains that hold the type were
        // fetched whole.
        let scope: Vec<ehrshare_core::domain::Domain> = obligations
            .domains
            .iter()
            .filter(|d| prefetch.iter().any(|p| p == d.code()))
            .copied()
            .collect();
        let candidates = crate::record::candidates(&facts.records, &scope);
        let matching: Vec<ListedRecord> = std::mem::take(&mut facts.records)
            .into_iter()
            .filter(|r| obligations.domains.contains(&r.domain) && !hidden(obligations, r))
            .filter(|r| r.resource_type == search.resource_type)
            .filter(|r| search.ids.as_ref().is_none_or(|ids| ids.contains(&r.id)))
            .filter(|r| search.last_updated.iter().all(|d| d.matches(r.updated_at)))
            .filter(|r| {
                if search.codes.is_empty() && search.dates.is_empty() && search.tokens.is_empty() {
                    return true;
                }
                let Ok(body) = serde_json::from_str::<serde_json::Value>(&r.body) else {
                    return false;
                };
                let t = &search.resource_type;
                search
                    .codes
                    .iter()
                    .all(|any| ehrshare_fhir::search::code_matches(t, &body, any))
                    && (search.dates.is_empty()
                        || ehrshare_fhir::search::date_matches(t, &body, &search.dates))
                    && search.tokens.iter().all(|(param, any)| {
                        let system = ehrshare_fhir::served::source_system(r.source_hcp);
                        let own = body.get("id").and_then(serde_json::Value::as_str);
                        ehrshare_fhir::search::token_matches(
                            t,
                            &body,
                            param,
                            any,
                            own.map(|id| (system.as_str(), id)),
                        )
                    })
            })
            .collect();
        let mut matching = matching;
        match search.sort {
            None => {}
            Some(SortBy::LastUpdated { descending }) => {
                matching.sort_by_key(|r| (r.updated_at, r.id));
                if descending {
                    matching.reverse();
                }
            }
            Some(SortBy::Date { descending }) => {
                let t = &search.resource_type;
                let mut keyed: Vec<(Option<time::OffsetDateTime>, ListedRecord)> = matching
                    .into_iter()
                    .map(|r| {
                        let start = serde_json::from_str::<serde_json::Value>(&r.body)
                            .ok()
                            .and_then(|b| ehrshare_fhir::search::date_start(t, &b));
                        (start, r)
                    })
                    .collect();
                // Those without a date last, whichever way.
                keyed.sort_by(|(a, ra), (b, rb)| match (a, b) {
                    (Some(a), Some(b)) if descending => (b, rb.id).cmp(&(a, ra.id)),
                    (Some(a), Some(b)) => (a, ra.id).cmp(&(b, rb.id)),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => ra.id.cmp(&rb.id),
                });
                matching = keyed.into_iter().map(|(_, r)| r).collect();
            }
        }
        let total = matching.len();
        let records: Vec<ListedRecord> = matching
            .into_iter()
            .skip(search.offset)
            .take(search.count)
            .collect();
        entry.disclosed = Some(crate::record::disclosed_set(
            facts.record_rev,
            &scope,
            &candidates,
            &records,
        ));
        match self
            .record_access(entry, &asker, &facts, basis, obligations)
            .await
        {
            Ok(()) => Ok(Found { records, total }),
            // The consent was revoked meanwhile: audited as refused, and nothing found.
            Err(AppError::Forbidden { .. }) => Ok(nothing),
            Err(e) => Err(e),
        }
    }
}
