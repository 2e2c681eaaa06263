//! Accounts, their password history, login failure counts and sessions: rows in, rows out.
//! The rules (statuses, throttling, lifetimes) live in `ehrshare-core::account` and `::login`.

use ehrshare_core::account::{AccountStatus, Realm};
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::Conn;
use crate::db::Db;
use crate::error::StoreError;
use crate::retry::{RetryPolicy, with_retry};
use crate::timestamp::Ts;

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub id: Uuid,
    pub realm: Realm,
    pub hcp_id: Option<Uuid>,
    pub user_name: String,
    pub name_en: String,
    pub name_zh: Option<String>,
    pub role: String,
    pub user_admin: bool,
    pub prof_reg_no: Option<String>,
    pub mobile: String,
    pub email: Option<String>,
    pub language: String,
    pub status: AccountStatus,
    pub password_hash: String,
    pub password_set_at: OffsetDateTime,
    pub must_change_password: bool,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_pending: Option<Vec<u8>>,
    pub totp_last_step: Option<i64>,
    pub last_login_at: Option<OffsetDateTime>,
    pub demo: bool,
    pub created_at: OffsetDateTime,
    /// Bumped by every change, for optimistic concurrency.
    pub version: i64,
    /// The holder's identity document (type, issuer, canonical number), when recorded: set at
    /// creation, never changed (the own-or-colleague alert rule matches it to recipients').
    pub document: Option<(String, String, String)>,
}

const COLUMNS: &str = "account_id, realm, hcp_id, user_name, name_en, name_zh, role, user_admin, \
    prof_reg_no, mobile, email, language, status, password_hash, password_set_at, \
    must_change_password, totp_secret, totp_pending, totp_last_step, last_login_at, demo, \
    created_at, version, doc_type, doc_issuer, doc_number";

/// An [`AccountRow`] from a row with [`COLUMNS`] (either backend, or a [`crate::in_place`]
/// row with `get`).
macro_rules! account_row {
    ($row:expr) => {
        account_row!($row, try_get)
    };
    ($row:expr, $get:ident) => {{
        let row = $row;
        let password_set_at: Ts = row.$get("password_set_at")?;
        let last_login_at: Option<Ts> = row.$get("last_login_at")?;
        let created_at: Ts = row.$get("created_at")?;
        let doc_type: Option<String> = row.$get("doc_type")?;
        let realm: String = row.$get("realm")?;
        let status: String = row.$get("status")?;
        let doc_issuer: Option<String> = row.$get("doc_issuer")?;
        let doc_number: Option<String> = row.$get("doc_number")?;
        AccountRow {
            id: row.$get("account_id")?,
            realm: $crate::code::decode(
                "account.realm",
                &realm,
                ehrshare_core::account::Realm::parse,
            )?,
            hcp_id: row.$get("hcp_id")?,
            user_name: row.$get("user_name")?,
            name_en: row.$get("name_en")?,
            name_zh: row.$get("name_zh")?,
            role: row.$get("role")?,
            user_admin: row.$get("user_admin")?,
            prof_reg_no: row.$get("prof_reg_no")?,
            mobile: row.$get("mobile")?,
            email: row.$get("email")?,
            language: row.$get("language")?,
            status: $crate::code::decode(
                "account.status",
                &status,
                ehrshare_core::account::AccountStatus::parse,
            )?,
            password_hash: row.$get("password_hash")?,
            password_set_at: password_set_at.0,
            must_change_password: row.$get("must_change_password")?,
            totp_secret: row.$get("totp_secret")?,
            totp_pending: row.$get("totp_pending")?,
            totp_last_step: row.$get("totp_last_step")?,
            last_login_at: last_login_at.map(|t| t.0),
            demo: row.$get("demo")?,
            created_at: created_at.0,
            version: row.$get("version")?,
            document: match (doc_type, doc_issuer, doc_number) {
                (Some(t), Some(i), Some(n)) => Some((t, i, n)),
                _ => None,
            },
        }
    }};
}

