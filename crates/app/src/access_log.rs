//! Who looked (SPEC 3.9): the audit log seen through three windows. The recipient (or an SDM
//! with authority) sees every entry about their record, naming the person, role, provider,
//! domains, purpose and time; a provider's user administrators see what their provider's users
//! did; the office's privacy officers see all. Alerts raised by the rules are reviewed here
//! too (open -> reviewed, with a note).

use std::collections::HashMap;

use ehrshare_core::account::{OfficeRole, Realm};
use ehrshare_core::alert::AlertStatus;
use ehrshare_core::audit::{AuditEntry, Outcome};
pub use ehrshare_store::alert::AlertRow as Alert;
use ehrshare_store::alert::AlertRow;
pub use ehrshare_store::alert::PATIENT_REPORT;
pub use ehrshare_store::audit::{AuditFilter, AuditSearch, LogNarrowing};
use ehrshare_store::{Conn, change};
use uuid::Uuid;

use crate::auth::{Session, Subject};
use crate::caller::Caller;
use crate::{App, AppError};

/// One line of an access log, with names resolved.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub entry: AuditEntry,
    pub actor_name_en: Option<String>,
    pub actor_name_zh: Option<String>,
    /// The acting account's user name: unique and plain ASCII, so that a display name that
    /// looks like another person's (a confusable) cannot pass for theirs (issue 22).
    pub actor_user_name: Option<String>,
    pub hcp_name_en: Option<String>,
    pub hcp_name_zh: Option<String>,
    /// The disclosure a `disclosure.record` entry recorded, in the recipient's own log.
    pub disclosure: Option<ehrshare_store::disclosure::DisclosureRow>,
    /// The records a read released, each with the version that left where the entry
    /// recorded one (reads logged before versions were recorded name none; ADR 0023). Empty
    /// for anything but a read that released records: a refusal, a deposit, a login.
    pub records: Vec<Released>,
    /// Whether the record history still gives back what this entry says left: false when it
    /// does not (`audit verify` names such an entry), and then `records` is empty.
    pub records_checked: bool,
}

/// A record a read released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub id: Uuid,
    /// The version that left; `None` in reads logged before versions were recorded.
    pub version: Option<u64>,
    /// Every version up to `version` left (an instance history).
    pub history: bool,
}

/// The reads logged before their disclosures were recorded, which named what left by id
/// (ADR 0023).
const READS_BY_ID: [&str; 3] = ["record.summary", "record.read", "record.search"];

/// The records an entry says a read released: a disclosure rebuilt from the recipient's record
/// history (`histories`, loaded once a recipient); an older read's ids. `None` when the history
/// no longer gives back what left.
fn released(
    e: &AuditEntry,
    histories: &HashMap<Uuid, Vec<ehrshare_core::audit::VersionFact>>,
) -> Option<Vec<Released>> {
    use ehrshare_core::audit::Disclosed;
    match &e.entry.disclosed {
        Some(Disclosed::Version { version, history }) => Some(
            e.entry
                .record_ids
                .iter()
                .map(|id| Released {
                    id: *id,
                    version: Some(*version),
                    history: *history,
                })
                .collect(),
        ),
        Some(Disclosed::Set(set)) => {
            let history = e
                .entry
                .recipient
                .and_then(|r| histories.get(&r))
                .map_or(&[][..], Vec::as_slice);
            ehrshare_core::audit::disclosed::reconstruct(history, set)
                .ok()
                .map(|list| {
                    list.into_iter()
                        .map(|(id, v)| Released {
                            id,
                            version: Some(v),
                            history: false,
                        })
                        .collect()
                })
        }
        None if e.entry.outcome == Outcome::Allowed
            && READS_BY_ID.contains(&e.entry.action.as_str()) =>
        {
            Some(
                e.entry
                    .record_ids
                    .iter()
                    .map(|id| Released {
                        id: *id,
                        version: None,
                        history: false,
                    })
                    .collect(),
            )
        }
        None => Some(Vec::new()),
    }
}

/// At most this many lines per page.
pub const PAGE: u32 = 100;

/// The longest report of a suspicious access, in characters.
pub const REPORT_WORDS: usize = 1000;

/// The most reports a recipient may have open at once.
pub const OPEN_REPORTS: usize = 10;

