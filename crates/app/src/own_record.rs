//! A recipient's own record, read by the recipient or by an SDM for them (issue 27, item 2):
//! every domain, the records of providers they never consented to included, with each
//! record's provider, its own clinical date and its versions. Decided by
//! `core::access::decide_own` (basis `self`) and audited like any read, with the reason
//! `self` that the recipient's access log shows.

use std::collections::{BTreeMap, HashMap};

use ehrshare_core::access::{Action, Ask, Decision, Owner, RecordRef, decide_own};
use ehrshare_core::audit::Outcome;
use ehrshare_core::domain::Domain;
use ehrshare_core::recipient::RecipientStatus;
use ehrshare_store::facts::ListedRecord;
use ehrshare_store::record::RecordRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::access::deny_error;
use crate::auth::{Session, Subject};
use crate::caller::Caller;
use crate::{App, AppError};

/// The reason every own read is audited with: the recipient's log shows it.
pub const SELF: &str = "self";

/// A record as its owner reads it.
#[derive(Debug, Clone)]
pub struct OwnRecord {
    pub record: ListedRecord,
    /// The depositing provider's names (English, Chinese).
    pub provider: (String, String),
    /// The resource's own date (`fhir::headline::clinical_date`), as written.
    pub clinical_date: Option<String>,
    /// What it is about, in one line.
    pub headline: String,
}

/// One record with its history, as its owner reads it.
#[derive(Debug, Clone)]
pub struct OwnRecordDetail {
    pub record: RecordRow,
    pub provider: (String, String),
    /// Who deposited it (the account's names and role), when a user did.
    pub clinician: Option<(String, Option<String>, String)>,
    pub clinical_date: Option<String>,
    pub headline: String,
    /// Every version, newest first.
    pub versions: Vec<RecordRow>,
}

/// How the logged-in person is linked to `recipient`, if at all.
struct Link {
    owner: Owner,
    sdm: Option<Uuid>,
}

/// Who can see a recipient's record now (issue 27, item 3), with the providers' names.
#[derive(Debug, Clone)]
pub struct WhoCanSee {
    pub exposure: ehrshare_core::access::Exposure,
    /// Every active public provider: deemed consent (SPEC 3.4).
    pub deemed: Vec<Uuid>,
    /// The names (English, Chinese) of every provider named above.
    pub names: HashMap<Uuid, (String, String)>,
    /// How each consent in force was given (a `Method` code), by consent id.
    pub methods: HashMap<Uuid, String>,
    /// When each episode that covers now ends (or ended): its care window then closes
    /// `care_window.after` later.
    pub episode_ends: HashMap<Uuid, OffsetDateTime>,
}

impl App {
    /// How the logged-in person stands to `recipient`: the recipient, or an SDM named on the
    /// registration (whose authority may have ended). Anyone else, and any staff session:
    /// 404, the same as a recipient that does not exist.
    async fn own_link(&self, session: &Session, recipient: Uuid) -> Result<Link, AppError> {
        let Subject::Person(person) = &session.subject else {
            return Err(AppError::NotFound);
        };
        let (own, as_sdm) = self
            .db()
            .recipients_of_document(&person.doc_type, &person.doc_issuer, &person.doc_number)
            .await?;
        if own == Some(recipient) {
            return Ok(Link {
                owner: Owner::Recipient,
                sdm: None,
            });
        }
        let rows: Vec<Uuid> = as_sdm
            .into_iter()
            .filter(|(r, _)| *r == recipient)
            .map(|(_, sdm)| sdm)
            .collect();
        if rows.is_empty() {
            return Err(AppError::NotFound);
        }
        let reg = self.load_recipient(recipient).await?;
        let now = self.clock().now();
        // Named more than once (a parent, later a guardian): a row with authority wins.
        let mut ended = None;
        for s in reg.sdms.iter().filter(|s| rows.contains(&s.sdm_id)) {
            let may_act = crate::recipient::sdm_may_act_now(&reg, s, now)?;
            if may_act {
                return Ok(Link {
                    owner: Owner::Sdm { may_act },
                    sdm: Some(s.sdm_id),
                });
            }
            ended.get_or_insert(s.sdm_id);
        }
        let sdm = ended.ok_or(AppError::NotFound)?;
        Ok(Link {
            owner: Owner::Sdm { may_act: false },
            sdm: Some(sdm),
        })
    }

