//! The benchmarks' population, written straight to the store (`ehrshare bench`).

use ehrshare_core::audit::Outcome;
use ehrshare_core::record::RecordStatus;
use ehrshare_store::record::RecordRow;
use ehrshare_store::{Conn, change};
use uuid::Uuid;

use crate::caller::Caller;
use crate::{App, AppError};

impl App {
    /// Writes a population for benchmarks and the demo, as a fixture (not through deposits):
    /// the first `n` active recipients get an indefinite consent with `hcp`, an open episode
    /// there and `records` records from `resource(i)` (domain, resource type, body). One
    /// audited change per recipient, by the system. Returns the recipients' ids.
    pub async fn bench_population(
        &self,
        hcp: Uuid,
        n: usize,
        records: usize,
        resource: fn(usize) -> (String, String, serde_json::Value),
    ) -> Result<Vec<Uuid>, AppError> {
        let now = self.clock().now();
        let caller = Caller {
            actor: ehrshare_core::audit::Actor::system(),
            request_id: None,
            client_addr: None,
        };
        let ids = self.db().active_recipients(n).await?;
        let mut k = 0usize;
        for recipient in &ids {
            let recipient = *recipient;
            let consent = ehrshare_store::consent::ConsentRow {
                id: Uuid::now_v7(),
                recipient_id: recipient,
                hcp_id: hcp,
                kind: "indefinite".to_owned(),
                method: "form".to_owned(),
                method_ref: Some("fixture".to_owned()),
                given_at: now,
                revoked_at: None,
                sdm_id: None,
                account_id: None,
                created_at: now,
            };
            let episode = ehrshare_store::episode::EpisodeRow {
                id: Uuid::now_v7(),
                recipient_id: recipient,
                hcp_id: hcp,
                location_id: None,
                kind: "attendance".to_owned(),
                start_at: now,
                end_at: None,
                opened_by: Uuid::nil(),
                closed_by: None,
                created_at: now,
                planned_end_at: None,
                last_activity_at: None,
            };
            let mut rows = Vec::with_capacity(records);
            for _ in 0..records {
                let (domain, resource_type, mut body) = resource(k);
                // About this recipient, by its id: what a deposit must say (issue 23).
                for element in ["subject", "patient"] {
                    if let Some(reference) = body.get_mut(element) {
                        *reference = ehrshare_fhir::build::patient_reference(recipient);
                    }
                }
                let source_id = format!("{resource_type}/fixture-{k}");
                rows.push(RecordRow {
                    id: Uuid::now_v7(),
                    recipient_id: recipient,
                    domain,
                    resource_type,
                    source_hcp: hcp,
                    source_id,
                    version: 1,
                    status: RecordStatus::Current,
                    body: body.to_string(),
                    deposited_by: None,
                    created_at: now,
                    updated_at: now,
                });
                k += 1;
            }
            let mut entry = caller.entry(self, "fixture.population", Outcome::Allowed);
            entry.recipient = Some(recipient);
            entry.consent_id = Some(consent.id);
            entry.episode_id = Some(episode.id);
            let write = change(move |mut conn: Conn<'_>| {
                Box::pin(async move {
                    ehrshare_store::consent::insert_consent(conn.reborrow(), &consent).await?;
                    ehrshare_store::episode::insert_episode(conn.reborrow(), &episode).await?;
                    for r in &rows {
                        ehrshare_store::record::insert_record(conn.reborrow(), r).await?;
                    }
                    Ok(())
                })
            });
            self.audit_with(entry, write).await?;
        }
        Ok(ids)
    }
}
