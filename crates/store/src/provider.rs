//! Healthcare providers and their service locations: rows in, rows out. The lifecycle rules
//! (including which providers are active now) live in `ehrshare-core::provider`.

use ehrshare_core::provider::Sector;
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::Conn;
use crate::db::Db;
use crate::error::StoreError;
use crate::timestamp::Ts;

/// A provider as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HcpRow {
    pub id: Uuid,
    pub name_en: String,
    pub name_zh: String,
    pub br_number: String,
    pub hcp_type: String,
    pub sector: Sector,
    pub authorised_person: Value,
    pub contact_person: Value,
    pub stage: String,
    pub stage_at: OffsetDateTime,
    pub stage_reason: Option<String>,
    pub created_at: OffsetDateTime,
}

/// A service location as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationRow {
    pub id: Uuid,
    pub hcp_id: Uuid,
    pub name_en: String,
    pub name_zh: String,
    pub room_floor: Option<String>,
    pub building: Option<String>,
    pub street: String,
    pub district: String,
    pub phone: String,
    pub qr_token: String,
    pub created_at: OffsetDateTime,
}

/// Replaces a location's QR nonce: every code printed before is revoked.
pub async fn replace_qr_token(
    conn: Conn<'_>,
    location: Uuid,
    token: &str,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query("UPDATE hcp_location SET qr_token = $2 WHERE location_id = $1")
            .bind(location)
            .bind(token)
            .execute(&mut *db)
            .await?;
    });
    Ok(())
}

/// A member of staff named on the application, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRow {
    pub id: Uuid,
    pub hcp_id: Uuid,
    pub name_en: String,
    pub name_zh: Option<String>,
    pub position: Option<String>,
    /// A `core::profession::Role` code.
    pub role: String,
    pub prof_reg_no: Option<String>,
    pub mobile: String,
    /// Agrees to be listed in the public directory.
    pub listed: bool,
    pub created_at: OffsetDateTime,
}

/// Inserts a provider, its first locations and its staff inside the caller's transaction.
pub async fn insert(
    mut conn: Conn<'_>,
    h: &HcpRow,
    locations: &[LocationRow],
    staff: &[StaffRow],
) -> Result<(), StoreError> {
    insert_hcp(conn.reborrow(), h).await?;
    for l in locations {
        insert_location(conn.reborrow(), l).await?;
    }
    for s in staff {
        insert_staff(conn.reborrow(), s).await?;
    }
    Ok(())
}

