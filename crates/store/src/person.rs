//! People who log in to the patient portal (recipients and SDMs), their one-time login codes
//! and their external identities: rows in, rows out.

use ehrshare_core::recipient::PersonStatus;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::Conn;
use crate::db::Db;
use crate::error::StoreError;
use crate::timestamp::Ts;

/// A person's login as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub id: Uuid,
    pub doc_type: String,
    pub doc_issuer: String,
    pub doc_number: String,
    pub password_hash: Option<String>,
    pub password_set_at: Option<OffsetDateTime>,
    /// `sms` or `email`.
    pub otp_channel: String,
    pub otp_address: String,
    pub language: String,
    pub status: PersonStatus,
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "person_id, doc_type, doc_issuer, doc_number, password_hash, \
    password_set_at, otp_channel, otp_address, language, status, created_at";

macro_rules! person_row {
    ($row:expr) => {{
        let row = $row;
        PersonRow {
            id: row.try_get("person_id")?,
            doc_type: row.try_get("doc_type")?,
            doc_issuer: row.try_get("doc_issuer")?,
            doc_number: row.try_get("doc_number")?,
            password_hash: row.try_get("password_hash")?,
            password_set_at: row
                .try_get::<Option<Ts>, _>("password_set_at")?
                .map(|t| t.0),
            otp_channel: row.try_get("otp_channel")?,
            otp_address: row.try_get("otp_address")?,
            language: row.try_get("language")?,
            status: crate::code::decode(
                "person.status",
                row.try_get("status")?,
                PersonStatus::parse,
            )?,
            created_at: row.try_get::<Ts, _>("created_at")?.0,
        }
    }};
}

/// Inserts a person, or replaces the password and contact of the person with the same
/// document (a login made through the identity provider, without a password, is given one
/// at activation).
pub async fn upsert(conn: Conn<'_>, p: &PersonRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO person ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (doc_type, doc_issuer, doc_number) DO UPDATE SET \
             password_hash = excluded.password_hash, password_set_at = excluded.password_set_at, \
             otp_channel = excluded.otp_channel, otp_address = excluded.otp_address, \
             language = excluded.language"
        )))
        .bind(p.id)
        .bind(&p.doc_type)
        .bind(&p.doc_issuer)
        .bind(&p.doc_number)
        .bind(&p.password_hash)
        .bind(p.password_set_at.map(Ts))
        .bind(&p.otp_channel)
        .bind(&p.otp_address)
        .bind(&p.language)
        .bind(p.status.code())
        .bind(Ts(p.created_at))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// A one-time code sent to a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    pub id: Uuid,
    pub person_id: Uuid,
    pub code_hash: String,
    pub attempts: i64,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    /// What the code is for (`login`, `password`, `contact`): a code answers its own purpose
    /// only.
    pub purpose: String,
    /// What the code confirms, for a new contact (JSON).
    pub payload: Option<String>,
}

/// Stores a challenge.
pub async fn insert_challenge(conn: Conn<'_>, ch: &ChallengeRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO login_challenge (challenge_id, person_id, code_hash, attempts, \
             created_at, expires_at, purpose, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(ch.id)
        .bind(ch.person_id)
        .bind(&ch.code_hash)
        .bind(ch.attempts)
        .bind(Ts(ch.created_at))
        .bind(Ts(ch.expires_at))
        .bind(&ch.purpose)
        .bind(&ch.payload)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Counts a wrong code against a challenge.
pub async fn count_challenge_attempt(conn: Conn<'_>, id: Uuid) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query("UPDATE login_challenge SET attempts = attempts + 1 WHERE challenge_id = $1")
            .bind(id)
            .execute(&mut *c)
            .await?;
    });
    Ok(())
}

