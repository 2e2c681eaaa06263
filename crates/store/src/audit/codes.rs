//! An entry's actor kind, action and outcome as one small number in storage (ADR 0023): the
//! three codes were about 32 bytes of text in every row. A storage encoding only: the entry's
//! canonical bytes spell the codes as text, and an entry whose codes are not all in these
//! tables keeps them as text.
//!
//! The tables are frozen: a stored number means what its position meant when it was written.
//! Add at the end, never reorder or remove (a test pins them).

/// Actor kinds, by position.
const ACTOR_KINDS: [&str; 7] = [
    "hcp-user",
    "clinic-system",
    "recipient",
    "sdm",
    "office",
    "system",
    "anonymous",
];

/// Outcomes, by position.
const OUTCOMES: [&str; 3] = ["allowed", "denied", "failed"];

/// Actions, by position: the reads first, the rest as they were in December 2026.
const ACTIONS: [&str; 82] = [
    "record.summary",
    "record.read",
    "record.search",
    "record.deposit",
    "record.entered-in-error",
    "access-key.check",
    "access-key.read",
    "access-key.regenerate",
    "access.report",
    "account.begin-token-enrolment",
    "account.change-password",
    "account.change-role",
    "account.create",
    "account.enrol-token",
    "account.reinstate",
    "account.reset",
    "account.suspend",
    "account.terminate",
    "account.unlock",
    "alert.review",
    "alert.scan",
    "break-glass.configure",
    "card-reader.register",
    "consent.card",
    "consent.give",
    "consent.read",
    "consent.revoke",
    "consent.scan",
    "episode.attendance",
    "episode.close",
    "episode.open",
    "episode.review",
    "hcp.accept",
    "hcp.add-location",
    "hcp.apply",
    "hcp.cancel",
    "hcp.complete-set-up",
    "hcp.read-document",
    "hcp.reinstate",
    "hcp.reject",
    "hcp.submit",
    "hcp.suspend",
    "hcp.upload-document",
    "hcp.withdraw",
    "location.replace-qr",
    "oauth.authorize",
    "oauth.register-client",
    "oauth.revoke",
    "oauth.revoke-client",
    "oauth.token",
    "office.registration",
    "person.activate",
    "person.login",
    "person.login-code",
    "person.password-code",
    "person.password-reset",
    "print-queue.open",
    "print-queue.printed",
    "recipient.act-for",
    "recipient.contact-change",
    "recipient.contact-code",
    "recipient.find",
    "recipient.preferences",
    "recipient.read",
    "recipient.register",
    "recipient.register-notice",
    "recipient.reinstate",
    "recipient.sdm-ending-notice",
    "recipient.show",
    "recipient.suspend",
    "recipient.verify",
    "recipient.withdraw",
    "restriction.add",
    "restriction.lift",
    "restriction.read",
    "restriction.unlock",
    "restriction.unlock-card",
    "restriction.unlock-request",
    "sharing.read",
    "disclosure.record",
    "emergency.access",
    "inbox.read",
];

fn position(table: &[&str], code: &str) -> Option<i32> {
    table
        .iter()
        .position(|c| *c == code)
        .and_then(|i| i32::try_from(i).ok())
}

/// The three codes as one number (kind in bits 0-3, outcome in 4-5, action from 8), when each
/// is in its table.
pub(crate) fn pack(kind: &str, action: &str, outcome: &str) -> Option<i32> {
    Some(
        position(&ACTOR_KINDS, kind)?
            | position(&OUTCOMES, outcome)? << 4
            | position(&ACTIONS, action)? << 8,
    )
}