impl App {
    /// The record history of each recipient whose entries among `entries` name a set.
    async fn histories(
        &self,
        entries: &[AuditEntry],
    ) -> Result<HashMap<Uuid, Vec<ehrshare_core::audit::VersionFact>>, AppError> {
        let mut histories = HashMap::new();
        for e in entries {
            if let (Some(ehrshare_core::audit::Disclosed::Set(_)), Some(r)) =
                (&e.entry.disclosed, e.entry.recipient)
                && let std::collections::hash_map::Entry::Vacant(v) = histories.entry(r)
            {
                v.insert(self.db().record_history(r).await?);
            }
        }
        Ok(histories)
    }

    /// Entries as a provider's FHIR `AuditEvent`s show them: a read's records named by id
    /// (rebuilt from the history; none when it no longer gives them back), never its scope or
    /// bitmap, whose gaps would hint at restricted records (SPEC 3.7).
    async fn records_named(&self, entries: &mut [AuditEntry]) -> Result<(), AppError> {
        let histories = self.histories(entries).await?;
        for e in entries.iter_mut() {
            if matches!(
                e.entry.disclosed,
                Some(ehrshare_core::audit::Disclosed::Set(_))
            ) {
                e.entry.record_ids = released(e, &histories)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
                e.entry.disclosed = None;
            }
        }
        Ok(())
    }

