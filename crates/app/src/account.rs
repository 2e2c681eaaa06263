//! User administration (SPEC 4.2, 1): a provider's user administrators (and the office, for a
//! provider's first administrator) create personal accounts, change roles, suspend, reinstate,
//! terminate, reset and unlock them; the office's system administrators do the same for office
//! staff.
//!
//! Security-sensitive:
//! - An administrator never chooses or learns a password: the first password is generated
//!   and goes to the holder through the outbox (or, for the bootstrap administrator only, is
//!   printed on the operator's terminal).
//! - Another provider's accounts are invisible: 404, as for one that does not exist.
//! - Suspending, terminating or resetting ends every session and token of the account in the
//!   same transaction as the change.

use std::collections::BTreeMap;

use ehrshare_core::account::{
    AccountEvent, AccountStatus, AdminAct, Administrator, DutyError, Holder, Manager, OfficeRole,
    Realm, check_duties, may_manage_accounts_of, may_manage_office_accounts,
    registration_number_free,
};
use ehrshare_core::audit::Outcome;
use ehrshare_core::contact::{Email, Phone};
use ehrshare_core::locale::Locale;
use ehrshare_core::notification::Channel;
use ehrshare_core::profession::Role;
pub use ehrshare_store::account::AccountRow;
use ehrshare_store::alert::AlertRow;
use ehrshare_store::{Conn, StoreError, change};
use uuid::Uuid;

use crate::auth::{Session, stale};
use crate::caller::Caller;
use crate::error::FieldError;
use crate::outbox::Notice;
use crate::secret::{hash_secret, new_initial_password};
use crate::{App, AppError};

/// A new account as an administrator enters it (never with a password).
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub user_name: String,
    pub name_en: String,
    pub name_zh: Option<String>,
    /// A profession, `registration-staff` or `user-administrator` for a provider's account;
    /// an office role for the office's.
    pub role: String,
    pub user_admin: bool,
    pub prof_reg_no: Option<String>,
    pub mobile: String,
    pub email: Option<String>,
    /// `en` or `zh-HK`.
    pub language: Option<String>,
    /// The holder's identity document, if the administrator records it (for the alert on
    /// reading one's own or a colleague's record; the rule cannot see accounts without one).
    pub document: Option<crate::recipient::DocumentInput>,
}

/// A change of role (and with it registration number and administrator flag).
#[derive(Debug, Clone, Default)]
pub struct RoleChange {
    pub role: String,
    pub prof_reg_no: Option<String>,
    pub user_admin: bool,
}

/// What an administrator can do to an account besides changing its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    Suspend,
    Reinstate,
    Terminate,
    /// A new generated first password, the token forgotten: the holder enrols again.
    Reset,
    /// Clears the login-failure lock of the account's user name.
    Unlock,
}

impl AdminAction {
    /// Parses the code an administrator sends.
    pub fn parse(code: &str) -> Option<AdminAction> {
        match code {
            "suspend" => Some(AdminAction::Suspend),
            "reinstate" => Some(AdminAction::Reinstate),
            "terminate" => Some(AdminAction::Terminate),
            "reset" => Some(AdminAction::Reset),
            "unlock" => Some(AdminAction::Unlock),
            _ => None,
        }
    }

    /// The audit action recorded for it.
    fn audit_action(self) -> &'static str {
        match self {
            AdminAction::Suspend => "account.suspend",
            AdminAction::Reinstate => "account.reinstate",
            AdminAction::Terminate => "account.terminate",
            AdminAction::Reset => "account.reset",
            AdminAction::Unlock => "account.unlock",
        }
    }

    fn code(self) -> &'static str {
        match self {
            AdminAction::Suspend => "suspend",
            AdminAction::Reinstate => "reinstate",
            AdminAction::Terminate => "terminate",
            AdminAction::Reset => "reset",
            AdminAction::Unlock => "unlock",
        }
    }
}

/// Whose accounts: a provider's, or the office's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Hcp(Uuid),
    Office,
}

fn field(field: &str, code: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        code,
        message: message.into(),
    }
}

