//! OAuth clients, authorization codes, access tokens and OpenID Connect logins under way:
//! rows in, rows out. Tokens and codes are stored as SHA-256 hex of the random value.

use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::Conn;
use crate::db::Db;
use crate::error::StoreError;
use crate::retry::{RetryPolicy, with_retry};
use crate::timestamp::Ts;

/// A clinic system registered by a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub client_id: String,
    pub hcp_id: Uuid,
    pub name: String,
    pub secret_hash: String,
    /// Exact redirect URIs allowed (JSON array).
    pub redirect_uris: Vec<String>,
    /// The most it may be granted, space-separated.
    pub scopes: String,
    /// Its public keys (a JWK Set's JSON) when it authenticates by signed assertion (SMART
    /// Backend Services); `None` when it authenticates by its secret.
    pub jwks: Option<String>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// An authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    pub code_hash: String,
    pub client_id: String,
    pub account_id: Uuid,
    pub redirect_uri: String,
    pub scopes: String,
    pub code_challenge: String,
    /// The patient chosen at authorization (`launch/patient`).
    pub patient_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// An access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub token_hash: String,
    pub client_id: String,
    pub hcp_id: Uuid,
    pub account_id: Option<Uuid>,
    pub scopes: String,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    /// The authorization code it was issued from (its hash); none for client credentials.
    pub code_hash: Option<String>,
    /// The one patient it reaches (`launch/patient`).
    pub patient_id: Option<Uuid>,
}

/// An OpenID Connect login under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcLoginRow {
    pub state_hash: String,
    pub nonce: String,
    pub verifier: String,
    pub purpose: String,
    pub account_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// Registers a client.
pub async fn insert_client(conn: Conn<'_>, c: &ClientRow) -> Result<(), StoreError> {
    let uris =
        serde_json::to_string(&c.redirect_uris).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO oauth_client (client_id, hcp_id, name, secret_hash, redirect_uris, scopes, \
             created_at, jwks) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.client_id)
        .bind(c.hcp_id)
        .bind(&c.name)
        .bind(&c.secret_hash)
        .bind(&uris)
        .bind(&c.scopes)
        .bind(Ts(c.created_at))
        .bind(&c.jwks)
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Revokes a client and every token issued to it.
pub async fn revoke_client(
    conn: Conn<'_>,
    client_id: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query("UPDATE oauth_client SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL")
            .bind(client_id)
            .bind(Ts(at))
            .execute(&mut *db)
            .await?;
        sqlx::query("UPDATE oauth_token SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL")
            .bind(client_id)
            .bind(Ts(at))
            .execute(&mut *db)
            .await?;
    });
    Ok(())
}

