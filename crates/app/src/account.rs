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

use ehrshare_core::account::{AccountStatus, AdminAct, OfficeRole, Realm};
use ehrshare_core::audit::Outcome;
use ehrshare_core::contact::{Email, Phone};
use ehrshare_core::locale::Locale;
use ehrshare_core::notification::Channel;
use ehrshare_core::profession::Role;
use ehrshare_store::alert::AlertRow;
use ehrshare_store::{Conn, StoreError, change};
use uuid::Uuid;

use crate::auth::Session;
use crate::caller::Caller;
use crate::duty::Scope;
use crate::error::{FieldError, invalid_fields};
use crate::outbox::Notice;
use crate::secret::{hash_secret, new_initial_password};
use crate::{App, AppError};

pub use ehrshare_store::account::AccountRow;

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
    pub document: Option<ehrshare_core::registration::DocumentInput>,
}

impl App {
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
        let by_office = session.account().is_some_and(|a| a.realm == Realm::Office);
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
            status: AccountStatus::Active,
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

    pub(crate) fn new_account_row(
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
                fields.push(FieldError::new(
                    "/user_name",
                    "invalid-user-name",
                    e.to_string(),
                ));
                String::new()
            }
        };
        let name_en =
            ehrshare_core::field::person_name(&mut fields, "/name_en", &input.name_en, 100, true)
                .unwrap_or_default();
        let name_zh = ehrshare_core::field::person_name(
            &mut fields,
            "/name_zh",
            input.name_zh.as_deref().unwrap_or(""),
            100,
            false,
        );
        let mobile = match Phone::parse(&input.mobile) {
            Ok(p) => p.as_str().to_owned(),
            Err(e) => {
                fields.push(FieldError::new("/mobile", "invalid-phone", e.to_string()));
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
                    fields.push(FieldError::new("/email", "invalid-email", err.to_string()));
                    None
                }
            },
        };
        let language = input.language.unwrap_or_else(|| "zh-HK".to_owned());
        if !matches!(language.as_str(), "en" | "zh-HK") {
            fields.push(FieldError::new(
                "/language",
                "invalid-language",
                "en or zh-HK",
            ));
        }
        let (role, prof_reg_no, user_admin) = self.check_role(
            scope,
            input.role.trim(),
            input.prof_reg_no.as_deref(),
            input.user_admin,
            &mut fields,
        );
        let document = match input.document.as_ref().map(|d| d.parse("/document")) {
            None => None,
            Some(Ok(d)) => Some((d.kind.code().to_owned(), d.issuer, d.number)),
            Some(Err(e)) => {
                fields.push(e);
                None
            }
        };
        if !fields.is_empty() {
            return Err(invalid_fields("the account has invalid fields", fields));
        }
        let (realm, hcp_id) = match scope {
            Scope::Hcp(h) => (Realm::Hcp, Some(h)),
            Scope::Office => (Realm::Office, None),
        };
        let password = new_initial_password()?;
        Ok((
            AccountRow {
                id: Uuid::now_v7(),
                realm,
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
                status: AccountStatus::Pending,
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

    pub(crate) async fn insert_account(
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
        match self.audit_and_notify(entry, Some(insert), notices).await {
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
            Scope::Office => a.realm == Realm::Office,
        };
        if inside {
            Ok(a)
        } else {
            Err(AppError::NotFound)
        }
    }
}
