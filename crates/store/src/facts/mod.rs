//! Everything the access decision needs about a recipient, read in one go on every decision:
//! the registration with its SDMs, consents, care episodes, restrictions with their unlocks,
//! and the current records a read may release.

mod sql;

use ehrshare_core::domain::Domain;
use sql::{Wanted, facts_and_records_sql, facts_sql, records_sql};
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::consent::ConsentRow;
use crate::db::Db;
use crate::emergency::EmergencyRow;
use crate::episode::EpisodeRow;
use crate::error::StoreError;
use crate::packed::{self};
use crate::recipient::{RecipientRow, SdmRow, recipient_row};
use crate::restriction::{RestrictionRow, UnlockRow};
use crate::timestamp::Ts;

/// Everything the access decision needs about a recipient ([`Db::recipient_facts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientFacts {
    pub registration: RecipientRow,
    pub sdms: Vec<SdmRow>,
    pub consents: Vec<ConsentRow>,
    pub episodes: Vec<EpisodeRow>,
    pub restrictions: Vec<RestrictionRow>,
    /// Emergency access granted (SPEC 3.11), in force or not.
    pub emergency: Vec<EmergencyRow>,
    /// The current records in the domains asked for, by domain and oldest first in each.
    pub records: Vec<ListedRecord>,
    /// The recipient's record revision these records are at (ADR 0023; 0 before any write).
    pub record_rev: u64,
}

/// A current record as a summary or a domain's page lists it: what those answers show and
/// what the decision's obligations filter on, no more. A summary lists tens of records, and
/// each column read costs (ADR 0013); the full row is [`RecordRow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRecord {
    pub id: Uuid,
    /// The recipient the records were read for (not read back: the query's own key).
    pub recipient_id: Uuid,
    /// Read as core's domain: the answers group and filter by it, and parsing the code once
    /// here spares them three look-ups a record. A record of a domain this build does not
    /// know (written by a later version) is not listed at all ([`listed_domain`]).
    pub domain: Domain,
    pub resource_type: String,
    pub source_hcp: Uuid,
    pub version: i64,
    /// Canonical JSON text.
    pub body: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The domain of a listed record's stored code, or `None` for a code this build does not
/// know: such a record is left out of the list, neither shown nor counted, as the answers
/// left it out when they parsed the code themselves.
fn listed_domain(code: &str) -> Option<Domain> {
    Domain::parse(code)
}