    /// Decides an own read and audits a refusal; on a permit, the entry to commit.
    async fn own_decision(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        action: &'static str,
        ask: &Ask<'_>,
        registered: bool,
    ) -> Result<ehrshare_core::audit::NewAuditEntry, AppError> {
        let link = self.own_link(session, recipient).await?;
        let decision = decide_own(link.owner, registered, ask);
        let mut entry = self.decision_entry(caller, action, recipient, &decision, Some(SELF));
        entry.sdm = link.sdm;
        if let Decision::Deny { reason } = decision {
            self.audit(entry).await?;
            return Err(deny_error(reason));
        }
        Ok(entry)
    }

    /// The names of each provider in `ids`.
    async fn provider_names(
        &self,
        ids: Vec<Uuid>,
        now: OffsetDateTime,
    ) -> Result<HashMap<Uuid, (String, String)>, AppError> {
        let mut names = HashMap::new();
        for id in ids {
            if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(id) {
                let (hcp, _) = self.provider_brief(id, now).await?;
                slot.insert((hcp.name_en, hcp.name_zh));
            }
        }
        Ok(names)
    }

    /// The names and date of birth on a registration, for its owner's printed summary (the
    /// read of the record that follows is audited; this shows them nothing more).
    pub async fn own_identity(
        &self,
        session: &Session,
        recipient: Uuid,
    ) -> Result<(String, Option<String>, String), AppError> {
        self.own_link(session, recipient).await?;
        let r = self.load_recipient(recipient).await?.recipient;
        Ok((r.name_en, r.name_zh, r.date_of_birth))
    }

    /// The recipient's whole record, by domain (every domain listed, even when empty), for
    /// the recipient or an SDM with authority. Audited with every record shown.
    pub async fn read_own_record(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
    ) -> Result<BTreeMap<Domain, Vec<OwnRecord>>, AppError> {
        // Who asks first: a stranger learns nothing, not even whether the recipient exists.
        self.own_link(session, recipient).await?;
        let all: Vec<String> = Domain::ALL.iter().map(|d| d.code().to_owned()).collect();
        let mut facts = self.facts(recipient, &all).await?;
        let registered = facts.registration.recipient.status == RecipientStatus::Active;
        let ask = Ask {
            action: Action::Read,
            domains: &[],
            record: None,
            reason: None,
        };
        let mut entry = self
            .own_decision(
                session,
                caller,
                recipient,
                "record.summary",
                &ask,
                registered,
            )
            .await?;
        let records = std::mem::take(&mut facts.records);
        entry.disclosed = Some(crate::record::disclosed_set(
            facts.record_rev,
            &Domain::ALL,
            &crate::record::candidates(&records, &Domain::ALL),
            &records,
        ));
        let names = self
            .provider_names(
                records.iter().map(|r| r.source_hcp).collect(),
                self.clock().now(),
            )
            .await?;
        self.audit(entry).await?;
        let mut by_domain: BTreeMap<Domain, Vec<OwnRecord>> =
            Domain::ALL.iter().map(|d| (*d, Vec::new())).collect();
        for r in records {
            let resource: serde_json::Value =
                serde_json::from_str(&r.body).map_err(|e| AppError::Internal(Box::new(e)))?;
            let provider = names.get(&r.source_hcp).cloned().unwrap_or_default();
            by_domain.entry(r.domain).or_default().push(OwnRecord {
                clinical_date: ehrshare_fhir::headline::clinical_date(&resource),
                headline: ehrshare_fhir::headline::headline(&resource),
                provider,
                record: r,
            });
        }
        Ok(by_domain)
    }

    /// One record of the recipient's with every version, for the recipient or an SDM with
    /// authority. A record of anyone else is 404 (audited as not found).
    pub async fn read_own_record_detail(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        id: Uuid,
    ) -> Result<OwnRecordDetail, AppError> {
        // An SDM whose authority ended is refused before anything about the record is
        // looked up: the answer cannot tell whether the id is one of the recipient's.
        self.owner_with_authority(session, caller, recipient, "record.read")
            .await?;
        let found = self
            .db()
            .record(id)
            .await?
            .filter(|r| r.recipient_id == recipient);
        let Some(record) = found else {
            let mut entry = caller.entry(self, "record.read", Outcome::Denied);
            entry.recipient = Some(recipient);
            entry.record_ids = vec![id];
            entry.denial_reason = Some("not-found".to_owned());
            self.audit(entry).await?;
            return Err(AppError::NotFound);
        };
        let domain = Domain::parse(&record.domain)
            .ok_or_else(|| AppError::Internal("stored record domain unknown".into()))?;
        let facts = self.facts(recipient, &[]).await?;
        let registered = facts.registration.recipient.status == RecipientStatus::Active;
        let ask = Ask {
            action: Action::Read,
            domains: &[],
            record: Some(RecordRef { id, domain }),
            reason: None,
        };
        let mut entry = self
            .own_decision(session, caller, recipient, "record.read", &ask, registered)
            .await?;
        entry.record_ids = vec![id];
        let versions = self.db().record_versions(id).await?;
        entry.disclosed = Some(crate::record::disclosed_version(
            versions
                .first()
                .map_or(record.version, |latest| latest.version),
            true,
        ));
        let now = self.clock().now();
        let provider = self
            .provider_names(vec![record.source_hcp], now)
            .await?
            .remove(&record.source_hcp)
            .unwrap_or_default();
        let clinician = match record.deposited_by {
            Some(account) => self
                .db()
                .account(account)
                .await?
                .map(|a| (a.name_en, a.name_zh, a.role)),
            None => None,
        };
        self.audit(entry).await?;
        let resource: serde_json::Value =
            serde_json::from_str(&record.body).map_err(|e| AppError::Internal(Box::new(e)))?;
        Ok(OwnRecordDetail {
            clinical_date: ehrshare_fhir::headline::clinical_date(&resource),
            headline: ehrshare_fhir::headline::headline(&resource),
            provider,
            clinician,
            record,
            versions,
        })
    }