    async fn lines(&self, entries: Vec<AuditEntry>) -> Result<Vec<LogLine>, AppError> {
        let histories = self.histories(&entries).await?;
        let mut accounts: HashMap<Uuid, (String, Option<String>, String)> = HashMap::new();
        let mut providers: HashMap<Uuid, (String, String)> = HashMap::new();
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let actor = match e.entry.actor.account {
                Some(id) => {
                    if let std::collections::hash_map::Entry::Vacant(v) = accounts.entry(id)
                        && let Some(a) = self.db().account(id).await?
                    {
                        v.insert((a.name_en, a.name_zh, a.user_name));
                    }
                    accounts.get(&id).cloned()
                }
                None => None,
            };
            let hcp = match e.entry.actor.hcp {
                Some(id) => {
                    if let std::collections::hash_map::Entry::Vacant(v) = providers.entry(id)
                        && let Some((h, _)) = self.db().hcp(id).await?
                    {
                        v.insert((h.name_en, h.name_zh));
                    }
                    providers.get(&id).cloned()
                }
                None => None,
            };
            let records = released(&e, &histories);
            out.push(LogLine {
                records_checked: records.is_some(),
                records: records.unwrap_or_default(),
                entry: e,
                actor_name_en: actor.as_ref().map(|a| a.0.clone()),
                actor_user_name: actor.as_ref().map(|a| a.2.clone()),
                actor_name_zh: actor.and_then(|a| a.1),
                hcp_name_en: hcp.as_ref().map(|h| h.0.clone()),
                hcp_name_zh: hcp.map(|h| h.1),
                disclosure: None,
            });
        }
        Ok(out)
    }

    /// The access log of a recipient, for the recipient or an SDM with authority: newest
    /// first, before sequence number `before`, narrowed to one provider's users and a period
    /// when asked.
    pub async fn recipient_access_log(
        &self,
        session: &Session,
        recipient: Uuid,
        narrow: LogNarrowing,
        before: Option<u64>,
    ) -> Result<Vec<LogLine>, AppError> {
        self.acting_for(session, recipient).await?;
        let entries = self
            .db()
            .audit_entries_by(AuditFilter::Recipient(recipient), &narrow, before, PAGE)
            .await?;
        // A recorded disclosure shows once it is no longer withheld (SPEC 3.11), with what
        // was disclosed to whom; until then its entry is not the recipient's to see.
        let disclosures = if entries
            .iter()
            .any(|e| e.entry.action == ehrshare_core::disclosure::DISCLOSURE_ACTION)
        {
            self.db().disclosures(recipient).await?
        } else {
            Vec::new()
        };
        let now = self.clock().now();
        let shown = |e: &AuditEntry| {
            if e.entry.action != ehrshare_core::disclosure::DISCLOSURE_ACTION {
                return Some(None);
            }
            let d = disclosures
                .iter()
                .find(|d| e.entry.record_ids.first() == Some(&d.id))?;
            ehrshare_core::disclosure::visible(d.withhold_until, now).then(|| Some(d.clone()))
        };
        let mut kept = Vec::with_capacity(entries.len());
        let mut details = Vec::with_capacity(entries.len());
        for e in entries {
            if let Some(d) = shown(&e) {
                details.push(d);
                kept.push(e);
            }
        }
        let mut lines = self.lines(kept).await?;
        for (line, d) in lines.iter_mut().zip(details) {
            line.disclosure = d;
        }
        Ok(lines)
    }

    /// An entry about a recipient with its RFC 6962 inclusion proof in the current tree, for
    /// the recipient (or an SDM with authority) to check independently: leaf =
    /// SHA-256(0x00 || canonical bytes). Entries about someone else are 404.
    pub async fn recipient_entry_proof(
        &self,
        session: &Session,
        recipient: Uuid,
        seq: u64,
    ) -> Result<
        (
            AuditEntry,
            Vec<ehrshare_core::audit::merkle::Hash>,
            ehrshare_store::audit::TreeHead,
        ),
        AppError,
    > {
        self.acting_for(session, recipient).await?;
        let (entry, proof, head) = self.audit_inclusion_proof(seq).await?;
        if !self.in_recipients_log(recipient, &entry).await? {
            return Err(AppError::NotFound);
        }
        Ok((entry, proof, head))
    }

    /// Whether `entry` is in `recipient`'s own access log now: about them, and not a
    /// disclosure still withheld (SPEC 3.11), whose entry is not theirs to see yet.
    async fn in_recipients_log(
        &self,
        recipient: Uuid,
        entry: &AuditEntry,
    ) -> Result<bool, AppError> {
        if entry.entry.recipient != Some(recipient) {
            return Ok(false);
        }
        if entry.entry.action != ehrshare_core::disclosure::DISCLOSURE_ACTION {
            return Ok(true);
        }
        let now = self.clock().now();
        Ok(self.db().disclosures(recipient).await?.iter().any(|d| {
            entry.entry.record_ids.first() == Some(&d.id)
                && ehrshare_core::disclosure::visible(d.withhold_until, now)
        }))
    }

    /// Reports an entry of the recipient's access log as suspicious (SPEC 3.9): a case beside
    /// the alerts (rule `patient-report`), seen by the user administrators of the provider
    /// whose user made the access and by the office's privacy officers; the reporter is told
    /// the outcome when it is reviewed. One open report per entry.
    pub async fn report_access(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        seq: u64,
        words: &str,
    ) -> Result<AlertRow, AppError> {
        let sdm = self
            .owner_with_authority(session, caller, recipient, "access.report")
            .await?;
        let Subject::Person(person) = &session.subject else {
            return Err(AppError::NotFound);
        };
        let words = words.trim();
        if words.is_empty()
            || words.chars().count() > REPORT_WORDS
            || words
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(crate::error::invalid(
                "/words",
                "report-words-required",
                "say what looks wrong (up to 1000 characters)",
            ));
        }
        let entry = self
            .db()
            .audit_entries(seq, 1)
            .await?
            .into_iter()
            .find(|e| e.seq == seq)
            .ok_or(AppError::NotFound)?;
        if !self.in_recipients_log(recipient, &entry).await? {
            return Err(AppError::NotFound);
        }
        let seq_i = i64::try_from(seq).map_err(|e| AppError::Internal(Box::new(e)))?;
        let open: Vec<AlertRow> = self
            .db()
            .reports_of(recipient)
            .await?
            .into_iter()
            .filter(|r| r.status == AlertStatus::Open)
            .collect();
        // Enough to report everything one saw go wrong; not a way to flood the office.
        if open.len() >= OPEN_REPORTS {
            return Err(AppError::Conflict {
                code: "too-many-open-reports",
                message: "ten reports are open already: wait for their outcome".to_owned(),
            });
        }
        if open.iter().any(|r| r.audit_seq == Some(seq_i)) {
            return Err(AppError::Conflict {
                code: "already-reported",
                message: "this access is reported already and the report is open".to_owned(),
            });
        }
        let now = self.clock().now();
        let report = AlertRow {
            id: Uuid::now_v7(),
            rule: ehrshare_store::alert::PATIENT_REPORT.to_owned(),
            // A read refused for a restriction is shown to the provider as the read of a
            // missing record, naming nobody (SPEC 3.7): its report goes to the office alone.
            hcp_id: entry
                .entry
                .actor
                .hcp
                .filter(|_| entry.entry.denial_reason.as_deref() != Some("restricted")),
            account_id: entry.entry.actor.account,
            recipient_id: Some(recipient),
            audit_seq: Some(seq_i),
            detail: Some(words.to_owned()),
            status: AlertStatus::Open,
            note: None,
            reported_by: Some(person.id),
            created_at: now,
        };
        // The audit entry names the report, not the reporter's words (a permanent log is no
        // place for free text).
        let mut audit = caller.entry(self, "access.report", Outcome::Allowed);
        audit.recipient = Some(recipient);
        audit.sdm = sdm;
        audit.record_ids = vec![report.id];
        let row = report.clone();
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::alert::insert_alert(conn, &row).await })
        });
        self.audit_with(audit, insert).await?;
        Ok(report)
    }

    /// The recipient's reports of suspicious accesses, with their state and outcome, for the
    /// recipient or an SDM with authority.
    pub async fn own_reports(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
    ) -> Result<Vec<AlertRow>, AppError> {
        self.owner_with_authority(session, caller, recipient, "access.report")
            .await?;
        Ok(self.db().reports_of(recipient).await?)
    }

    /// What a provider's users did, for its user administrators.
    pub async fn provider_access_log(
        &self,
        session: &Session,
        hcp: Uuid,
        before: Option<u64>,
    ) -> Result<Vec<LogLine>, AppError> {
        let ok = session
            .account()
            .is_some_and(|a| a.realm == Realm::Hcp && a.hcp_id == Some(hcp) && a.user_admin);
        if !ok {
            return Err(AppError::NotFound);
        }
        let mut entries = self
            .db()
            .audit_entries_by(
                AuditFilter::Provider(hcp),
                &LogNarrowing::default(),
                before,
                PAGE,
            )
            .await?;
        entries.iter_mut().for_each(as_a_provider_sees_it);
        self.lines(entries).await
    }

    /// The provider whose log the caller may search as FHIR `AuditEvent`s, with `access`:
    /// a user administrator, logged in or through an app token that grants it.
    fn audit_reader(session: &Session, access: ehrshare_core::oauth::Access) -> Option<Uuid> {
        let admin_of = |a: &ehrshare_store::account::AccountRow| {
            (a.realm == Realm::Hcp && a.user_admin)
                .then_some(a.hcp_id)
                .flatten()
        };
        match &session.subject {
            Subject::Account(a) => admin_of(a),
            // A token launched for one patient is not a window on the provider's log.
            Subject::Client(g) if g.patient.is_some() => None,
            Subject::Client(g) => g
                .account
                .as_ref()
                .and_then(admin_of)
                .filter(|hcp| *hcp == g.hcp_id)
                .filter(|_| {
                    g.scopes.iter().any(|s| {
                        s.allows(ehrshare_core::oauth::Context::User, access, "AuditEvent")
                    })
                }),
            _ => None,
        }
    }

    /// FHIR's `AuditEvent` search: the caller's provider's users' entries (its user
    /// administrators only), `search.hcp` set to the caller's provider whatever was asked.
    /// How many match, and the page. A search by patient leaves out what a provider is never
    /// shown about one (a read refused for a restriction).
    pub async fn provider_audit_search(
        &self,
        session: &Session,
        mut search: AuditSearch,
    ) -> Result<(u64, Vec<AuditEntry>), AppError> {
        let hcp = Self::audit_reader(session, ehrshare_core::oauth::Access::Search)
            .ok_or(AppError::NotFound)?;
        search.hcp = hcp;
        search.without_restricted = search.recipient.is_some();
        let (total, mut entries) = self.db().audit_search(&search).await?;
        entries.iter_mut().for_each(as_a_provider_sees_it);
        self.records_named(&mut entries).await?;
        Ok((total, entries))
    }

    /// One entry of the caller's provider's users, as [`App::provider_audit_search`] shows
    /// it; any other is 404.
    pub async fn provider_audit_entry(
        &self,
        session: &Session,
        seq: u64,
    ) -> Result<AuditEntry, AppError> {
        let hcp = Self::audit_reader(session, ehrshare_core::oauth::Access::Read)
            .ok_or(AppError::NotFound)?;
        let mut entry = self
            .db()
            .audit_entries(seq, 1)
            .await?
            .into_iter()
            .find(|e| e.seq == seq && e.entry.actor.hcp == Some(hcp))
            .ok_or(AppError::NotFound)?;
        as_a_provider_sees_it(&mut entry);
        let mut entries = [entry];
        self.records_named(&mut entries).await?;
        let [entry] = entries;
        Ok(entry)
    }

    /// Any recipient's or provider's log, for the office's privacy officers.
    pub async fn office_access_log(
        &self,
        session: &Session,
        filter: AuditFilter,
        before: Option<u64>,
    ) -> Result<Vec<LogLine>, AppError> {
        if !is_privacy_officer(session) {
            return Err(AppError::NotFound);
        }
        let entries = self
            .db()
            .audit_entries_by(filter, &LogNarrowing::default(), before, PAGE)
            .await?;
        self.lines(entries).await
    }

    /// Alerts: a provider's, for its user administrators (`Some(hcp)`), or all open ones for
    /// the office's privacy officers (`None`).
    pub async fn alerts(
        &self,
        session: &Session,
        hcp: Option<Uuid>,
    ) -> Result<Vec<AlertRow>, AppError> {
        match hcp {
            Some(h) => {
                let ok = session.account().is_some_and(|a| {
                    (a.realm == Realm::Hcp && a.hcp_id == Some(h) && a.user_admin)
                        || is_privacy_officer(session)
                });
                if !ok {
                    return Err(AppError::NotFound);
                }
                Ok(self.db().alerts(h).await?)
            }
            None if is_privacy_officer(session) => Ok(self.db().open_alerts().await?),
            None => Err(AppError::NotFound),
        }
    }

    /// Reviews an alert with a note (its provider's user administrators, or the office's
    /// privacy officers). Audited.
    pub async fn review_alert(
        &self,
        session: &Session,
        caller: &Caller,
        alert: Uuid,
        note: &str,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let a = self.db().alert(alert).await?.ok_or(AppError::NotFound)?;
        let may = is_privacy_officer(session)
            || session.account().is_some_and(|acc| {
                acc.realm == Realm::Hcp && acc.user_admin && acc.hcp_id == a.hcp_id
            });
        if !may {
            return Err(AppError::NotFound);
        }
        let note = note.trim().to_owned();
        if note.is_empty() || note.chars().count() > 2000 {
            return Err(AppError::Invalid {
                code: "note-required",
                message: "a review needs a note (up to 2000 characters)".to_owned(),
                fields: Vec::new(),
            });
        }
        if a.status != AlertStatus::Open {
            return Err(AppError::Conflict {
                code: "already-reviewed",
                message: "the alert was reviewed already".to_owned(),
            });
        }
        let reviewer = session.account().map(|acc| acc.id);
        let report = a.rule == ehrshare_store::alert::PATIENT_REPORT;
        // A patient's report is concluded by the office, which the provider answers to: its
        // user administrators see it, but neither they nor the user reported close it.
        if report && !is_privacy_officer(session) {
            return Err(AppError::Forbidden {
                code: "report-for-the-office",
                message: "a patient's report is reviewed by the eHR Office's privacy officers"
                    .to_owned(),
            });
        }
        if report && reviewer.is_some() && reviewer == a.account_id {
            return Err(AppError::Forbidden {
                code: "reviewer-is-reported",
                message: "a report of your own access is reviewed by someone else".to_owned(),
            });
        }
        // A recipient's report: the reporter is told the outcome, through their channel (or
        // the SDM's who acts now), in the same transaction as the review.
        let mut notices = Vec::new();
        if report && let Some(r) = a.recipient_id {
            let reg = self.load_recipient(r).await?;
            let sdm = crate::recipient::messaged_sdm(&reg, now)?;
            notices.push(crate::recipient::recipient_notice(
                &reg.recipient,
                sdm,
                "report-concluded",
                ehrshare_core::notification::Carries::News,
                std::collections::BTreeMap::from([
                    (
                        "date".to_owned(),
                        ehrshare_core::clock::hong_kong_date(a.created_at).to_string(),
                    ),
                    ("outcome".to_owned(), note.clone()),
                ]),
            ));
        }
        let mut entry = caller.entry(self, "alert.review", Outcome::Allowed);
        entry.recipient = a.recipient_id;
        entry.record_ids = vec![alert];
        // A report's outcome is written to the reporter, not into the permanent log.
        entry.reason = (!report).then(|| note.clone());
        let review = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::alert::review_alert(conn, alert, &note, reviewer, now).await
            })
        });
        self.audit_and_notify(entry, Some(review), notices).await?;
        Ok(())
    }
}

/// A read refused for a restriction is shown to the provider as the read of a missing record:
/// the restriction is the recipient's, and nothing may hint at it (SPEC 3.7). The recipient
/// and the office see it as it is.
fn as_a_provider_sees_it(e: &mut AuditEntry) {
    if e.entry.denial_reason.as_deref() == Some("restricted") {
        e.entry.denial_reason = Some("not-found".to_owned());
        e.entry.recipient = None;
    }
}

pub(crate) fn is_privacy_officer(session: &Session) -> bool {
    matches!(&session.subject, Subject::Account(a)
        if a.realm == Realm::Office
            && OfficeRole::parse(&a.role) == Some(OfficeRole::PrivacyOfficer))
}