/// Inserts an account (and its first password into the history) in the caller's transaction.
/// A taken user name is a [`StoreError::Conflict`].
pub async fn insert(conn: Conn<'_>, a: &AccountRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO account ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)"
        )))
        .bind(a.id)
        .bind(a.realm.code())
        .bind(a.hcp_id)
        .bind(&a.user_name)
        .bind(&a.name_en)
        .bind(&a.name_zh)
        .bind(&a.role)
        .bind(a.user_admin)
        .bind(&a.prof_reg_no)
        .bind(&a.mobile)
        .bind(&a.email)
        .bind(&a.language)
        .bind(a.status.code())
        .bind(&a.password_hash)
        .bind(Ts(a.password_set_at))
        .bind(a.must_change_password)
        .bind(&a.totp_secret)
        .bind(&a.totp_pending)
        .bind(a.totp_last_step)
        .bind(a.last_login_at.map(Ts))
        .bind(a.demo)
        .bind(Ts(a.created_at))
        .bind(a.version)
        .bind(a.document.as_ref().map(|d| &d.0))
        .bind(a.document.as_ref().map(|d| &d.1))
        .bind(a.document.as_ref().map(|d| &d.2))
        .execute(&mut *c)
        .await?;
        sqlx::query(
            "INSERT INTO account_password_history (account_id, password_hash, set_at) \
             VALUES ($1, $2, $3)",
        )
        .bind(a.id)
        .bind(&a.password_hash)
        .bind(Ts(a.password_set_at))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Writes every mutable field of `a` if the stored version is still `a.version - 1`; returns