    /// Who can see the recipient's record now, as the decision would answer: consents in
    /// force, episodes that cover now, unlocks and emergency access in force, and the public
    /// providers under deemed consent. For the recipient or an SDM with authority (an ended
    /// one: 403 `sdm-authority-ended`); anyone else 404.
    pub async fn who_can_see(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
    ) -> Result<WhoCanSee, AppError> {
        self.owner_with_authority(session, caller, recipient, "sharing.read")
            .await?;
        let now = self.clock().now();
        let facts = self.facts(recipient, &[]).await?;
        let exposure =
            ehrshare_core::access::exposure(&facts.recipient_facts(), now, self.policy().window);
        let mut deemed = Vec::new();
        let everyone = ehrshare_store::provider::DirectoryFilter {
            name: None,
            district: None,
            hcp_type: None,
            profession: None,
        };
        let mut names = HashMap::new();
        for (hcp, _) in self.db().directory_candidates(&everyone).await? {
            if hcp.sector == ehrshare_core::provider::Sector::Public
                && crate::provider::lifecycle(&hcp)?.status_at(now).is_active()
            {
                deemed.push(hcp.id);
                names.insert(hcp.id, (hcp.name_en, hcp.name_zh));
            }
        }
        let named: Vec<Uuid> = exposure
            .consents
            .iter()
            .map(|(c, _)| c.hcp)
            .chain(exposure.episodes.iter().map(|e| e.hcp))
            .chain(exposure.unlocks.iter().map(|(_, _, u)| u.hcp))
            .chain(exposure.emergency.iter().map(|g| g.hcp))
            .filter(|id| !names.contains_key(id))
            .collect();
        names.extend(self.provider_names(named, now).await?);
        let mut methods = HashMap::new();
        for (c, _) in &exposure.consents {
            if let Some(row) = self.db().consent(c.id).await? {
                methods.insert(c.id, row.method);
            }
        }
        let idle = self.policy().window.idle;
        let episode_ends = exposure
            .episodes
            .iter()
            .map(|e| (e.id, e.ends_at(idle)))
            .collect();
        Ok(WhoCanSee {
            exposure,
            deemed,
            names,
            methods,
            episode_ends,
        })
    }

    /// The recipient's access key as its owner sees it: when it was issued, and whether
    /// wrong keys typed at providers have locked it (for the recipient or an SDM with
    /// authority). The key itself is never shown: it went by the recipient's channel.
    pub async fn own_access_key(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
    ) -> Result<AccessKeyState, AppError> {
        self.owner_with_authority(session, caller, recipient, "access-key.read")
            .await?;
        let issued_at = self.db().access_key_issued_at(recipient).await?;
        let key = crate::attempt::Typed::AccessKey.recipient_key(recipient);
        let f = crate::login::failures(&self.db().login_failures(&key).await?);
        let locked = matches!(
            f.gate(self.policy_for(&key), self.clock().now()),
            ehrshare_core::login::Gate::Locked { .. }
        );
        Ok(AccessKeyState { issued_at, locked })
    }

