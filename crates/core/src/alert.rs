//! Alert rules (SPEC 3.9) over the stream of access decisions, in the order the audit log
//! holds them: many distinct recipients read by one user within an hour, repeated denials for
//! one user within an hour, reads out of hours (Hong Kong time), and reads of the reader's own
//! record or a colleague's (the recipient's identity document is that of the reader's account
//! or of another account at the reader's provider). Access without a care
//! episode is flagged where it is decided. Pure: the window is fed entries and answers flags;
//! time comes from the entries.

use std::collections::{BTreeSet, HashMap, VecDeque};

use time::{Duration, OffsetDateTime, UtcOffset};
use uuid::Uuid;

/// The thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertPolicy {
    /// Distinct recipients one user reads within an hour that raise an alert.
    pub recipients_per_hour: usize,
    /// Refused accesses by one user within an hour that raise an alert.
    pub denials_per_hour: usize,
    /// Out-of-hours reads are those from this hour ...
    pub night_from: u8,
    /// ... to this hour (Hong Kong time).
    pub night_to: u8,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            recipients_per_hour: 30,
            denials_per_hour: 5,
            night_from: 23,
            night_to: 7,
        }
    }
}

/// One access decision as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub at: OffsetDateTime,
    pub account: Uuid,
    pub recipient: Option<Uuid>,
    pub denied: bool,
    /// Whether the recipient is the reader or a colleague ([`relation`]).
    pub relation: Option<Relation>,
}

/// Who the recipient is to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The recipient's document is the reader's account's.
    Own,
    /// The recipient's document is that of this other account at the reader's provider.
    Colleague(Uuid),
}

/// Who the recipient is to `reader` (an account at `provider`), given the accounts whose
/// holder's document is the recipient's, with their providers. Their own record outranks a
/// colleague's; an account of another provider is no colleague.
pub fn relation(
    reader: Uuid,
    provider: Option<Uuid>,
    holders: &[(Uuid, Option<Uuid>)],
) -> Option<Relation> {
    if holders.iter().any(|(a, _)| *a == reader) {
        return Some(Relation::Own);
    }
    holders
        .iter()
        .find(|(_, p)| p.is_some() && *p == provider)
        .map(|(a, _)| Relation::Colleague(*a))
}

/// What a rule found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    ManyRecipients { count: usize },
    RepeatedDenials { count: usize },
    OutOfHours,
    OwnRecord,
    ColleagueRecord { colleague: Uuid },
}

impl Flag {
    /// The rule's stable code.
    pub fn rule(self) -> &'static str {
        match self {
            Flag::ManyRecipients { .. } => "many-recipients-per-hour",
            Flag::RepeatedDenials { .. } => "repeated-denials",
            Flag::OutOfHours => "out-of-hours",
            Flag::OwnRecord => "own-record",
            Flag::ColleagueRecord { .. } => "colleague-record",
        }
    }
}

/// The last hour of decisions per user.
#[derive(Debug, Clone, Default)]
pub struct AlertWindow {
    recent: HashMap<Uuid, VecDeque<Seen>>,
    /// The last out-of-hours flag per user (one an hour is enough).
    night_flagged: HashMap<Uuid, OffsetDateTime>,
    /// The last own-or-colleague flag per user and recipient (one an hour is enough).
    kin_flagged: HashMap<(Uuid, Uuid), OffsetDateTime>,
}

fn is_night(at: OffsetDateTime, policy: &AlertPolicy) -> bool {
    let hk = at.to_offset(UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC));
    let h = hk.hour();
    if policy.night_from > policy.night_to {
        h >= policy.night_from || h < policy.night_to
    } else {
        h >= policy.night_from && h < policy.night_to
    }
}