/// Marks a challenge used, if it was not: returns whether this call used it.
pub async fn use_challenge(
    conn: Conn<'_>,
    id: Uuid,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn, c => {
        sqlx::query(
            "UPDATE login_challenge SET used_at = $2 WHERE challenge_id = $1 AND used_at IS NULL",
        )
        .bind(id)
        .bind(Ts(at))
        .execute(&mut *c)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Sets a person's password (a reset: their sessions end, `keep` excepted, in the same
/// transaction).
pub async fn set_password(
    mut conn: Conn<'_>,
    person: Uuid,
    hash: &str,
    keep: Option<&str>,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    crate::on_conn!(conn.reborrow(), c => {
        sqlx::query("UPDATE person SET password_hash = $2, password_set_at = $3 WHERE person_id = $1")
            .bind(person)
            .bind(hash)
            .bind(Ts(at))
            .execute(&mut *c)
            .await?;
        sqlx::query(
            "UPDATE session SET ended_at = $2, end_reason = 'password-reset' \
             WHERE person_id = $1 AND ended_at IS NULL AND token_hash <> $3",
        )
        .bind(person)
        .bind(Ts(at))
        .bind(keep.unwrap_or(""))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Sets where a person's one-time codes go.
pub async fn set_code_contact(
    conn: Conn<'_>,
    person: Uuid,
    channel: &str,
    address: &str,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query("UPDATE person SET otp_channel = $2, otp_address = $3 WHERE person_id = $1")
            .bind(person)
            .bind(channel)
            .bind(address)
            .execute(&mut *c)
            .await?;
    });
    Ok(())
}

/// Links an external identity to an account or a person.
pub async fn link_identity(
    conn: Conn<'_>,
    issuer: &str,
    subject: &str,
    account: Option<Uuid>,
    person: Option<Uuid>,
    at: OffsetDateTime,
    birth_date: Option<&str>,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO oidc_link (issuer, subject, account_id, person_id, created_at, \
             birth_date) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(issuer)
        .bind(subject)
        .bind(account)
        .bind(person)
        .bind(Ts(at))
        .bind(birth_date)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

impl Db {
    /// A person by id.
    pub async fn person(&self, id: Uuid) -> Result<Option<PersonRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM person WHERE person_id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => Some(person_row!(&row)),
                None => None,
            })
        })
    }

    /// A person by identity document.
    pub async fn person_by_document(
        &self,
        doc_type: &str,
        issuer: &str,
        number: &str,
    ) -> Result<Option<PersonRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM person WHERE doc_type = $1 AND doc_issuer = $2 AND doc_number = $3"
            )))
            .bind(doc_type)
            .bind(issuer)
            .bind(number)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => Some(person_row!(&row)),
                None => None,
            })
        })
    }

    /// A login challenge.
    pub async fn challenge(&self, id: Uuid) -> Result<Option<ChallengeRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT challenge_id, person_id, code_hash, attempts, created_at, expires_at, used_at, \
                 purpose, payload FROM login_challenge WHERE challenge_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                None => None,
                Some(row) => Some(ChallengeRow {
                    id: row.try_get("challenge_id")?,
                    person_id: row.try_get("person_id")?,
                    code_hash: row.try_get("code_hash")?,
                    attempts: row.try_get("attempts")?,
                    created_at: row.try_get::<Ts, _>("created_at")?.0,
                    expires_at: row.try_get::<Ts, _>("expires_at")?.0,
                    used_at: row.try_get::<Option<Ts>, _>("used_at")?.map(|t| t.0),
                    purpose: row.try_get("purpose")?,
                    payload: row.try_get("payload")?,
                }),
            })
        })
    }

    /// The account and person an external identity is linked to.
    pub async fn identity_link(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<(Option<Uuid>, Option<Uuid>)>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT account_id, person_id FROM oidc_link WHERE issuer = $1 AND subject = $2",
            )
            .bind(issuer)
            .bind(subject)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                None => None,
                Some(row) => Some((row.try_get("account_id")?, row.try_get("person_id")?)),
            })
        })
    }

    /// Takes one try of a challenge, if it has one left and is unused: the check and the
    /// count are one statement, so that guesses sent at once cannot all pass the limit.
    pub async fn take_challenge_try(&self, id: Uuid, max: i64) -> Result<bool, StoreError> {
        crate::on_pool!(self, pool => {
            let n = sqlx::query(
                "UPDATE login_challenge SET attempts = attempts + 1 WHERE challenge_id = $1 \
                 AND used_at IS NULL AND attempts < $2",
            )
            .bind(id)
            .bind(max)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// The issuer of an external identity linked to a person (one that asserted their
    /// document), if any, and the date of birth it asserted then.
    pub async fn person_identity(
        &self,
        person: Uuid,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT issuer, birth_date FROM oidc_link WHERE person_id = $1 \
                 ORDER BY issuer LIMIT 1",
            )
            .bind(person)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                None => None,
                Some(r) => Some((r.try_get("issuer")?, r.try_get("birth_date")?)),
            })
        })
    }

    /// The recipients a document holder may act for: their own registration (if active) and
    /// those naming them as SDM. The SDM's authority is checked by the application.
    pub async fn recipients_of_document(
        &self,
        doc_type: &str,
        issuer: &str,
        number: &str,
    ) -> Result<(Option<Uuid>, Vec<(Uuid, Uuid)>), StoreError> {
        crate::on_pool!(self, pool => {
            let own: Option<Uuid> = sqlx::query_scalar(
                "SELECT recipient_id FROM recipient WHERE doc_type = $1 AND doc_issuer = $2 \
                 AND doc_number = $3 AND status = 'active'",
            )
            .bind(doc_type)
            .bind(issuer)
            .bind(number)
            .fetch_optional(pool)
            .await?;
            let rows = sqlx::query(
                "SELECT s.recipient_id, s.sdm_id FROM recipient_sdm s \
                 JOIN recipient r ON r.recipient_id = s.recipient_id \
                 WHERE s.doc_type = $1 AND s.doc_issuer = $2 AND s.doc_number = $3 \
                 AND r.status = 'active' ORDER BY s.created_at",
            )
            .bind(doc_type)
            .bind(issuer)
            .bind(number)
            .fetch_all(pool)
            .await?;
            let mut represented = Vec::with_capacity(rows.len());
            for row in &rows {
                represented.push((row.try_get("recipient_id")?, row.try_get("sdm_id")?));
            }
            Ok((own, represented))
        })
    }
}