    /// The recipient (or an SDM with authority) has a new access key made: sent by their
    /// channel (never shown here, never in a log), the old one dead at once, the lock lifted.
    /// At most one a minute (429 `access-key-just-issued`), since each costs a message.
    pub async fn regenerate_own_access_key(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
    ) -> Result<OffsetDateTime, AppError> {
        let sdm = self
            .owner_with_authority(session, caller, recipient, "access-key.regenerate")
            .await?;
        let now = self.clock().now();
        if let Some(at) = self.db().access_key_issued_at(recipient).await?
            && now - at < REGENERATE_EVERY
        {
            let wait = (at + REGENERATE_EVERY - now).whole_seconds().max(1);
            return Err(AppError::Throttled {
                code: "access-key-just-issued",
                message: "a new access key was issued less than a minute ago".to_owned(),
                retry_after_secs: u32::try_from(wait).unwrap_or(60),
            });
        }
        let reg = self.load_recipient(recipient).await?;
        if reg.recipient.status != RecipientStatus::Active {
            return Err(AppError::NotFound);
        }
        let acting = sdm.and_then(|id| reg.sdms.iter().find(|s| s.sdm_id == id));
        let (hash, notice) = crate::recipient::issue_access_key(&reg.recipient, acting).await?;
        let mut entry = caller.entry(self, "access-key.regenerate", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.sdm = sdm;
        let lock = crate::attempt::Typed::AccessKey.recipient_key(recipient);
        let replace = ehrshare_store::change(move |mut conn: ehrshare_store::Conn<'_>| {
            Box::pin(async move {
                // Checked again in the transaction: of two requests at once, one key is sent.
                ehrshare_store::recipient::replace_access_key_unless_recent(
                    conn.reborrow(),
                    recipient,
                    &hash,
                    now,
                    now - REGENERATE_EVERY,
                )
                .await?;
                ehrshare_store::account::clear_failures(conn, &lock).await
            })
        });
        self.audit_and_notify(entry, Some(replace), vec![notice])
            .await?;
        Ok(now)
    }

    /// Whether the logged-in person may act for `recipient` now (the patient portal's pages
    /// that only show a form ask it): 404 for a stranger, 403 `sdm-authority-ended` (audited
    /// as `action`) for an SDM whose authority ended.
    pub async fn check_owner(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        action: &'static str,
    ) -> Result<(), AppError> {
        self.owner_with_authority(session, caller, recipient, action)
            .await
            .map(|_| ())
    }

    /// The SDM id if an SDM acts; an ended SDM is 403 `sdm-authority-ended` (audited as a
    /// refused `action`: the person the child became sees the attempt), a stranger 404.
    pub(crate) async fn owner_with_authority(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        action: &'static str,
    ) -> Result<Option<Uuid>, AppError> {
        let link = self.own_link(session, recipient).await?;
        if let Owner::Sdm { may_act: false } = link.owner {
            let reason = ehrshare_core::access::DenyReason::SdmAuthorityEnded;
            let mut entry = caller.entry(self, action, Outcome::Denied);
            entry.recipient = Some(recipient);
            entry.sdm = link.sdm;
            entry.denial_reason = Some(reason.code().to_owned());
            self.audit(entry).await?;
            return Err(deny_error(reason));
        }
        Ok(link.sdm)
    }
}

/// The shortest time between two access keys asked for in the portal.
pub const REGENERATE_EVERY: time::Duration = time::Duration::minutes(1);

/// An access key's state, as its owner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessKeyState {
    pub issued_at: Option<OffsetDateTime>,
    /// Wrong keys typed at providers locked it (a new key lifts the lock).
    pub locked: bool,
}

/// A recipient's notification preferences (issue 27, item 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    /// A `Channel` code.
    pub notify_channel: String,
    /// `en` or `zh-HK`.
    pub language: String,
    /// Ordinary access notices turned off (never those of a restricted access).
    pub refuses_access_notices: bool,
    /// What is on file to reach them (shown, changed through the office for now).
    pub phone: String,
    pub email: Option<String>,
    pub address: Option<String>,
}

impl App {
    /// The recipient's notification preferences, for the recipient or an SDM with authority.
    pub async fn own_preferences(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
    ) -> Result<Preferences, AppError> {
        self.owner_with_authority(session, caller, recipient, "recipient.preferences")
            .await?;
        let r = self.load_recipient(recipient).await?.recipient;
        Ok(Preferences {
            notify_channel: r.notify_channel,
            language: r.language,
            refuses_access_notices: r.refuses_access_notices,
            phone: r.phone,
            email: r.email,
            address: r.address,
        })
    }

