//! Separation of duties and role checks in user administration (ADR 0009): who may grant
//! which role to whom, registration numbers, and the notice a grant sends.

use std::collections::BTreeMap;

use ehrshare_core::account::{
    AccountStatus, AdminAct, Administrator, DutyError, Holder, Manager, OfficeRole, Realm,
    check_duties, may_manage_accounts_of, may_manage_office_accounts, registration_number_free,
};
use ehrshare_core::alert::AlertStatus;
use ehrshare_core::audit::Outcome;
use ehrshare_core::locale::Locale;
use ehrshare_core::notification::Channel;
use ehrshare_core::profession::Role;
use ehrshare_store::alert::AlertRow;
use uuid::Uuid;

use crate::account::AccountRow;
use crate::auth::Session;
use crate::caller::Caller;
use crate::error::{FieldError, invalid_fields};
use crate::outbox::Notice;
use crate::{App, AppError};

/// Whose accounts: a provider's, or the office's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Hcp(Uuid),
    Office,
}

/// An account's identity document as one comparable key.
pub(crate) fn document_key(d: &(String, String, String)) -> String {
    format!("{}:{}:{}", d.0, d.1, d.2)
}

pub(crate) fn manager(session: &Session) -> Option<Manager<'_>> {
    let a = session.account()?;
    Some(Manager {
        realm: a.realm,
        hcp: a.hcp_id,
        user_admin: a.user_admin,
        role: &a.role,
    })
}

/// A refusal by the separation of duties: the acting administrator's own limits are 403, a
/// missing document of the holder is a field to fill in (422).
pub(crate) fn duty_error(e: DutyError) -> AppError {
    match e {
        DutyError::DocumentRequired => invalid_fields(
            "the account has invalid fields",
            vec![FieldError::new(
                "/document",
                e.code(),
                "the holder's identity document is required",
            )],
        ),
        _ => AppError::Forbidden {
            code: e.code(),
            message: e.to_string(),
        },
    }
}

/// What the separation of duties found worth telling: who else hears of a grant, and the
/// alert it raises.
pub(crate) struct Grant {
    pub(crate) notices: Vec<Notice>,
    pub(crate) alert: AlertRow,
}