/// Uses a client assertion's `jti`, if the client has not used it before (the ones that have
/// expired are forgotten first: an expired assertion is refused anyway). Returns whether this
/// call used it.
pub async fn use_assertion(
    mut conn: Conn<'_>,
    client_id: &str,
    jti: &str,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn.reborrow(), db => {
        sqlx::query("DELETE FROM oauth_assertion WHERE client_id = $1 AND expires_at < $2")
            .bind(client_id)
            .bind(Ts(now))
            .execute(&mut *db)
            .await?;
        sqlx::query(
            "INSERT INTO oauth_assertion (client_id, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(client_id)
        .bind(jti)
        .bind(Ts(expires_at))
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Stores an authorization code.
pub async fn insert_code(conn: Conn<'_>, c: &CodeRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO oauth_code (code_hash, client_id, account_id, redirect_uri, scopes, \
             code_challenge, created_at, expires_at, patient_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&c.code_hash)
        .bind(&c.client_id)
        .bind(c.account_id)
        .bind(&c.redirect_uri)
        .bind(&c.scopes)
        .bind(&c.code_challenge)
        .bind(Ts(c.created_at))
        .bind(Ts(c.expires_at))
        .bind(c.patient_id)
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Uses a code, if nobody has: returns whether this call used it.
pub async fn use_code(
    conn: Conn<'_>,
    code_hash: &str,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let n = crate::on_conn!(conn, db => {
        sqlx::query("UPDATE oauth_code SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL")
            .bind(code_hash)
            .bind(Ts(at))
            .execute(&mut *db)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

/// Stores an access token.
pub async fn insert_token(conn: Conn<'_>, t: &TokenRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO oauth_token (token_hash, client_id, hcp_id, account_id, scopes, issued_at, \
             expires_at, code_hash, patient_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&t.token_hash)
        .bind(&t.client_id)
        .bind(t.hcp_id)
        .bind(t.account_id)
        .bind(&t.scopes)
        .bind(Ts(t.issued_at))
        .bind(Ts(t.expires_at))
        .bind(&t.code_hash)
        .bind(t.patient_id)
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

/// Revokes every live token issued from an authorization code (the code was presented again,
/// RFC 6749 section 10.5). Returns how many.
pub async fn revoke_code_tokens(
    conn: Conn<'_>,
    code_hash: &str,
    at: OffsetDateTime,
) -> Result<u64, StoreError> {
    let n = crate::on_conn!(conn, db => {
        sqlx::query(
            "UPDATE oauth_token SET revoked_at = $2 WHERE code_hash = $1 AND revoked_at IS NULL",
        )
        .bind(code_hash)
        .bind(Ts(at))
        .execute(&mut *db)
        .await?
        .rows_affected()
    });
    Ok(n)
}

/// Revokes one token.
pub async fn revoke_token(
    conn: Conn<'_>,
    token_hash: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query("UPDATE oauth_token SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(token_hash)
            .bind(Ts(at))
            .execute(&mut *db)
            .await?;
    });
    Ok(())
}

impl Db {
    /// Stores an OpenID Connect login under way (not audited: nothing was accessed yet).
    pub async fn insert_oidc_login(&self, l: &OidcLoginRow) -> Result<(), StoreError> {
        with_retry(RetryPolicy::default(), || async {
            crate::on_pool!(self, pool => {
                sqlx::query(
                    "INSERT INTO oidc_login (state_hash, nonce, verifier, purpose, account_id, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&l.state_hash)
                .bind(&l.nonce)
                .bind(&l.verifier)
                .bind(&l.purpose)
                .bind(l.account_id)
                .bind(Ts(l.created_at))
                .bind(Ts(l.expires_at))
                .execute(pool)
                .await?;
            });
            Ok(())
        })
        .await
    }

    /// Uses an OpenID Connect login's state, if nobody has: returns whether this call used it.
    pub async fn use_oidc_login(
        &self,
        state_hash: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        with_retry(RetryPolicy::default(), || async {
            let n = crate::on_pool!(self, pool => {
                sqlx::query("UPDATE oidc_login SET used_at = $2 WHERE state_hash = $1 AND used_at IS NULL")
                    .bind(state_hash)
                    .bind(Ts(at))
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
            Ok(n == 1)
        })
        .await
    }

    /// A client by id.
    pub async fn oauth_client(&self, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT client_id, hcp_id, name, secret_hash, redirect_uris, scopes, created_at, \
                 revoked_at, jwks FROM oauth_client WHERE client_id = $1",
            )
            .bind(client_id)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let uris: String = row.try_get("redirect_uris")?;
            Ok(Some(ClientRow {
                client_id: row.try_get("client_id")?,
                hcp_id: row.try_get("hcp_id")?,
                name: row.try_get("name")?,
                secret_hash: row.try_get("secret_hash")?,
                redirect_uris: serde_json::from_str(&uris)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                scopes: row.try_get("scopes")?,
                jwks: row.try_get("jwks")?,
                created_at: row.try_get::<Ts, _>("created_at")?.0,
                revoked_at: row.try_get::<Option<Ts>, _>("revoked_at")?.map(|t| t.0),
            }))
        })
    }

    /// An authorization code by hash.
    pub async fn oauth_code(&self, code_hash: &str) -> Result<Option<CodeRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT code_hash, client_id, account_id, redirect_uri, scopes, code_challenge, \
                 created_at, expires_at, used_at, patient_id FROM oauth_code WHERE code_hash = $1",
            )
            .bind(code_hash)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(CodeRow {
                code_hash: row.try_get("code_hash")?,
                client_id: row.try_get("client_id")?,
                account_id: row.try_get("account_id")?,
                redirect_uri: row.try_get("redirect_uri")?,
                scopes: row.try_get("scopes")?,
                code_challenge: row.try_get("code_challenge")?,
                patient_id: row.try_get("patient_id")?,
                created_at: row.try_get::<Ts, _>("created_at")?.0,
                expires_at: row.try_get::<Ts, _>("expires_at")?.0,
                used_at: row.try_get::<Option<Ts>, _>("used_at")?.map(|t| t.0),
            }))
        })
    }

    /// An access token by hash.
    pub async fn oauth_token(&self, token_hash: &str) -> Result<Option<TokenRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT token_hash, client_id, hcp_id, account_id, scopes, issued_at, expires_at, \
                 revoked_at, code_hash, patient_id FROM oauth_token WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(TokenRow {
                token_hash: row.try_get("token_hash")?,
                client_id: row.try_get("client_id")?,
                hcp_id: row.try_get("hcp_id")?,
                account_id: row.try_get("account_id")?,
                scopes: row.try_get("scopes")?,
                issued_at: row.try_get::<Ts, _>("issued_at")?.0,
                expires_at: row.try_get::<Ts, _>("expires_at")?.0,
                revoked_at: row.try_get::<Option<Ts>, _>("revoked_at")?.map(|t| t.0),
                code_hash: row.try_get("code_hash")?,
                patient_id: row.try_get("patient_id")?,
            }))
        })
    }

    /// An OpenID Connect login under way, by the hash of its state.
    pub async fn oidc_login(&self, state_hash: &str) -> Result<Option<OidcLoginRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT state_hash, nonce, verifier, purpose, account_id, created_at, expires_at, \
                 used_at FROM oidc_login WHERE state_hash = $1",
            )
            .bind(state_hash)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(OidcLoginRow {
                state_hash: row.try_get("state_hash")?,
                nonce: row.try_get("nonce")?,
                verifier: row.try_get("verifier")?,
                purpose: row.try_get("purpose")?,
                account_id: row.try_get("account_id")?,
                created_at: row.try_get::<Ts, _>("created_at")?.0,
                expires_at: row.try_get::<Ts, _>("expires_at")?.0,
                used_at: row.try_get::<Option<Ts>, _>("used_at")?.map(|t| t.0),
            }))
        })
    }
}