async fn insert_staff(conn: Conn<'_>, s: &StaffRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO hcp_staff (staff_id, hcp_id, name_en, name_zh, position, role, \
             prof_reg_no, mobile, listed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(s.id)
        .bind(s.hcp_id)
        .bind(&s.name_en)
        .bind(&s.name_zh)
        .bind(&s.position)
        .bind(&s.role)
        .bind(&s.prof_reg_no)
        .bind(&s.mobile)
        .bind(s.listed)
        .bind(Ts(s.created_at))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

async fn insert_hcp(conn: Conn<'_>, h: &HcpRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO hcp (hcp_id, name_en, name_zh, br_number, hcp_type, sector, \
             authorised_person, contact_person, stage, stage_at, stage_reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(h.id)
        .bind(&h.name_en)
        .bind(&h.name_zh)
        .bind(&h.br_number)
        .bind(&h.hcp_type)
        .bind(h.sector.code())
        .bind(Json(&h.authorised_person))
        .bind(Json(&h.contact_person))
        .bind(&h.stage)
        .bind(Ts(h.stage_at))
        .bind(&h.stage_reason)
        .bind(Ts(h.created_at))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Inserts a service location inside the caller's transaction.
pub async fn insert_location(conn: Conn<'_>, l: &LocationRow) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO hcp_location (location_id, hcp_id, name_en, name_zh, room_floor, \
             building, street, district, phone, qr_token, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(l.id)
        .bind(l.hcp_id)
        .bind(&l.name_en)
        .bind(&l.name_zh)
        .bind(&l.room_floor)
        .bind(&l.building)
        .bind(&l.street)
        .bind(&l.district)
        .bind(&l.phone)
        .bind(&l.qr_token)
        .bind(Ts(l.created_at))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// A supporting document's description (its content is read separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRow {
    pub id: Uuid,
    pub hcp_id: Uuid,
    pub kind: String,
    pub file_name: String,
    pub media_type: String,
    pub size: i64,
    /// Lower-case hex.
    pub sha256: String,
    pub uploaded_at: OffsetDateTime,
}

/// Stores a supporting document inside the caller's transaction.
pub async fn insert_document(
    conn: Conn<'_>,
    d: &DocumentRow,
    content: &[u8],
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO hcp_document (document_id, hcp_id, kind, file_name, media_type, size, \
             sha256, content, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(d.id)
        .bind(d.hcp_id)
        .bind(&d.kind)
        .bind(&d.file_name)
        .bind(&d.media_type)
        .bind(d.size)
        .bind(&d.sha256)
        .bind(content)
        .bind(Ts(d.uploaded_at))
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Records a provider's new lifecycle stage inside the caller's transaction.
pub async fn set_stage(
    conn: Conn<'_>,
    id: Uuid,
    stage: &str,
    at: OffsetDateTime,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    crate::on_conn!(conn, c => {
        sqlx::query("UPDATE hcp SET stage = $2, stage_at = $3, stage_reason = $4 WHERE hcp_id = $1")
            .bind(id)
            .bind(stage)
            .bind(Ts(at))
            .bind(reason)
            .execute(&mut *c)
            .await?;
    });
    Ok(())
}

/// Directory filters. `name` is matched as a substring of the English (case-insensitive) or
/// Chinese name; it is bound as a parameter with LIKE's wildcards escaped, never spliced in.
#[derive(Debug, Clone, Default)]
pub struct DirectoryFilter {
    pub name: Option<String>,
    pub district: Option<String>,
    pub hcp_type: Option<String>,
    /// A role code: providers with a listed professional of that role.
    pub profession: Option<String>,
}

/// What belongs to a provider ([`Db::owner_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    Location,
    Staff,
}

/// `%` and `_` (and the escape character) taken literally in a LIKE pattern.
fn like_contains(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.extend(c.to_lowercase());
    }
    out.push('%');
    out
}

const HCP_COLUMNS: &str = "hcp_id, name_en, name_zh, br_number, hcp_type, sector, \
    authorised_person, contact_person, stage, stage_at, stage_reason, created_at";
const LOCATION_COLUMNS: &str = "location_id, hcp_id, name_en, name_zh, room_floor, building, \
    street, district, phone, qr_token, created_at";

/// An [`HcpRow`] from a row with [`HCP_COLUMNS`] (either backend; or a [`crate::in_place`]
/// row with `get`, its JSON columns read as [`crate::in_place::JsonText`]).
macro_rules! hcp_from_row {
    ($row:expr) => {
        hcp_from_row!($row, try_get, Json)
    };
    ($row:expr, $get:ident, $json:ident) => {{
        let row = $row;
        let $json(authorised_person): $json<Value> = row.$get("authorised_person")?;
        let $json(contact_person): $json<Value> = row.$get("contact_person")?;
        let stage_at: Ts = row.$get("stage_at")?;
        let created_at: Ts = row.$get("created_at")?;
        let sector: String = row.$get("sector")?;
        HcpRow {
            id: row.$get("hcp_id")?,
            name_en: row.$get("name_en")?,
            name_zh: row.$get("name_zh")?,
            br_number: row.$get("br_number")?,
            hcp_type: row.$get("hcp_type")?,
            sector: crate::code::decode("hcp.sector", &sector, Sector::parse)?,
            authorised_person,
            contact_person,
            stage: row.$get("stage")?,
            stage_at: stage_at.0,
            stage_reason: row.$get("stage_reason")?,
            created_at: created_at.0,
        }
    }};
}

macro_rules! location_from_row {
    ($row:expr) => {{
        let row = $row;
        LocationRow {
            id: row.try_get("location_id")?,
            hcp_id: row.try_get("hcp_id")?,
            name_en: row.try_get("name_en")?,
            name_zh: row.try_get("name_zh")?,
            room_floor: row.try_get("room_floor")?,
            building: row.try_get("building")?,
            street: row.try_get("street")?,
            district: row.try_get("district")?,
            phone: row.try_get("phone")?,
            qr_token: row.try_get("qr_token")?,
            created_at: row.try_get::<Ts, _>("created_at")?.0,
        }
    }};
}

macro_rules! document_from_row {
    ($row:expr) => {{
        let row = $row;
        DocumentRow {
            id: row.try_get("document_id")?,
            hcp_id: row.try_get("hcp_id")?,
            kind: row.try_get("kind")?,
            file_name: row.try_get("file_name")?,
            media_type: row.try_get("media_type")?,
            size: row.try_get("size")?,
            sha256: row.try_get("sha256")?,
            uploaded_at: row.try_get::<Ts, _>("uploaded_at")?.0,
        }
    }};
}

impl Db {
    /// A provider's supporting documents, without their content.
    pub async fn hcp_documents(&self, hcp: Uuid) -> Result<Vec<DocumentRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT document_id, hcp_id, kind, file_name, media_type, size, sha256, uploaded_at \
                 FROM hcp_document WHERE hcp_id = $1 ORDER BY uploaded_at, document_id",
            )
            .bind(hcp)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(document_from_row!(row));
            }
            Ok(out)
        })
    }

    /// One supporting document of `hcp` with its content.
    pub async fn hcp_document(
        &self,
        hcp: Uuid,
        id: Uuid,
    ) -> Result<Option<(DocumentRow, Vec<u8>)>, StoreError> {
        crate::on_pool!(self, pool => {
            let Some(row) = sqlx::query(
                "SELECT document_id, hcp_id, kind, file_name, media_type, size, sha256, uploaded_at, content \
                 FROM hcp_document WHERE hcp_id = $1 AND document_id = $2",
            )
            .bind(hcp)
            .bind(id)
            .fetch_optional(pool)
            .await?
            else {
                return Ok(None);
            };
            let content: Vec<u8> = row.try_get("content")?;
            Ok(Some((document_from_row!(&row), content)))
        })
    }

    /// A provider's staff; with `listed_only`, those who agreed to be in the directory.
    pub async fn hcp_staff(
        &self,
        hcp: Uuid,
        listed_only: bool,
    ) -> Result<Vec<StaffRow>, StoreError> {
        crate::on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT staff_id, hcp_id, name_en, name_zh, position, role, prof_reg_no, mobile, \
                 listed, created_at FROM hcp_staff \
                 WHERE hcp_id = $1 AND (listed OR NOT $2) ORDER BY name_en, staff_id",
            )
            .bind(hcp)
            .bind(listed_only)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(StaffRow {
                    id: row.try_get("staff_id")?,
                    hcp_id: row.try_get("hcp_id")?,
                    name_en: row.try_get("name_en")?,
                    name_zh: row.try_get("name_zh")?,
                    position: row.try_get("position")?,
                    role: row.try_get("role")?,
                    prof_reg_no: row.try_get("prof_reg_no")?,
                    mobile: row.try_get("mobile")?,
                    listed: row.try_get("listed")?,
                    created_at: row.try_get::<Ts, _>("created_at")?.0,
                });
            }
            Ok(out)
        })
    }

    /// The provider a service location (`hcp_location`) or a member of staff (`hcp_staff`)
    /// belongs to, by its id.
    pub async fn owner_of(&self, table: Owned, id: Uuid) -> Result<Option<Uuid>, StoreError> {
        let sql = match table {
            Owned::Location => "SELECT hcp_id FROM hcp_location WHERE location_id = $1",
            Owned::Staff => "SELECT hcp_id FROM hcp_staff WHERE staff_id = $1",
        };
        crate::on_pool!(self, pool => {
            Ok(sqlx::query_scalar(sql).bind(id).fetch_optional(pool).await?)
        })
    }

    /// A provider and its locations.
    pub async fn hcp_row(&self, id: Uuid) -> Result<Option<HcpRow>, StoreError> {
        // Built once: every access decision runs it.
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!("SELECT {HCP_COLUMNS} FROM hcp WHERE hcp_id = $1"));
        let sql: &str = &SQL;
        if let Some(in_place) = self.in_place()
            && let Some(found) = in_place.optional_row(sql, &id, |row| {
                use crate::in_place::JsonText;
                Ok(hcp_from_row!(row, get, JsonText))
            })
        {
            return found;
        }
        crate::on_pool!(self, pool => {
            let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await? else {
                return Ok(None);
            };
            Ok(Some(hcp_from_row!(&row)))
        })
    }

    /// A provider and its locations.
    pub async fn hcp(&self, id: Uuid) -> Result<Option<(HcpRow, Vec<LocationRow>)>, StoreError> {
        let sql = format!("SELECT {HCP_COLUMNS} FROM hcp WHERE hcp_id = $1");
        let loc_sql = format!(
            "SELECT {LOCATION_COLUMNS} FROM hcp_location WHERE hcp_id = $1 ORDER BY created_at, location_id"
        );
        crate::on_pool!(self, pool => {
            let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await? else {
                return Ok(None);
            };
            let hcp = hcp_from_row!(&row);
            let rows = sqlx::query(sqlx::AssertSqlSafe(loc_sql)).bind(id).fetch_all(pool).await?;
            let mut locations = Vec::with_capacity(rows.len());
            for r in &rows {
                locations.push(location_from_row!(r));
            }
            Ok(Some((hcp, locations)))
        })
    }

    /// Providers in a stage that can be active (active, or withdrawn / cancelled, which may not
    /// be effective yet) matching `filter`, with their locations, by English name. The caller
    /// decides which are active now.
    pub async fn directory_candidates(
        &self,
        filter: &DirectoryFilter,
    ) -> Result<Vec<(HcpRow, Vec<LocationRow>)>, StoreError> {
        let name = filter.name.as_deref().map(like_contains);
        let sql = format!(
            "SELECT {HCP_COLUMNS} FROM hcp \
             WHERE stage IN ('active', 'withdrawn', 'cancelled') \
             AND (CAST($1 AS TEXT) IS NULL OR lower(name_en) LIKE $1 ESCAPE '\\' OR name_zh LIKE $1 ESCAPE '\\') \
             AND (CAST($2 AS TEXT) IS NULL OR hcp_type = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM hcp_location l \
                  WHERE l.hcp_id = hcp.hcp_id AND l.district = $3)) \
             AND (CAST($4 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM hcp_staff s \
                  WHERE s.hcp_id = hcp.hcp_id AND s.listed AND s.role = $4)) \
             ORDER BY name_en, hcp_id"
        );
        let loc_sql = format!(
            "SELECT {LOCATION_COLUMNS} FROM hcp_location WHERE hcp_id = $1 ORDER BY created_at, location_id"
        );
        crate::on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(name)
                .bind(filter.hcp_type.clone())
                .bind(filter.district.clone())
                .bind(filter.profession.clone())
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let hcp = hcp_from_row!(row);
                let loc_rows = sqlx::query(sqlx::AssertSqlSafe(loc_sql.clone()))
                    .bind(hcp.id)
                    .fetch_all(pool)
                    .await?;
                let mut locations = Vec::with_capacity(loc_rows.len());
                for r in &loc_rows {
                    locations.push(location_from_row!(r));
                }
                out.push((hcp, locations));
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_contains("Wai"), "%wai%");
        assert_eq!(like_contains("100%_a\\"), "%100\\%\\_a\\\\%");
        assert_eq!(like_contains("中醫"), "%中醫%");
    }
}
