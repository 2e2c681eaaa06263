//! Who is asking: the actor as the audit log records it, with the request's id and address.

use ehrshare_core::audit::{Actor, NewAuditEntry, Outcome};
use uuid::Uuid;

use crate::App;

/// The caller of a use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub actor: Actor,
    pub request_id: Option<Uuid>,
    pub client_addr: Option<String>,
}

impl Caller {
    /// An audit entry for `action` by this caller, now. The action is a constant of the code,
    /// never built from a request (a path or a field could make it invalid, and the entry
    /// could then not be written: the request would fail with 500).
    pub fn entry(&self, app: &App, action: &'static str, outcome: Outcome) -> NewAuditEntry {
        let mut e = NewAuditEntry::new(app.clock().now(), self.actor.clone(), action, outcome);
        e.request_id = self.request_id;
        e.client_addr = self.client_addr.clone();
        e
    }
}