fn invalid(fields: Vec<FieldError>) -> AppError {
    AppError::Invalid {
        code: if fields.len() == 1 {
            fields[0].code
        } else {
            "invalid-input"
        },
        message: "the account has invalid fields".to_owned(),
        fields,
    }
}

fn manager(session: &Session) -> Option<Manager<'_>> {
    let a = session.account()?;
    Some(Manager {
        realm: Realm::parse(&a.realm)?,
        hcp: a.hcp_id,
        user_admin: a.user_admin,
        role: &a.role,
    })
}

/// An account's identity document as one comparable key.
fn document_key(d: &(String, String, String)) -> String {
    format!("{}:{}:{}", d.0, d.1, d.2)
}

/// A refusal by the separation of duties: the acting administrator's own limits are 403, a
/// missing document of the holder is a field to fill in (422).
fn duty_error(e: DutyError) -> AppError {
    match e {
        DutyError::DocumentRequired => invalid(vec![field(
            "/document",
            e.code(),
            "the holder's identity document is required",
        )]),
        _ => AppError::Forbidden {
            code: e.code(),
            message: e.to_string(),
        },
    }
}

/// What the separation of duties found worth telling: who else hears of a grant, and the
/// alert it raises.
struct Grant {
    notices: Vec<Notice>,
    alert: AlertRow,
}