impl AlertWindow {
    /// Takes one decision; returns the flags it raises. Each threshold flags once, when it is
    /// reached, not again for every access beyond it within the hour.
    pub fn observe(&mut self, s: Seen, policy: &AlertPolicy) -> Vec<Flag> {
        let hour = Duration::hours(1);
        let list = self.recent.entry(s.account).or_default();
        while list.front().is_some_and(|f| s.at - f.at >= hour) {
            list.pop_front();
        }
        let before_recipients: BTreeSet<Uuid> = list
            .iter()
            .filter(|x| !x.denied)
            .filter_map(|x| x.recipient)
            .collect();
        let before_denials = list.iter().filter(|x| x.denied).count();
        list.push_back(s);
        let mut flags = Vec::new();
        if s.denied {
            if before_denials + 1 == policy.denials_per_hour {
                flags.push(Flag::RepeatedDenials {
                    count: before_denials + 1,
                });
            }
        } else {
            if let Some(r) = s.recipient
                && !before_recipients.contains(&r)
                && before_recipients.len() + 1 == policy.recipients_per_hour
            {
                flags.push(Flag::ManyRecipients {
                    count: before_recipients.len() + 1,
                });
            }
            if is_night(s.at, policy)
                && self
                    .night_flagged
                    .get(&s.account)
                    .is_none_or(|last| s.at - *last >= hour)
            {
                self.night_flagged.insert(s.account, s.at);
                flags.push(Flag::OutOfHours);
            }
            if let (Some(relation), Some(r)) = (s.relation, s.recipient)
                && self
                    .kin_flagged
                    .get(&(s.account, r))
                    .is_none_or(|last| s.at - *last >= hour)
            {
                self.kin_flagged.insert((s.account, r), s.at);
                flags.push(match relation {
                    Relation::Own => Flag::OwnRecord,
                    Relation::Colleague(colleague) => Flag::ColleagueRecord { colleague },
                });
            }
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const A: Uuid = Uuid::from_u128(1);
    const DAY: OffsetDateTime = datetime!(2026-03-02 10:00 +08:00);

    fn read(at: OffsetDateTime, r: u128) -> Seen {
        Seen {
            at,
            account: A,
            recipient: Some(Uuid::from_u128(r)),
            denied: false,
            relation: None,
        }
    }

    #[test]
    fn thirty_recipients_in_an_hour_flag_once() {
        let p = AlertPolicy::default();
        let mut w = AlertWindow::default();
        let mut flags = Vec::new();
        for i in 0..40u128 {
            // The same recipient twice does not count twice.
            flags.extend(w.observe(read(DAY + Duration::minutes(i as i64), i), &p));
            flags.extend(w.observe(read(DAY + Duration::minutes(i as i64), i), &p));
        }
        assert_eq!(flags, vec![Flag::ManyRecipients { count: 30 }]);
        // Spread over more than an hour: no flag.
        let mut w = AlertWindow::default();
        let slow: Vec<Flag> = (0..40u128)
            .flat_map(|i| w.observe(read(DAY + Duration::minutes(3 * i as i64), i), &p))
            .collect();
        assert!(slow.is_empty(), "{slow:?}");
    }

    #[test]
    fn five_denials_in_an_hour_and_night_reads_flag() {
        let p = AlertPolicy::default();
        let mut w = AlertWindow::default();
        let denied = |m: i64| Seen {
            at: DAY + Duration::minutes(m),
            account: A,
            recipient: None,
            denied: true,
            relation: None,
        };
        let flags: Vec<Flag> = (0..6).flat_map(|m| w.observe(denied(m), &p)).collect();
        assert_eq!(flags, vec![Flag::RepeatedDenials { count: 5 }]);
        let night = datetime!(2026-03-02 23:30 +08:00);
        assert_eq!(w.observe(read(night, 1), &p), vec![Flag::OutOfHours]);
        assert!(
            w.observe(read(night + Duration::minutes(10), 2), &p)
                .is_empty(),
            "once an hour"
        );
        assert_eq!(
            w.observe(read(night + Duration::hours(2), 3), &p),
            vec![Flag::OutOfHours]
        );
        assert!(
            w.observe(read(datetime!(2026-03-03 07:00 +08:00), 4), &p)
                .is_empty()
        );
    }

    #[test]
    fn own_record_outranks_a_colleagues_and_other_providers_are_no_colleagues() {
        let (me, mate, stranger) = (A, Uuid::from_u128(2), Uuid::from_u128(3));
        let (here, there) = (Some(Uuid::from_u128(10)), Some(Uuid::from_u128(11)));
        assert_eq!(relation(me, here, &[]), None);
        assert_eq!(relation(me, here, &[(me, here)]), Some(Relation::Own));
        assert_eq!(
            relation(me, here, &[(mate, here), (me, here)]),
            Some(Relation::Own)
        );
        assert_eq!(
            relation(me, here, &[(stranger, there), (mate, here)]),
            Some(Relation::Colleague(mate))
        );
        assert_eq!(relation(me, here, &[(stranger, there)]), None);
        // An office account (no provider) is nobody's colleague, nor has any.
        assert_eq!(relation(me, None, &[(stranger, None)]), None);
    }

    #[test]
    fn reading_ones_own_or_a_colleagues_record_flags_once_an_hour_per_recipient() {
        let p = AlertPolicy::default();
        let mut w = AlertWindow::default();
        let kin = |at: OffsetDateTime, r: u128, relation: Relation, denied: bool| Seen {
            relation: Some(relation),
            denied,
            ..read(at, r)
        };
        assert_eq!(
            w.observe(kin(DAY, 1, Relation::Own, false), &p),
            vec![Flag::OwnRecord]
        );
        assert!(
            w.observe(kin(DAY + Duration::minutes(5), 1, Relation::Own, false), &p)
                .is_empty()
        );
        let mate = Uuid::from_u128(2);
        assert_eq!(
            w.observe(kin(DAY, 2, Relation::Colleague(mate), false), &p),
            vec![Flag::ColleagueRecord { colleague: mate }]
        );
        assert_eq!(
            w.observe(kin(DAY + Duration::hours(1), 1, Relation::Own, false), &p),
            vec![Flag::OwnRecord]
        );
        // A refused attempt reads nothing: the denial rules see it.
        assert!(w.observe(kin(DAY, 3, Relation::Own, true), &p).is_empty());
        assert!(w.observe(read(DAY, 4), &p).is_empty());
    }
}