impl App {
    /// Checks the separation of duties (`core::account::check_duties`) for `act` by the
    /// session's account on the account `holder` (with `document`) in `scope`; a refusal is
    /// audited as `action`, denied. Returns whether the provider had an active user
    /// administrator (for the office's replacement alert).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn check_separation(
        &self,
        session: &Session,
        caller: &Caller,
        action: &'static str,
        scope: Scope,
        holder: Option<Uuid>,
        document: Option<&(String, String, String)>,
        act: AdminAct,
    ) -> Result<bool, AppError> {
        let me = session.account().ok_or(AppError::NotFound)?;
        let my_document = me.document.as_ref().map(document_key);
        let document = document.map(document_key);
        let realm = match scope {
            Scope::Hcp(_) => Realm::Hcp,
            Scope::Office => Realm::Office,
        };
        let has_active_admin =
            match scope {
                Scope::Hcp(h) => self.db().accounts_of(Some(h)).await?.iter().any(|a| {
                    a.user_admin && a.status == AccountStatus::Active && Some(a.id) != holder
                }),
                Scope::Office => true,
            };
        let verdict = check_duties(
            Administrator {
                account: me.id,
                realm: me.realm,
                document: my_document.as_deref(),
            },
            Holder {
                account: holder,
                realm,
                document: document.as_deref(),
            },
            act,
            has_active_admin,
        );
        if let Err(e) = verdict {
            let mut entry = caller.entry(self, action, Outcome::Denied);
            entry.record_ids = holder.into_iter().collect();
            entry.denial_reason = Some(e.code().to_owned());
            self.audit(entry).await?;
            return Err(duty_error(e));
        }
        Ok(has_active_admin)
    }

    /// Refuses a professional registration number that an account of another identity
    /// document (or of none) already carries: 409.
    pub(crate) async fn check_registration_number(&self, row: &AccountRow) -> Result<(), AppError> {
        let (Some(number), Some(document)) = (&row.prof_reg_no, &row.document) else {
            return Ok(());
        };
        let carriers = self
            .db()
            .registration_number_documents(&row.role, number)
            .await?;
        let carriers: Vec<Option<String>> = carriers
            .iter()
            .map(|d| d.as_ref().map(document_key))
            .collect();
        if registration_number_free(
            &document_key(document),
            carriers.iter().map(|d| d.as_deref()),
        ) {
            Ok(())
        } else {
            Err(AppError::Conflict {
                code: "registration-number-taken",
                message: "another person's account carries this registration number".to_owned(),
            })
        }
    }

    /// The notices and the alert for a grant (an account opened, or a role or administrator
    /// flag changed): the holder and the provider's other user administrators are told
    /// (SPEC 4.2, issue 22), and the provider's administrators and the office see an alert.
    pub(crate) async fn grant_notice(
        &self,
        session: &Session,
        scope: Scope,
        row: &AccountRow,
        rule: &'static str,
        tell_holder: bool,
    ) -> Result<Grant, AppError> {
        let me = session.account().map(|a| (a.id, a.user_name.clone()));
        let granted = format!(
            "{}{}",
            row.role,
            if row.user_admin {
                " + user-administrator"
            } else {
                ""
            }
        );
        let by = me.as_ref().map(|m| m.1.clone()).unwrap_or_default();
        let mut told: Vec<(String, String)> = Vec::new();
        if tell_holder {
            told.push((row.mobile.clone(), row.language.clone()));
        }
        if let Scope::Hcp(h) = scope {
            for a in self.db().accounts_of(Some(h)).await? {
                if a.user_admin
                    && a.status == AccountStatus::Active
                    && a.id != row.id
                    && Some(a.id) != me.as_ref().map(|m| m.0)
                {
                    told.push((a.mobile.clone(), a.language.clone()));
                }
            }
        }
        let notices = told
            .into_iter()
            .map(|(address, language)| Notice {
                recipient: None,
                address,
                channel: Channel::Sms,
                template: "account-granted".to_owned(),
                params: BTreeMap::from([
                    ("user".to_owned(), row.user_name.clone()),
                    ("role".to_owned(), granted.clone()),
                    ("by".to_owned(), by.clone()),
                ]),
                locale: Locale::parse(&language).unwrap_or_default(),
            })
            .collect();
        let alert = AlertRow {
            id: Uuid::now_v7(),
            rule: rule.to_owned(),
            hcp_id: row.hcp_id,
            account_id: me.map(|m| m.0),
            recipient_id: None,
            detail: Some(format!(
                "account {} ({}): {granted}, by {by}",
                row.user_name, row.id
            )),
            status: AlertStatus::Open,
            note: None,
            audit_seq: None,
            reported_by: None,
            created_at: self.clock().now(),
        };
        Ok(Grant { notices, alert })
    }

    /// Refuses with 404 unless the session may manage the accounts of `scope`.
    pub(crate) fn check_manager(&self, session: &Session, scope: Scope) -> Result<(), AppError> {
        let m = manager(session).ok_or(AppError::NotFound)?;
        let ok = match scope {
            Scope::Hcp(h) => may_manage_accounts_of(m, h),
            Scope::Office => may_manage_office_accounts(m),
        };
        if ok { Ok(()) } else { Err(AppError::NotFound) }
    }

    /// Checks the role, registration number and administrator flag of an account in `scope`.
    pub(crate) fn check_role(
        &self,
        scope: Scope,
        role: &str,
        prof_reg_no: Option<&str>,
        user_admin: bool,
        fields: &mut Vec<FieldError>,
    ) -> (String, Option<String>, bool) {
        match scope {
            Scope::Office => {
                if OfficeRole::parse(role).is_none() {
                    fields.push(FieldError::new(
                        "/role",
                        "invalid-role",
                        "registration-officer, privacy-officer or system-administrator",
                    ));
                }
                (role.to_owned(), None, false)
            }
            Scope::Hcp(_) => {
                let Some(r) = Role::parse(role).filter(|r| r.enabled_by_default()) else {
                    fields.push(FieldError::new(
                        "/role",
                        "invalid-role",
                        "one of the professions, registration-staff or user-administrator",
                    ));
                    return (role.to_owned(), None, user_admin);
                };
                let number = if r.is_professional() {
                    let patterns = &self.settings().auth.registration_numbers;
                    match patterns.check(r, prof_reg_no.unwrap_or("")) {
                        Ok(n) => Some(n),
                        Err(_) => {
                            fields.push(FieldError::new(
                                "/prof_reg_no",
                                "invalid-registration-number",
                                format!(
                                    "a {} registration number looks like {}",
                                    r.name_en(),
                                    patterns.describe(r)
                                ),
                            ));
                            None
                        }
                    }
                } else {
                    if prof_reg_no.is_some_and(|n| !n.trim().is_empty()) {
                        fields.push(FieldError::new(
                            "/prof_reg_no",
                            "unexpected-registration-number",
                            "only professionals carry a registration number",
                        ));
                    }
                    None
                };
                // A pure user administrator is always flagged as one.
                (
                    r.code().to_owned(),
                    number,
                    user_admin || r == Role::UserAdministrator,
                )
            }
        }
    }
}