/// whether it was (a lost race is for the caller to report as a conflict).
pub async fn update(conn: Conn<'_>, a: &AccountRow) -> Result<bool, StoreError> {
    let done = crate::on_conn!(conn, c => {
        sqlx::query(
            "UPDATE account SET name_en = $2, name_zh = $3, role = $4, user_admin = $5, \
             prof_reg_no = $6, mobile = $7, email = $8, language = $9, status = $10, \
             password_hash = $11, password_set_at = $12, must_change_password = $13, \
             totp_secret = $14, totp_pending = $15, totp_last_step = $16, last_login_at = $17, \
             version = $18 WHERE account_id = $1 AND version = $19",
        )
        .bind(a.id)
        .bind(&a.name_en)
        .bind(&a.name_zh)
        .bind(&a.role)
        .bind(a.user_admin)
        .bind(&a.prof_reg_no)
        .bind(&a.mobile)
        .bind(&a.email)
        .bind(&a.language)
        .bind(a.status.code())
        .bind(&a.password_hash)
        .bind(Ts(a.password_set_at))
        .bind(a.must_change_password)
        .bind(&a.totp_secret)
        .bind(&a.totp_pending)
        .bind(a.totp_last_step)
        .bind(a.last_login_at.map(Ts))
        .bind(a.version)
        .bind(a.version - 1)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(done == 1)
}

/// Records a new password hash in the history (the caller has already set it on the account).
pub async fn push_password_history(
    conn: Conn<'_>,
    account: Uuid,
    hash: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO account_password_history (account_id, password_hash, set_at) \
             VALUES ($1, $2, $3)",
        )
        .bind(account)
        .bind(hash)
        .bind(Ts(at))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Stores the step of an accepted TOTP code, only if it is later than the last one stored:
/// two requests racing with the same code cannot both win. Returns whether it was stored.
pub async fn claim_totp_step(conn: Conn<'_>, account: Uuid, step: i64) -> Result<bool, StoreError> {
    let done = crate::on_conn!(conn, c => {
        sqlx::query(
            "UPDATE account SET totp_last_step = $2 WHERE account_id = $1 \
             AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(account)
        .bind(step)
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(done == 1)
}

/// Ends every open session of an account and revokes its OAuth tokens, now.
pub async fn end_sessions_and_tokens(
    mut conn: Conn<'_>,
    account: Uuid,
    at: OffsetDateTime,
    reason: &str,
) -> Result<(), StoreError> {
    crate::on_conn!(conn.reborrow(), c => {
        sqlx::query(
            "UPDATE session SET ended_at = $2, end_reason = $3 \
             WHERE account_id = $1 AND ended_at IS NULL",
        )
        .bind(account)
        .bind(Ts(at))
        .bind(reason)
        .execute(&mut *c)
        .await?;
        sqlx::query(
            "UPDATE oauth_token SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL",
        )
        .bind(account)
        .bind(Ts(at))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Ends every open session of an account but one (after a password change).
pub async fn end_other_sessions(
    conn: Conn<'_>,
    account: Uuid,
    keep: &str,
    at: OffsetDateTime,
    reason: &str,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "UPDATE session SET ended_at = $3, end_reason = $4 \
             WHERE account_id = $1 AND token_hash <> $2 AND ended_at IS NULL",
        )
        .bind(account)
        .bind(keep)
        .bind(Ts(at))
        .bind(reason)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Notes a successful login's time.
pub async fn touch_login(
    conn: Conn<'_>,
    account: Uuid,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query("UPDATE account SET last_login_at = $2 WHERE account_id = $1")
            .bind(account)
            .bind(Ts(at))
            .execute(&mut *c)
            .await?;
    });
    Ok(())
}

/// A key's login failures as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailureRow {
    pub count: i64,
    pub last_at: Option<OffsetDateTime>,
    pub locked_until: Option<OffsetDateTime>,
}

/// A key's login failures as they stand in the caller's transaction: what one more failure
/// counts from (issue 28, item 6: a count read before the attempt may be stale, another
/// request or process having counted since).
pub async fn failures_in(conn: Conn<'_>, key: &str) -> Result<FailureRow, StoreError> {
    let row = crate::on_conn!(conn, c => {
        sqlx::query("SELECT count, last_at, locked_until FROM login_failure WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *c)
            .await?
            .map(|row| -> Result<FailureRow, StoreError> {
                Ok(FailureRow {
                    count: row.try_get("count")?,
                    last_at: Some(row.try_get::<Ts, _>("last_at")?.0),
                    locked_until: row.try_get::<Option<Ts>, _>("locked_until")?.map(|t| t.0),
                })
            })
            .transpose()?
    });
    Ok(row.unwrap_or_default())
}

/// Stores a key's failure record (in the transaction of the failed attempt's audit entry).
pub async fn put_failures(conn: Conn<'_>, key: &str, f: &FailureRow) -> Result<(), StoreError> {
    let Some(last) = f.last_at else {
        return clear_failures(conn, key).await;
    };
    crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO login_failure (key, count, last_at, locked_until) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET count = excluded.count, last_at = excluded.last_at, \
             locked_until = excluded.locked_until",
        )
        .bind(key)
        .bind(f.count)
        .bind(Ts(last))
        .bind(f.locked_until.map(Ts))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Forgets a key's failures (after a success, or an administrator's unlock).
pub async fn clear_failures(conn: Conn<'_>, key: &str) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query("DELETE FROM login_failure WHERE key = $1")
            .bind(key)
            .execute(&mut *c)
            .await?;
    });
    Ok(())
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_hash: String,
    pub account_id: Option<Uuid>,
    pub person_id: Option<Uuid>,
    pub stage: String,
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub ended_at: Option<OffsetDateTime>,
    pub client_addr: Option<String>,
}

/// Opens a session in the caller's transaction.
pub async fn insert_session(conn: Conn<'_>, s: &SessionRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO session (token_hash, account_id, person_id, stage, csrf_token, \
             created_at, last_seen_at, client_addr) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.token_hash)
        .bind(s.account_id)
        .bind(s.person_id)
        .bind(&s.stage)
        .bind(&s.csrf_token)
        .bind(Ts(s.created_at))
        .bind(Ts(s.last_seen_at))
        .bind(&s.client_addr)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Ends one session (logout, expiry) in the caller's transaction.
pub async fn end_session(
    conn: Conn<'_>,
    token_hash: &str,
    at: OffsetDateTime,
    reason: &str,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "UPDATE session SET ended_at = $2, end_reason = $3 \
             WHERE token_hash = $1 AND ended_at IS NULL",
        )
        .bind(token_hash)
        .bind(Ts(at))
        .bind(reason)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Moves a session to another stage (after a password change or token enrolment).
pub async fn set_session_stage(
    conn: Conn<'_>,
    token_hash: &str,
    stage: &str,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query("UPDATE session SET stage = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(stage)
            .execute(&mut *c)
            .await?;
    });
    Ok(())
}

impl Db {
    /// An account by id.
    pub async fn account(&self, id: Uuid) -> Result<Option<AccountRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM account WHERE account_id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => Some(account_row!(&row)),
                None => None,
            })
        })
    }

    /// An account by (lower-case) user name.
    pub async fn account_by_user_name(&self, name: &str) -> Result<Option<AccountRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM account WHERE user_name = $1"
            )))
            .bind(name)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => Some(account_row!(&row)),
                None => None,
            })
        })
    }

    /// The accounts whose holder's document is that of one of `recipients`, as (recipient,
    /// account, the account's provider): the facts of the own-or-colleague alert rule.
    pub async fn document_holders(
        &self,
        recipients: &[Uuid],
    ) -> Result<Vec<(Uuid, Uuid, Option<Uuid>)>, StoreError> {
        let mut out = Vec::new();
        for chunk in recipients.chunks(1000) {
            let sql = format!(
                "SELECT r.recipient_id, a.account_id, a.hcp_id FROM recipient r \
                 JOIN account a ON a.doc_type = r.doc_type AND a.doc_issuer = r.doc_issuer \
                 AND a.doc_number = r.doc_number WHERE r.recipient_id IN ({})",
                crate::db::placeholders(1, chunk.len())
            );
            let rows: Vec<(Uuid, Uuid, Option<Uuid>)> = crate::on_pool!(self, pool => {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                for r in chunk {
                    q = q.bind(*r);
                }
                q.fetch_all(pool).await?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// The identity documents (type, issuer, number; `None` where none is recorded) of the
    /// accounts whose role `role` carries registration number `number`.
    pub async fn registration_number_documents(
        &self,
        role: &str,
        number: &str,
    ) -> Result<Vec<Option<(String, String, String)>>, StoreError> {
        let rows: Vec<(Option<String>, Option<String>, Option<String>)> = crate::on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT doc_type, doc_issuer, doc_number FROM account \
                 WHERE role = $1 AND prof_reg_no = $2",
            )
            .bind(role)
            .bind(number)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|d| match d {
                (Some(t), Some(i), Some(n)) => Some((t, i, n)),
                _ => None,
            })
            .collect())
    }

    /// A provider's accounts (`None`: the office's), by user name.
    pub async fn accounts_of(&self, hcp: Option<Uuid>) -> Result<Vec<AccountRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let rows = match hcp {
                Some(h) => sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM account WHERE hcp_id = $1 ORDER BY user_name"
                )))
                .bind(h)
                .fetch_all(pool)
                .await?,
                None => sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM account WHERE realm = 'office' ORDER BY user_name"
                )))
                .fetch_all(pool)
                .await?,
            };
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(account_row!(row));
            }
            Ok(out)
        })
    }

    /// The newest `n` password hashes of an account.
    pub async fn password_history(
        &self,
        account: Uuid,
        n: usize,
    ) -> Result<Vec<String>, StoreError> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        crate::on_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT password_hash FROM account_password_history WHERE account_id = $1 \
                 ORDER BY set_at DESC LIMIT $2",
            )
            .bind(account)
            .bind(n)
            .fetch_all(pool)
            .await?)
        })
    }

    /// A key's login failures.
    pub async fn login_failures(&self, key: &str) -> Result<FailureRow, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT count, last_at, locked_until FROM login_failure WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                None => FailureRow::default(),
                Some(row) => FailureRow {
                    count: row.try_get("count")?,
                    last_at: Some(row.try_get::<Ts, _>("last_at")?.0),
                    locked_until: row.try_get::<Option<Ts>, _>("locked_until")?.map(|t| t.0),
                },
            })
        })
    }

    /// A session by the hash of its token.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT token_hash, account_id, person_id, stage, csrf_token, created_at, \
                 last_seen_at, ended_at, client_addr FROM session WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                None => None,
                Some(row) => Some(SessionRow {
                    token_hash: row.try_get("token_hash")?,
                    account_id: row.try_get("account_id")?,
                    person_id: row.try_get("person_id")?,
                    stage: row.try_get("stage")?,
                    csrf_token: row.try_get("csrf_token")?,
                    created_at: row.try_get::<Ts, _>("created_at")?.0,
                    last_seen_at: row.try_get::<Ts, _>("last_seen_at")?.0,
                    ended_at: row.try_get::<Option<Ts>, _>("ended_at")?.map(|t| t.0),
                    client_addr: row.try_get("client_addr")?,
                }),
            })
        })
    }

    /// Ends a session found expired (not audited: nobody acted; the refused request is).
    pub async fn end_session_now(
        &self,
        token_hash: &str,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StoreError> {
        with_retry(RetryPolicy::default(), || async {
            crate::on_pool!(self, pool => {
                sqlx::query(
                    "UPDATE session SET ended_at = $2, end_reason = $3 \
                     WHERE token_hash = $1 AND ended_at IS NULL",
                )
                .bind(token_hash)
                .bind(Ts(at))
                .bind(reason)
                .execute(pool)
                .await?;
            });
            Ok(())
        })
        .await
    }

    /// A session by the hash of its token, with its account (for an account's session) in the
    /// same query: the hot path of every request.
    pub async fn session_and_account(
        &self,
        token_hash: &str,
    ) -> Result<Option<(SessionRow, Option<AccountRow>)>, StoreError> {
        // Built once: every request runs it.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let account_columns: Vec<String> = COLUMNS
                .split(',')
                .map(|c| format!("a.{}", c.trim()))
                .collect();
            format!(
                "SELECT s.token_hash AS s_token_hash, s.account_id AS s_account_id, \
                 s.person_id AS s_person_id, s.stage AS s_stage, s.csrf_token AS s_csrf_token, \
                 s.created_at AS s_created_at, s.last_seen_at AS s_last_seen_at, \
                 s.ended_at AS s_ended_at, s.client_addr AS s_client_addr, {} \
                 FROM session s LEFT JOIN account a ON a.account_id = s.account_id \
                 WHERE s.token_hash = $1",
                account_columns.join(", ")
            )
        });
        let sql: &str = &SQL;
        macro_rules! session_and_account {
            ($row:expr, $get:ident) => {{
                let row = $row;
                let created_at: Ts = row.$get("s_created_at")?;
                let last_seen_at: Ts = row.$get("s_last_seen_at")?;
                let ended_at: Option<Ts> = row.$get("s_ended_at")?;
                let session = SessionRow {
                    token_hash: row.$get("s_token_hash")?,
                    account_id: row.$get("s_account_id")?,
                    person_id: row.$get("s_person_id")?,
                    stage: row.$get("s_stage")?,
                    csrf_token: row.$get("s_csrf_token")?,
                    created_at: created_at.0,
                    last_seen_at: last_seen_at.0,
                    ended_at: ended_at.map(|t| t.0),
                    client_addr: row.$get("s_client_addr")?,
                };
                let account_id: Option<Uuid> = row.$get("account_id")?;
                let account = match account_id {
                    Some(_) => Some(account_row!(row, $get)),
                    None => None,
                };
                (session, account)
            }};
        }
        if let Some(in_place) = self.in_place()
            && let Some(found) =
                in_place.optional_row(sql, &token_hash, |row| Ok(session_and_account!(row, get)))
        {
            return found;
        }
        crate::on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(token_hash)
                .fetch_optional(pool)
                .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(session_and_account!(&row, try_get)))
        })
    }

    /// Notes that a session was used (not audited: the request it serves is).
    pub async fn touch_session(
        &self,
        token_hash: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        with_retry(RetryPolicy::default(), || async {
            crate::on_pool!(self, pool => {
                sqlx::query("UPDATE session SET last_seen_at = $2 WHERE token_hash = $1 AND ended_at IS NULL")
                    .bind(token_hash)
                    .bind(Ts(at))
                    .execute(pool)
                    .await?;
            });
            Ok(())
        })
        .await
    }
}
