//! `/api/v1/audit/...`: the audit log's signed tree heads and the consistency proofs between
//! them, public (no login), for anyone to check that the log only grows (issue 27, item 5;
//! RFC 9162). A head's signature is Ed25519 by the audit key (`key`), over the text
//! `ehrshare audit checkpoint v1\ninstance <i>\nsize <n>\nroot <hex>\ntime <t>\n` (a
//! rollback's head: `ehrshare audit rollback v1\ninstance <i>\nfrom <f>\nkept <k>\nsize
//! <n>\nroot <hex>\ntime <t>\n`).

use axum::Json;
use axum::extract::{Query, State};
use data_encoding::BASE64URL_NOPAD;
use ehrshare_app::App;
use ehrshare_core::audit::checkpoint::{Checkpoint, hex};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::keys::JwkView;
use crate::error::HttpError;

/// A signed tree head.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeadView {
    pub instance: String,
    pub size: u64,
    /// The Merkle root, hex.
    pub root: String,
    /// When it was signed, RFC 3339.
    pub time: String,
    pub key_id: String,
    /// Ed25519, hex.
    pub signature: String,
    /// On a rollback's head: the size of the head given up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_from: Option<u64>,
    /// On a rollback's head: the largest earlier signed size the log still agrees with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_kept: Option<u64>,
}

impl From<&Checkpoint> for HeadView {
    fn from(c: &Checkpoint) -> Self {
        HeadView {
            instance: c.instance.clone(),
            size: c.size,
            root: hex(&c.root),
            time: c.time.clone(),
            key_id: c.key_id.clone(),
            signature: hex(&c.signature),
            rollback_from: c.rollback.map(|r| r.from),
            rollback_kept: c.rollback.map(|r| r.kept),
        }
    }
}

/// The published heads and the key that signs them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeadsView {
    /// The audit key's public half (JWK, OKP Ed25519); none when heads are not signed.
    pub key: Option<JwkView>,
    /// Oldest first, at most 100.
    pub heads: Vec<HeadView>,
}

/// Paging of the heads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadsQuery {
    /// Heads of a larger size than this.
    #[serde(default)]
    pub after: Option<u64>,
}

/// `GET /api/v1/audit/heads`: the signed heads that describe the log as it is now.
#[utoipa::path(get, path = "/api/v1/audit/heads", tag = "audit",
    params(("after" = Option<u64>, Query, description = "Heads of a larger size than this")),
    responses((status = 200, description = "The heads and the audit key", body = HeadsView)))]
pub async fn heads(
    State(app): State<App>,
    Query(q): Query<HeadsQuery>,
) -> Result<Json<HeadsView>, HttpError> {
    let heads = app.published_heads(q.after).await?;
    let key = app.audit_public_key().map(|k| JwkView {
        kty: "OKP".to_owned(),
        crv: "Ed25519".to_owned(),
        x: BASE64URL_NOPAD.encode(&k),
        kid: ehrshare_app::signer::key_id(&k),
        use_: "sig".to_owned(),
        alg: "EdDSA".to_owned(),
    });
    Ok(Json(HeadsView {
        key,
        heads: heads.iter().map(HeadView::from).collect(),
    }))
}

/// Two tree sizes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    pub from: u64,
    pub to: u64,
}

/// A consistency proof.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsistencyView {
    pub from: u64,
    pub to: u64,
    /// RFC 9162 2.1.4, hex.
    pub proof: Vec<String>,
}

/// `GET /api/v1/audit/consistency?from=&to=`: that the tree of `to` entries extends the tree
/// of `from` (RFC 9162 2.1.4).
#[utoipa::path(get, path = "/api/v1/audit/consistency", tag = "audit",
    params(("from" = u64, Query, description = "The older tree's size (at least 1)"),
           ("to" = u64, Query, description = "The newer tree's size (at most the log's)")),
    responses((status = 200, description = "The proof", body = ConsistencyView),
              (status = 422, description = "Sizes out of range, named", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn consistency(
    State(app): State<App>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyView>, HttpError> {
    let proof = app.consistency_between(q.from, q.to).await?;
    Ok(Json(ConsistencyView {
        from: q.from,
        to: q.to,
        proof: proof.iter().map(|h| hex(h)).collect(),
    }))
}