impl App {
    /// Checks the separation of duties (`core::account::check_duties`) for `act` by the
    /// session's account on the account `holder` (with `document`) in `scope`; a refusal is
    /// audited as `action`, denied. Returns whether the provider had an active user
    /// administrator (for the office's replacement alert).
    #[allow(clippy::too_many_arguments)]
    async fn check_separation(
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
        let has_active_admin = match scope {
            Scope::Hcp(h) => self.db().accounts_of(Some(h)).await?.iter().any(|a| {
                a.user_admin && a.status == AccountStatus::Active.code() && Some(a.id) != holder
            }),
            Scope::Office => true,
        };
        let verdict = check_duties(
            Administrator {
                account: me.id,
                realm: Realm::parse(&me.realm).unwrap_or(Realm::Hcp),
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
            self.record(entry).await?;
            return Err(duty_error(e));
        }
        Ok(has_active_admin)
    }

    /// Refuses a professional registration number that an account of another identity
    /// document (or of none) already carries: 409.
    async fn check_registration_number(&self, row: &AccountRow) -> Result<(), AppError> {
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
    async fn grant_notice(
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
                    && a.status == AccountStatus::Active.code()
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
            status: "open".to_owned(),
            note: None,
            created_at: self.clock().now(),
        };
        Ok(Grant { notices, alert })
    }

    /// Refuses with 404 unless the session may manage the accounts of `scope`.
    fn check_manager(&self, session: &Session, scope: Scope) -> Result<(), AppError> {
        let m = manager(session).ok_or(AppError::NotFound)?;
        let ok = match scope {
            Scope::Hcp(h) => may_manage_accounts_of(m, h),
            Scope::Office => may_manage_office_accounts(m),
        };
        if ok { Ok(()) } else { Err(AppError::NotFound) }
    }

    /// Checks the role, registration number and administrator flag of an account in `scope`.
    fn check_role(
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
                    fields.push(field(
                        "/role",
                        "invalid-role",
                        "registration-officer, privacy-officer or system-administrator",
                    ));
                }
                (role.to_owned(), None, false)
            }
            Scope::Hcp(_) => {
                let Some(r) = Role::parse(role).filter(|r| r.enabled_by_default()) else {
                    fields.push(field(
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
                            fields.push(field(
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
                        fields.push(field(
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

    /// Creates a personal account in `scope`; its first password goes to the holder's mobile
    /// through the outbox. Returns the account (never the password).
    pub async fn create_account(
        &self,
        session: &Session,
        caller: &Caller,
        scope: Scope,
        input: NewAccount,
    ) -> Result<AccountRow, AppError> {
        self.check_manager(session, scope)?;
        let provider_name = match scope {
            Scope::Hcp(h) => {
                let p = self.provider(h).await?;
                use ehrshare_core::provider::Status;
                if !matches!(
                    p.status,
                    Status::Accepted | Status::Active | Status::Suspended
                ) {
                    return Err(AppError::Conflict {
                        code: "provider-not-accepted",
                        message: "accounts are opened only for accepted providers".to_owned(),
                    });
                }
                (p.hcp.name_en.clone(), p.hcp.name_zh.clone())
            }
            Scope::Office => ("the eHR Office".to_owned(), "電子健康紀錄統籌處".to_owned()),
        };
        let (row, password) = self.new_account_row(scope, input, false)?;
        let had_active_admin = self
            .check_separation(
                session,
                caller,
                "account.create",
                scope,
                None,
                row.document.as_ref(),
                AdminAct::Create {
                    pure_administrator: row.role == Role::UserAdministrator.code(),
                    user_admin: row.user_admin,
                },
            )
            .await?;
        self.check_registration_number(&row).await?;
        // The office opening a provider's administrator where one existed but none is active
        // is a replacement, alerted as such.
        let by_office = session
            .account()
            .is_some_and(|a| a.realm == Realm::Office.code());
        let replacement = match scope {
            Scope::Hcp(h) if by_office && !had_active_admin => self
                .db()
                .accounts_of(Some(h))
                .await?
                .iter()
                .any(|a| a.user_admin),
            _ => false,
        };
        let grant = self
            .grant_notice(
                session,
                scope,
                &row,
                if replacement {
                    "administrator-replaced"
                } else {
                    "account-granted"
                },
                false,
            )
            .await?;
        let hash = hash_secret(password.clone()).await?;
        let row = AccountRow {
            password_hash: hash,
            ..row
        };
        let locale = Locale::parse(&row.language).unwrap_or_default();
        let notice = Notice {
            recipient: None,
            address: row.mobile.clone(),
            channel: Channel::Sms,
            template: "initial-password".to_owned(),
            params: BTreeMap::from([
                ("user".to_owned(), row.user_name.clone()),
                ("password".to_owned(), password),
                (
                    "provider".to_owned(),
                    match locale {
                        Locale::ZhHk => provider_name.1,
                        Locale::En => provider_name.0,
                    },
                ),
            ]),
            locale,
        };
        let mut notices = vec![notice];
        notices.extend(grant.notices);
        // A provider's very first administrator, opened by the office, is the registration
        // itself going ahead: nobody else there to alert.
        let first_administrator = by_office && matches!(scope, Scope::Hcp(_)) && !replacement;
        let alert = (!first_administrator).then_some(grant.alert);
        self.insert_account(caller, row, notices, alert).await
    }

    /// Creates the first office system administrator from the command line (no session
    /// exists yet). Returns the account and its first password, for the operator's terminal.
    pub async fn bootstrap_office_admin(
        &self,
        user_name: &str,
        name_en: &str,
        mobile: &str,
    ) -> Result<(AccountRow, String), AppError> {
        let input = NewAccount {
            user_name: user_name.to_owned(),
            name_en: name_en.to_owned(),
            role: OfficeRole::SystemAdministrator.code().to_owned(),
            mobile: mobile.to_owned(),
            ..NewAccount::default()
        };
        let (row, password) = self.new_account_row(Scope::Office, input, false)?;
        let row = AccountRow {
            password_hash: hash_secret(password.clone()).await?,
            ..row
        };
        let caller = Caller {
            actor: ehrshare_core::audit::Actor::system(),
            request_id: None,
            client_addr: None,
        };
        let row = self.insert_account(&caller, row, Vec::new(), None).await?;
        Ok((row, password))
    }

    /// Creates an enrolled, active demo account with a known password and token seed (for
    /// `ehrshare demo` only: `demo` is set so that `ehrshare demo code` may show its codes).
    pub async fn create_demo_account(
        &self,
        scope: Scope,
        input: NewAccount,
        password: &str,
        totp_seed: &[u8],
    ) -> Result<AccountRow, AppError> {
        let (row, _) = self.new_account_row(scope, input, true)?;
        let row = AccountRow {
            password_hash: hash_secret(ehrshare_core::password::normalise(password)).await?,
            must_change_password: false,
            totp_secret: Some(self.seal().seal(row.id, totp_seed)?),
            status: AccountStatus::Active.code().to_owned(),
            ..row
        };
        let caller = Caller {
            actor: ehrshare_core::audit::Actor::system(),
            request_id: None,
            client_addr: None,
        };
        self.insert_account(&caller, row, Vec::new(), None).await
    }

    /// The current TOTP code of a demo account (refused for any other account: 404).
    pub async fn demo_totp_code(&self, user_name: &str) -> Result<String, AppError> {
        let name = ehrshare_core::account::user_name(user_name).map_err(|_| AppError::NotFound)?;
        let a = self
            .db()
            .account_by_user_name(&name)
            .await?
            .filter(|a| a.demo)
            .ok_or(AppError::NotFound)?;
        let secret = self
            .seal()
            .open(a.id, &a.totp_secret.ok_or(AppError::NotFound)?)?;
        let now = u64::try_from(self.clock().now().unix_timestamp()).unwrap_or(0);
        let code = ehrshare_core::totp::hotp(
            &secret,
            ehrshare_core::totp::step_of(now),
            ehrshare_core::totp::DIGITS,
        );
        Ok(format!("{code:06}"))
    }

    fn new_account_row(
        &self,
        scope: Scope,
        input: NewAccount,
        demo: bool,
    ) -> Result<(AccountRow, String), AppError> {
        let now = self.clock().now();
        let mut fields = Vec::new();
        let user_name = match ehrshare_core::account::user_name(&input.user_name) {
            Ok(n) => n,
            Err(e) => {
                fields.push(field("/user_name", "invalid-user-name", e.to_string()));
                String::new()
            }
        };
        let name_en =
            crate::limits::person_name(&mut fields, "/name_en", &input.name_en, 100, true)
                .unwrap_or_default();
        let name_zh = crate::limits::person_name(
            &mut fields,
            "/name_zh",
            input.name_zh.as_deref().unwrap_or(""),
            100,
            false,
        );
        let mobile = match Phone::parse(&input.mobile) {
            Ok(p) => p.as_str().to_owned(),
            Err(e) => {
                fields.push(field("/mobile", "invalid-phone", e.to_string()));
                String::new()
            }
        };
        let email = match input
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            None => None,
            Some(e) => match Email::parse(e) {
                Ok(e) => Some(e.as_str().to_owned()),
                Err(err) => {
                    fields.push(field("/email", "invalid-email", err.to_string()));
                    None
                }
            },
        };
        let language = input.language.unwrap_or_else(|| "zh-HK".to_owned());
        if !matches!(language.as_str(), "en" | "zh-HK") {
            fields.push(field("/language", "invalid-language", "en or zh-HK"));
        }
        let (role, prof_reg_no, user_admin) = self.check_role(
            scope,
            input.role.trim(),
            input.prof_reg_no.as_deref(),
            input.user_admin,
            &mut fields,
        );
        let document = match input
            .document
            .as_ref()
            .map(|d| crate::recipient::check_document("/document", d))
        {
            None => None,
            Some(Ok(d)) => Some((d.kind.code().to_owned(), d.issuer, d.number)),
            Some(Err(e)) => {
                fields.push(e);
                None
            }
        };
        if !fields.is_empty() {
            return Err(invalid(fields));
        }
        let (realm, hcp_id) = match scope {
            Scope::Hcp(h) => (Realm::Hcp, Some(h)),
            Scope::Office => (Realm::Office, None),
        };
        let password = new_initial_password()?;
        Ok((
            AccountRow {
                id: Uuid::now_v7(),
                realm: realm.code().to_owned(),
                hcp_id,
                user_name,
                name_en,
                name_zh,
                role,
                user_admin,
                prof_reg_no,
                mobile,
                email,
                language,
                status: AccountStatus::Pending.code().to_owned(),
                password_hash: String::new(),
                password_set_at: now,
                must_change_password: true,
                totp_secret: None,
                totp_pending: None,
                totp_last_step: None,
                last_login_at: None,
                demo,
                created_at: now,
                version: 1,
                document,
            },
            password,
        ))
    }

    async fn insert_account(
        &self,
        caller: &Caller,
        row: AccountRow,
        notices: Vec<Notice>,
        alert: Option<AlertRow>,
    ) -> Result<AccountRow, AppError> {
        let mut entry = caller.entry(self, "account.create", Outcome::Allowed);
        entry.record_ids = vec![row.id];
        entry.reason = Some(format!("role {}", row.role));
        let stored = row.clone();
        let insert = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::account::insert(conn.reborrow(), &stored)
                    .await
                    .map_err(|e| match e {
                        StoreError::Conflict { source, .. } => StoreError::Conflict {
                            constraint: "account_user_name".to_owned(),
                            source,
                        },
                        other => other,
                    })?;
                match &alert {
                    Some(a) => ehrshare_store::alert::insert_alert(conn, a).await,
                    None => Ok(()),
                }
            })
        });
        match self.record_and_notify(entry, Some(insert), notices).await {
            Ok(_) => Ok(row),
            Err(AppError::Conflict { .. }) => Err(AppError::Conflict {
                code: "user-name-taken",
                message: "this user name is taken".to_owned(),
            }),
            Err(e) => Err(e),
        }
    }

    /// The accounts of `scope`, for its administrators.
    pub async fn accounts(
        &self,
        session: &Session,
        scope: Scope,
    ) -> Result<Vec<AccountRow>, AppError> {
        self.check_manager(session, scope)?;
        let hcp = match scope {
            Scope::Hcp(h) => Some(h),
            Scope::Office => None,
        };
        Ok(self.db().accounts_of(hcp).await?)
    }

    /// One account of `scope` (404 outside it).
    pub async fn account_in(
        &self,
        session: &Session,
        scope: Scope,
        id: Uuid,
    ) -> Result<AccountRow, AppError> {
        self.check_manager(session, scope)?;
        let a = self.db().account(id).await?.ok_or(AppError::NotFound)?;
        let inside = match scope {
            Scope::Hcp(h) => a.hcp_id == Some(h),
            Scope::Office => a.realm == Realm::Office.code(),
        };
        if inside {
            Ok(a)
        } else {
            Err(AppError::NotFound)
        }
    }

    /// Changes an account's role (and registration number and administrator flag).
    pub async fn change_role(
        &self,
        session: &Session,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        input: RoleChange,
    ) -> Result<AccountRow, AppError> {
        let a = self.account_in(session, scope, id).await?;
        if a.status == AccountStatus::Terminated.code() {
            return Err(AppError::Conflict {
                code: "account-terminated",
                message: "a terminated account cannot change".to_owned(),
            });
        }
        let mut fields = Vec::new();
        let (role, prof_reg_no, user_admin) = self.check_role(
            scope,
            input.role.trim(),
            input.prof_reg_no.as_deref(),
            input.user_admin,
            &mut fields,
        );
        if !fields.is_empty() {
            return Err(invalid(fields));
        }
        self.check_separation(
            session,
            caller,
            "account.change-role",
            scope,
            Some(a.id),
            a.document.as_ref(),
            AdminAct::ChangeRole,
        )
        .await?;
        let updated = AccountRow {
            role,
            prof_reg_no,
            user_admin,
            version: a.version + 1,
            ..a.clone()
        };
        self.check_registration_number(&updated).await?;
        let grant = self
            .grant_notice(session, scope, &updated, "account-granted", true)
            .await?;
        let alert = grant.alert;
        let mut entry = caller.entry(self, "account.change-role", Outcome::Allowed);
        entry.record_ids = vec![id];
        entry.reason = Some(format!(
            "{} -> {}{}",
            a.role,
            updated.role,
            if updated.user_admin {
                " (user administrator)"
            } else {
                ""
            }
        ));
        let stored = updated.clone();
        let update = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                if !ehrshare_store::account::update(conn.reborrow(), &stored).await? {
                    return Err(stale());
                }
                ehrshare_store::alert::insert_alert(conn, &alert).await
            })
        });
        self.record_and_notify(entry, Some(update), grant.notices)
            .await?;
        Ok(updated)
    }

    /// Suspends, reinstates, terminates, resets or unlocks an account. Every one but unlock
    /// and reinstate ends the account's sessions and tokens in the same transaction.
    pub async fn account_action(
        &self,
        session: &Session,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        action: AdminAction,
        reason: Option<String>,
    ) -> Result<AccountRow, AppError> {
        crate::limits::check("/reason", reason.as_deref(), crate::limits::REASON)?;
        let now = self.clock().now();
        let a = self.account_in(session, scope, id).await?;
        self.check_separation(
            session,
            caller,
            action.audit_action(),
            scope,
            Some(a.id),
            a.document.as_ref(),
            match action {
                AdminAction::Reset => AdminAct::Reset,
                AdminAction::Unlock => AdminAct::Unlock,
                AdminAction::Suspend | AdminAction::Reinstate | AdminAction::Terminate => {
                    AdminAct::ChangeStatus
                }
            },
        )
        .await?;
        let status = AccountStatus::parse(&a.status)
            .ok_or_else(|| AppError::Internal("stored account status unknown".into()))?;
        let mut entry = caller.entry(self, action.audit_action(), Outcome::Allowed);
        entry.record_ids = vec![id];
        entry.reason = reason.filter(|r| !r.trim().is_empty());
        let transition = |event: AccountEvent| {
            status
                .after(event, a.totp_secret.is_some() && !a.must_change_password)
                .ok_or_else(|| AppError::Conflict {
                    code: "invalid-transition",
                    message: format!("a {} account cannot change that way", status.code()),
                })
        };
        let mut notices = Vec::new();
        let updated = match action {
            AdminAction::Unlock => {
                let key = format!("user:{}", a.user_name);
                let clear = change(move |conn: Conn<'_>| {
                    Box::pin(
                        async move { ehrshare_store::account::clear_failures(conn, &key).await },
                    )
                });
                self.record_with(entry, clear).await?;
                return Ok(a);
            }
            AdminAction::Suspend => AccountRow {
                status: transition(AccountEvent::Suspend)?.code().to_owned(),
                ..a.clone()
            },
            AdminAction::Reinstate => AccountRow {
                status: transition(AccountEvent::Reinstate)?.code().to_owned(),
                ..a.clone()
            },
            AdminAction::Terminate => AccountRow {
                status: transition(AccountEvent::Terminate)?.code().to_owned(),
                ..a.clone()
            },
            AdminAction::Reset => {
                if status == AccountStatus::Terminated {
                    return Err(AppError::Conflict {
                        code: "invalid-transition",
                        message: "a terminated account cannot be reset".to_owned(),
                    });
                }
                let password = new_initial_password()?;
                let hash = hash_secret(password.clone()).await?;
                let locale = Locale::parse(&a.language).unwrap_or_default();
                notices.push(Notice {
                    recipient: None,
                    address: a.mobile.clone(),
                    channel: Channel::Sms,
                    template: "password-reset".to_owned(),
                    params: BTreeMap::from([
                        ("user".to_owned(), a.user_name.clone()),
                        ("password".to_owned(), password),
                    ]),
                    locale,
                });
                AccountRow {
                    password_hash: hash,
                    password_set_at: now,
                    must_change_password: true,
                    totp_secret: None,
                    totp_pending: None,
                    // An active account stays active: the holder must re-enrol at next login.
                    ..a.clone()
                }
            }
        };
        let updated = AccountRow {
            version: a.version + 1,
            ..updated
        };
        let ends_sessions = !matches!(action, AdminAction::Reinstate);
        let stored = updated.clone();
        let reason_code = action.code();
        let update = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                if !ehrshare_store::account::update(conn.reborrow(), &stored).await? {
                    return Err(stale());
                }
                if action == AdminAction::Reset {
                    ehrshare_store::account::push_password_history(
                        conn.reborrow(),
                        stored.id,
                        &stored.password_hash,
                        now,
                    )
                    .await?;
                    let key = format!("user:{}", stored.user_name);
                    ehrshare_store::account::clear_failures(conn.reborrow(), &key).await?;
                }
                if ends_sessions {
                    ehrshare_store::account::end_sessions_and_tokens(
                        conn,
                        stored.id,
                        now,
                        reason_code,
                    )
                    .await?;
                }
                Ok(())
            })
        });
        self.record_and_notify(entry, Some(update), notices).await?;
        Ok(updated)
    }
}