/// [`pack`] read back: (kind, action, outcome), or `None` for a number no table holds.
pub(crate) fn unpack(packed: i32) -> Option<(&'static str, &'static str, &'static str)> {
    let at = |table: &[&'static str], i: i32| {
        usize::try_from(i).ok().and_then(|i| table.get(i).copied())
    };
    if packed < 0 || packed & 0b1100_0000 != 0 {
        return None;
    }
    Some((
        at(&ACTOR_KINDS, packed & 0xf)?,
        at(&ACTIONS, packed >> 8)?,
        at(&OUTCOMES, (packed >> 4) & 0b11)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_others_stay_text() {
        for kind in ACTOR_KINDS {
            for outcome in OUTCOMES {
                for action in ACTIONS {
                    let packed = pack(kind, action, outcome).unwrap();
                    assert_eq!(unpack(packed), Some((kind, action, outcome)));
                }
            }
        }
        assert_eq!(pack("hcp-user", "record.later", "allowed"), None);
        assert_eq!(pack("robot", "record.read", "allowed"), None);
        assert_eq!(pack("hcp-user", "record.read", "maybe"), None);
        assert_eq!(unpack(-1), None);
        assert_eq!(unpack(7), None, "no eighth actor kind");
        assert_eq!(unpack(3 << 4), None, "no fourth outcome");
        assert_eq!(unpack(200 << 8), None, "no such action");
    }

    /// The tables are frozen: stored numbers are their positions.
    #[test]
    fn the_tables_keep_their_positions() {
        assert_eq!(pack("hcp-user", "record.summary", "allowed"), Some(0));
        assert_eq!(
            pack("system", "record.read", "denied"),
            Some(5 | 1 << 4 | 1 << 8)
        );
        assert_eq!(position(&ACTIONS, "sharing.read"), Some(78));
        assert_eq!(position(&ACTIONS, "inbox.read"), Some(81));
        assert_eq!(
            ACTOR_KINDS.len(),
            ehrshare_core::audit::ActorKind::ALL.len()
        );
        for k in ehrshare_core::audit::ActorKind::ALL {
            assert!(ACTOR_KINDS.contains(&k.code()));
        }
        let mut seen = std::collections::HashSet::new();
        assert!(ACTIONS.iter().all(|a| seen.insert(*a)), "no action twice");
        // Every position, spelled out: append at the end of the tables and here.
        assert_eq!(
            ACTOR_KINDS.join(","),
            "hcp-user,clinic-system,recipient,sdm,office,system,anonymous"
        );
        assert_eq!(OUTCOMES.join(","), "allowed,denied,failed");
        assert_eq!(
            ACTIONS.join(","),
            concat!(
                "record.summary,record.read,record.search,record.deposit,record.entered-in-error,",
                "access-key.check,access-key.read,access-key.regenerate,access.report,",
                "account.begin-token-enrolment,account.change-password,account.change-role,",
                "account.create,account.enrol-token,account.reinstate,account.reset,",
                "account.suspend,account.terminate,account.unlock,alert.review,alert.scan,",
                "break-glass.configure,card-reader.register,consent.card,consent.give,",
                "consent.read,consent.revoke,consent.scan,episode.attendance,episode.close,",
                "episode.open,episode.review,hcp.accept,hcp.add-location,hcp.apply,hcp.cancel,",
                "hcp.complete-set-up,hcp.read-document,hcp.reinstate,hcp.reject,hcp.submit,",
                "hcp.suspend,hcp.upload-document,hcp.withdraw,location.replace-qr,",
                "oauth.authorize,oauth.register-client,oauth.revoke,oauth.revoke-client,",
                "oauth.token,office.registration,person.activate,person.login,person.login-code,",
                "person.password-code,person.password-reset,print-queue.open,print-queue.printed,",
                "recipient.act-for,recipient.contact-change,recipient.contact-code,",
                "recipient.find,recipient.preferences,recipient.read,recipient.register,",
                "recipient.register-notice,recipient.reinstate,recipient.sdm-ending-notice,",
                "recipient.show,recipient.suspend,recipient.verify,recipient.withdraw,",
                "restriction.add,restriction.lift,restriction.read,restriction.unlock,",
                "restriction.unlock-card,restriction.unlock-request,sharing.read,",
                "disclosure.record,emergency.access,inbox.read",
            )
        );
    }
}