    /// Changes the channel, the language and whether ordinary access notices are sent:
    /// a channel needs its address on file (422 naming `/notify_channel`); audited; the
    /// recipient is told by the channel now chosen.
    pub async fn set_own_preferences(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        notify_channel: &str,
        language: &str,
        refuses_access_notices: bool,
    ) -> Result<Preferences, AppError> {
        use ehrshare_core::notification::{Channel, Unreachable, reachable};
        let sdm = self
            .owner_with_authority(session, caller, recipient, "recipient.preferences")
            .await?;
        let channel = Channel::parse(notify_channel.trim()).ok_or_else(|| {
            crate::error::invalid(
                "/notify_channel",
                "invalid-channel",
                "sms, email, post or app",
            )
        })?;
        if !matches!(language, "en" | "zh-HK") {
            return Err(crate::error::invalid(
                "/language",
                "invalid-language",
                "en or zh-HK",
            ));
        }
        let reg = self.load_recipient(recipient).await?;
        let r = &reg.recipient;
        if let Err(missing) = reachable(channel, r.email.is_some(), r.address.is_some()) {
            return Err(crate::error::invalid(
                "/notify_channel",
                "channel-unreachable",
                match missing {
                    Unreachable::NoEmail => "no e-mail address is on file",
                    Unreachable::NoAddress => "no postal address is on file",
                },
            ));
        }
        let mut entry = caller.entry(self, "recipient.preferences", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.sdm = sdm;
        entry.reason = Some(format!(
            "{} {language}{}",
            channel.code(),
            if refuses_access_notices {
                " no-access-notices"
            } else {
                ""
            }
        ));
        let mut changed = r.clone();
        changed.notify_channel = channel.code().to_owned();
        changed.language = language.to_owned();
        changed.refuses_access_notices = refuses_access_notices;
        let acting = sdm.and_then(|id| reg.sdms.iter().find(|s| s.sdm_id == id));
        // Told by the channel now chosen and, if it changed, by the one before: a session
        // someone else took cannot move the notices away unseen.
        let tell = |who: &ehrshare_store::recipient::RecipientRow| {
            crate::recipient::recipient_notice(
                who,
                acting,
                "preferences-changed",
                ehrshare_core::notification::Carries::News,
                std::collections::BTreeMap::new(),
            )
        };
        let mut notices = vec![tell(&changed)];
        let before = tell(r);
        if before.channel != notices[0].channel || before.address != notices[0].address {
            notices.push(before);
        }
        let (code, lang) = (channel.code().to_owned(), language.to_owned());
        let store = ehrshare_store::change(move |conn: ehrshare_store::Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::recipient::set_preferences(
                    conn,
                    recipient,
                    &code,
                    &lang,
                    refuses_access_notices,
                )
                .await
            })
        });
        self.audit_and_notify(entry, Some(store), notices).await?;
        Ok(Preferences {
            notify_channel: changed.notify_channel,
            language: changed.language,
            refuses_access_notices,
            phone: changed.phone,
            email: changed.email,
            address: changed.address,
        })
    }
}

/// A restriction as its owner sees it, with its unlocks (issue 27, item 6).
#[derive(Debug, Clone)]
pub struct OwnRestriction {
    pub id: Uuid,
    pub item: ehrshare_core::access::Restricted,
    /// What a restricted record is about, in one line (none for a domain).
    pub headline: Option<String>,
    /// Every unlock: the provider's names and until when.
    pub unlocks: Vec<((String, String), OffsetDateTime)>,
}

impl App {
    /// The recipient's restrictions and the unlocks each had, for the recipient or an SDM
    /// with authority.
    pub async fn own_restrictions(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
    ) -> Result<Vec<OwnRestriction>, AppError> {
        self.owner_with_authority(session, caller, recipient, "restriction.read")
            .await?;
        let facts = self.facts(recipient, &[]).await?;
        let hcps: Vec<Uuid> = facts
            .restrictions
            .iter()
            .flat_map(|r| r.unlocks.iter().map(|u| u.hcp))
            .collect();
        let names = self.provider_names(hcps, self.clock().now()).await?;
        let mut out = Vec::new();
        for r in &facts.restrictions {
            let headline = match r.item {
                ehrshare_core::access::Restricted::Record(id) => {
                    match self.db().record(id).await? {
                        Some(row) => serde_json::from_str::<serde_json::Value>(&row.body)
                            .ok()
                            .map(|v| ehrshare_fhir::headline::headline(&v)),
                        None => None,
                    }
                }
                ehrshare_core::access::Restricted::Domain(_) => None,
            };
            out.push(OwnRestriction {
                id: r.id,
                item: r.item,
                headline,
                unlocks: r
                    .unlocks
                    .iter()
                    .map(|u| (names.get(&u.hcp).cloned().unwrap_or_default(), u.until))
                    .collect(),
            });
        }
        Ok(out)
    }
}