/// A [`ListedRecord`] from a row of [`LISTED_COLUMNS`] read in place; `None` for a domain
/// this build does not know ([`listed_domain`]).
fn listed_record(
    recipient: Uuid,
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<Option<ListedRecord>> {
    let Some(domain) = listed_domain(row.get_ref(1)?.as_str()?) else {
        return Ok(None);
    };
    let created_at: Ts = row.get(6)?;
    let updated_at: Ts = row.get(7)?;
    Ok(Some(ListedRecord {
        id: row.get(0)?,
        recipient_id: recipient,
        domain,
        resource_type: row.get(2)?,
        source_hcp: row.get(3)?,
        version: row.get(4)?,
        body: row.get(5)?,
        created_at: created_at.0,
        updated_at: updated_at.0,
    }))
}

/// A [`ListedRecord`] from a record row of [`sql::facts_and_records_sql`]; `None` for a
/// domain this build does not know ([`listed_domain`]).
fn listed_record_row(
    recipient: Uuid,
    row: &sqlx::postgres::PgRow,
) -> Result<Option<ListedRecord>, StoreError> {
    let domain: &str = row.try_get("l_domain")?;
    let Some(domain) = listed_domain(domain) else {
        return Ok(None);
    };
    Ok(Some(ListedRecord {
        id: row.try_get("l_record_id")?,
        recipient_id: recipient,
        domain,
        resource_type: row.try_get("l_resource_type")?,
        source_hcp: row.try_get("l_source_hcp")?,
        version: row.try_get("l_version")?,
        body: row.try_get("l_body")?,
        created_at: row.try_get("l_created_at")?,
        updated_at: row.try_get("l_updated_at")?,
    }))
}

/// The facts' lists in their documented order, sorted here rather than by the database: on
/// SQLite an `ORDER BY` inside an aggregate builds a temporary b-tree per list per read,
/// which cost more than these few rows' sort (ADR 0013). Instants compare as instants and
/// ids by their bytes, as both backends order them.
fn facts_order(
    sdms: &mut [SdmRow],
    consents: &mut [ConsentRow],
    episodes: &mut [EpisodeRow],
    restrictions: &mut [RestrictionRow],
) {
    sdms.sort_by_key(|s| (s.created_at, s.sdm_id));
    // Newest first.
    consents.sort_by_key(|c| std::cmp::Reverse((c.given_at, c.id)));
    episodes.sort_by_key(|e| std::cmp::Reverse((e.start_at, e.id)));
    restrictions.sort_by_key(|r| (r.created_at, r.id));
    for r in restrictions.iter_mut() {
        r.unlocks.sort_by_key(|u| (u.until, u.id));
    }
}

/// The packed [`records_list`] of `recipient`'s records.
fn decode_records(recipient: Uuid, text: &str) -> Result<Vec<ListedRecord>, StoreError> {
    type Packed = (String, String, String, String, i64, String, String, String);
    packed::decode::<Packed>("records", text)?
        .into_iter()
        .map(|p| {
            let Some(domain) = listed_domain(&p.1) else {
                return Ok(None);
            };
            Ok(Some(ListedRecord {
                id: packed::uuid(&p.0)?,
                recipient_id: recipient,
                domain,
                resource_type: p.2,
                source_hcp: packed::uuid(&p.3)?,
                version: p.4,
                body: p.5,
                created_at: packed::ts(&p.6)?,
                updated_at: packed::ts(&p.7)?,
            }))
        })
        .filter_map(Result::transpose)
        .collect()
}

impl Db {
    /// Everything the access decision needs about a recipient, in one statement (see
    /// [`packed`] for why): the registration with its SDMs, every consent (newest first),
    /// every care episode (newest first) and the restrictions in force with their unlocks;
    /// with the current records in `records_in` (domain codes), for a read that will release
    /// them only under a permit (see `core::access::need_to_know`). `None` if there is no such
    /// recipient.
    pub async fn recipient_facts(
        &self,
        recipient: Uuid,
        records_in: &[String],
    ) -> Result<Option<RecipientFacts>, StoreError> {
        // In place (SQLite), the records are read as rows by a second statement: without a
        // hand-over per row there is nothing to save by packing them, and packing costs
        // escaping each body into JSON and back.
        let in_place = self.in_place().and_then(|in_place| {
            in_place.read(|conn| {
                // One snapshot for both statements, as the pool's one statement has: the
                // records are those of the facts the decision is made on. The facts alone
                // are one statement, its own snapshot: no transaction to begin and end.
                let _snapshot = (!records_in.is_empty())
                    .then(|| conn.unchecked_transaction())
                    .transpose()?;
                let mut statement = conn.prepare_cached(&facts_sql(crate::Backend::Sqlite, 0))?;
                let mut rows = statement.query([("$1", &recipient)].as_slice())?;
                let Some(row) = rows.next()? else {
                    return Ok(None);
                };
                let names = crate::in_place::column_names(row);
                let row = crate::in_place::Named::new(row, &names);
                let registration = recipient_row!(&row, get);
                let lists = [
                    row.get("sdms")?,
                    row.get("consents")?,
                    row.get("episodes")?,
                    row.get("restrictions")?,
                    row.get("emergency")?,
                ];
                let rev: Option<i64> = row.get("record_rev")?;
                let mut records = Vec::new();
                if !records_in.is_empty() {
                    let wanted = Wanted::of(records_in);
                    let mut statement = conn.prepare_cached(&records_sql(wanted))?;
                    let values: Vec<&dyn rusqlite::ToSql> = std::iter::once(&recipient as _)
                        .chain(wanted.bound(records_in).iter().map(|d| d as _))
                        .collect();
                    let names = crate::in_place::numbered(values.len());
                    let params: Vec<(&str, &dyn rusqlite::ToSql)> =
                        names.iter().map(String::as_str).zip(values).collect();
                    let mut rows = statement.query(params.as_slice())?;
                    while let Some(row) = rows.next()? {
                        records.extend(listed_record(recipient, row)?);
                    }
                }
                Ok(Some((registration, lists, records, rev)))
            })
        });
        type Read = (RecipientRow, [String; 5], Vec<ListedRecord>, Option<i64>);
        let (registration, lists, records, rev): Read = if let Some(found) = in_place {
            match found? {
                Some(found) => found,
                None => return Ok(None),
            }
        } else if let crate::Pool::Postgres(pool) = self.pool()
            && !records_in.is_empty()
        {
            let wanted = Wanted::of(records_in);
            let mut q =
                sqlx::query(sqlx::AssertSqlSafe(facts_and_records_sql(wanted))).bind(recipient);
            for d in wanted.bound(records_in) {
                q = q.bind(d);
            }
            let rows = q.fetch_all(pool).await?;
            let Some((facts, records)) = rows.split_first() else {
                return Ok(None);
            };
            let part: i32 = facts.try_get("part")?;
            if part != 0 {
                return Err(StoreError::Corrupt(
                    "a recipient's records without the recipient".to_owned(),
                ));
            }
            (
                recipient_row!(facts),
                [
                    facts.try_get("sdms")?,
                    facts.try_get("consents")?,
                    facts.try_get("episodes")?,
                    facts.try_get("restrictions")?,
                    facts.try_get("emergency")?,
                ],
                records
                    .iter()
                    .map(|row| listed_record_row(recipient, row))
                    .filter_map(Result::transpose)
                    .collect::<Result<_, StoreError>>()?,
                facts.try_get("record_rev")?,
            )
        } else {
            // No domains is `Wanted::In(0)`, key 0: the facts without records.
            let wanted = Wanted::of(records_in);
            let sql = facts_sql(self.backend(), wanted.key());
            crate::on_pool!(self, pool => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(recipient);
                for d in wanted.bound(records_in) {
                    q = q.bind(d);
                }
                let Some(row) = q.fetch_optional(pool).await? else {
                    return Ok(None);
                };
                let records: String = row.try_get("records")?;
                (
                    recipient_row!(&row),
                    [
                        row.try_get("sdms")?,
                        row.try_get("consents")?,
                        row.try_get("episodes")?,
                        row.try_get("restrictions")?,
                        row.try_get("emergency")?,
                    ],
                    decode_records(recipient, &records)?,
                    row.try_get("record_rev")?,
                )
            })
        };
        let [sdms, consents, episodes, restrictions, emergency] = lists;
        type Sdm = (
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            String,
            String,
            bool,
            Option<String>,
            String,
            String,
            Option<String>,
            String,
        );
        type Consent = (
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
        );
        type Episode = (
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
        );
        type Unlock = (String, String, String, String);
        type Restriction = (
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            Vec<Unlock>,
        );
        let mut sdms: Vec<SdmRow> = packed::decode::<Sdm>("sdms", &sdms)?
            .into_iter()
            .map(|p| {
                Ok(SdmRow {
                    recipient_id: packed::uuid(&p.0)?,
                    sdm_id: packed::uuid(&p.1)?,
                    name_en: p.2,
                    name_zh: p.3,
                    doc_type: p.4,
                    doc_issuer: p.5,
                    doc_number: p.6,
                    category: p.7,
                    no_higher_available: p.8,
                    relationship_proof: p.9,
                    phone: p.10,
                    created_at: packed::ts(&p.11)?,
                    email: p.12,
                    notify_channel: p.13,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let mut consents: Vec<ConsentRow> = packed::decode::<Consent>("consents", &consents)?
            .into_iter()
            .map(|p| {
                Ok(ConsentRow {
                    id: packed::uuid(&p.0)?,
                    recipient_id: packed::uuid(&p.1)?,
                    hcp_id: packed::uuid(&p.2)?,
                    kind: p.3,
                    method: p.4,
                    method_ref: p.5,
                    given_at: packed::ts(&p.6)?,
                    revoked_at: packed::opt_ts(p.7.as_deref())?,
                    sdm_id: packed::opt_uuid(p.8.as_deref())?,
                    account_id: packed::opt_uuid(p.9.as_deref())?,
                    created_at: packed::ts(&p.10)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let mut episodes: Vec<EpisodeRow> = packed::decode::<Episode>("episodes", &episodes)?
            .into_iter()
            .map(|p| {
                Ok(EpisodeRow {
                    id: packed::uuid(&p.0)?,
                    recipient_id: packed::uuid(&p.1)?,
                    hcp_id: packed::uuid(&p.2)?,
                    location_id: packed::opt_uuid(p.3.as_deref())?,
                    kind: p.4,
                    start_at: packed::ts(&p.5)?,
                    end_at: packed::opt_ts(p.6.as_deref())?,
                    opened_by: packed::uuid(&p.7)?,
                    closed_by: packed::opt_uuid(p.8.as_deref())?,
                    created_at: packed::ts(&p.9)?,
                    planned_end_at: packed::opt_ts(p.10.as_deref())?,
                    last_activity_at: packed::opt_ts(p.11.as_deref())?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let mut restrictions: Vec<RestrictionRow> =
            packed::decode::<Restriction>("restrictions", &restrictions)?
                .into_iter()
                .map(|p| {
                    Ok(RestrictionRow {
                        id: packed::uuid(&p.0)?,
                        recipient_id: packed::uuid(&p.1)?,
                        domain: p.2,
                        record_id: packed::opt_uuid(p.3.as_deref())?,
                        created_at: packed::ts(&p.4)?,
                        unlocks: p
                            .5
                            .into_iter()
                            .map(|u| {
                                Ok(UnlockRow {
                                    id: packed::uuid(&u.0)?,
                                    hcp_id: packed::uuid(&u.1)?,
                                    episode_id: packed::uuid(&u.2)?,
                                    until: packed::ts(&u.3)?,
                                })
                            })
                            .collect::<Result<_, StoreError>>()?,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
        facts_order(&mut sdms, &mut consents, &mut episodes, &mut restrictions);
        type Emergency = (String, String, String, String);
        let emergency: Vec<EmergencyRow> = packed::decode::<Emergency>("emergency", &emergency)?
            .into_iter()
            .map(|e| {
                Ok(EmergencyRow {
                    id: packed::uuid(&e.0)?,
                    hcp_id: packed::uuid(&e.1)?,
                    account_id: packed::uuid(&e.2)?,
                    until: packed::ts(&e.3)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(RecipientFacts {
            registration,
            sdms,
            consents,
            episodes,
            restrictions,
            emergency,
            records,
            record_rev: rev.and_then(|r| u64::try_from(r).ok()).unwrap_or(0),
        }))
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;
    use crate::{Db, DbOptions};

    fn at(minute: i64) -> OffsetDateTime {
        datetime!(2026-01-15 09:00:00 UTC) + time::Duration::minutes(minute)
    }

    fn consent(id: u128, given: i64) -> ConsentRow {
        ConsentRow {
            id: Uuid::from_u128(id),
            recipient_id: Uuid::nil(),
            hcp_id: Uuid::nil(),
            kind: "indefinite".into(),
            method: "app".into(),
            method_ref: None,
            given_at: at(given),
            revoked_at: None,
            sdm_id: None,
            account_id: None,
            created_at: at(0),
        }
    }

    fn episode(id: u128, start: i64) -> EpisodeRow {
        EpisodeRow {
            id: Uuid::from_u128(id),
            recipient_id: Uuid::nil(),
            hcp_id: Uuid::nil(),
            location_id: None,
            kind: "attendance".into(),
            start_at: at(start),
            end_at: None,
            opened_by: Uuid::nil(),
            closed_by: None,
            created_at: at(0),
            planned_end_at: None,
            last_activity_at: None,
        }
    }

    fn sdm(id: u128, created: i64) -> SdmRow {
        SdmRow {
            recipient_id: Uuid::nil(),
            sdm_id: Uuid::from_u128(id),
            name_en: "S".into(),
            name_zh: None,
            doc_type: "hkid".into(),
            doc_issuer: "HK".into(),
            doc_number: "A1".into(),
            category: "parent".into(),
            no_higher_available: false,
            relationship_proof: None,
            phone: "+85290000000".into(),
            created_at: at(created),
            email: None,
            notify_channel: "sms".into(),
        }
    }

    fn restriction(id: u128, created: i64, unlocks: &[(u128, i64)]) -> RestrictionRow {
        RestrictionRow {
            id: Uuid::from_u128(id),
            recipient_id: Uuid::nil(),
            domain: None,
            record_id: None,
            created_at: at(created),
            unlocks: unlocks
                .iter()
                .map(|(id, until)| UnlockRow {
                    id: Uuid::from_u128(*id),
                    hcp_id: Uuid::nil(),
                    episode_id: Uuid::nil(),
                    until: at(*until),
                })
                .collect(),
        }
    }

    /// The facts' documented orders: consents and episodes newest first, the rest oldest
    /// first; equal times by id (as the databases ordered them before the sort moved here).
    #[test]
    fn the_facts_lists_come_in_their_documented_order() {
        let mut consents = vec![consent(1, 5), consent(2, 9), consent(4, 5), consent(3, 1)];
        let mut episodes = vec![episode(1, 3), episode(3, 3), episode(2, 7)];
        let mut sdms = vec![sdm(2, 4), sdm(1, 4), sdm(3, 2)];
        let mut restrictions = vec![
            restriction(2, 6, &[(5, 9), (4, 2), (3, 9)]),
            restriction(1, 8, &[]),
            restriction(3, 6, &[]),
        ];
        facts_order(&mut sdms, &mut consents, &mut episodes, &mut restrictions);
        let ids = |v: Vec<Uuid>| v.into_iter().map(|u| u.as_u128()).collect::<Vec<_>>();
        assert_eq!(ids(consents.iter().map(|c| c.id).collect()), [2, 4, 1, 3]);
        assert_eq!(ids(episodes.iter().map(|e| e.id).collect()), [2, 3, 1]);
        assert_eq!(ids(sdms.iter().map(|s| s.sdm_id).collect()), [3, 1, 2]);
        assert_eq!(ids(restrictions.iter().map(|r| r.id).collect()), [2, 3, 1]);
        assert_eq!(
            ids(restrictions[0].unlocks.iter().map(|u| u.id).collect()),
            [4, 3, 5]
        );
    }

    /// PostgreSQL's facts-and-records statement reads the listed columns, by the names its
    /// decoder asks for, and builds for every shape of domain list.
    #[test]
    fn the_rows_statement_reads_the_listed_columns() {
        let columns: Vec<&str> = sql::LISTED_ROW_COLUMNS.iter().map(|c| c.0).collect();
        assert_eq!(columns, sql::LISTED_COLUMNS);
        for wanted in [Wanted::In(1), Wanted::In(3), Wanted::Every] {
            let text = facts_and_records_sql(wanted);
            for (column, name, _) in sql::LISTED_ROW_COLUMNS {
                assert!(text.contains(&format!(" AS {name}")), "{name}: {text}");
                assert!(text.contains(column), "{column}: {text}");
            }
            assert!(text.contains("UNION ALL"), "{text}");
        }
    }

    /// Only a list of every domain reads without a domain condition: one short, or one
    /// repeated in place of another, is read as the list it is.
    #[test]
    fn only_every_domain_drops_the_domain_condition() {
        let mut codes: Vec<String> = Domain::ALL
            .iter()
            .rev()
            .map(|d| d.code().to_owned())
            .collect();
        assert_eq!(Wanted::of(&codes), Wanted::Every);
        assert!(Wanted::Every.bound(&codes).is_empty());
        let last = codes.pop().unwrap();
        assert_eq!(Wanted::of(&codes), Wanted::In(Domain::ALL.len() - 1));
        codes.push(codes[0].clone());
        assert_eq!(Wanted::of(&codes), Wanted::In(Domain::ALL.len()));
        assert_eq!(Wanted::In(2).bound(&codes).len(), codes.len());
        codes.pop();
        codes.push(last);
        assert_eq!(Wanted::of(&codes), Wanted::Every);
        for w in [Wanted::In(0), Wanted::In(7), Wanted::Every] {
            assert_eq!(Wanted::from_key(w.key()), w);
        }
    }

    /// A summary's records come in the index's order and from the index alone: SQLite
    /// neither sorts them nor reads the table, for some domains or every one (migration
    /// 0012, docs/adr/0006).
    #[tokio::test]
    async fn a_summary_reads_its_records_in_index_order_without_a_sort() {
        let db = Db::connect("sqlite::memory:", DbOptions::default())
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let crate::Pool::Sqlite(pool) = db.pool() else {
            unreachable!()
        };
        for (wanted, n) in [(Wanted::In(1), 1), (Wanted::In(5), 5), (Wanted::Every, 0)] {
            let sql = super::records_sql(wanted);
            // Every domain: no list of codes to make a temporary table of.
            assert_eq!(sql.contains(" IN ("), n > 0, "{sql}");
            let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(format!(
                "EXPLAIN QUERY PLAN {sql}"
            )))
            .bind(uuid::Uuid::nil());
            for d in 0..n {
                q = q.bind(format!("domain-{d}"));
            }
            let plan: Vec<String> = q
                .fetch_all(pool)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.3)
                .collect();
            assert!(
                plan.iter()
                    .any(|p| p.contains("USING COVERING INDEX record_recipient_domain")),
                "{plan:?}"
            );
            assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
        }
    }
}
