//! Alert rules (SPEC 3.9) over the stream of access decisions, in the order the audit log
//! holds them: many distinct recipients read by one user within an hour, repeated denials for
//! one user within an hour, reads out of hours (Hong Kong time), and reads of the reader's own
//! record or a colleague's (the recipient's identity document is that of the reader's account
//! or of another account at the reader's provider). Access without a care
//! episode is flagged where it is decided. Pure: the window is fed entries and answers flags;
//! time comes from the entries.

use std::collections::{HashMap, VecDeque};

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

crate::coded_enum! {
    /// Where an alert stands: raised, or reviewed by a privacy officer (with a note).
    pub enum AlertStatus {
        Open = "open";
        Reviewed = "reviewed";
    }
}

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

/// What the rules keep of one user's last hour: only what a threshold can still reach.
#[derive(Debug, Clone)]
struct Recent {
    /// The latest allowed read of each recipient, oldest first: at most
    /// `recipients_per_hour` of them. A flag is raised when the count *reaches* the threshold,
    /// so beyond that many the older ones can never matter.
    reads: VecDeque<(OffsetDateTime, Uuid)>,
    /// The latest refusals, oldest first: at most `denials_per_hour`.
    denials: VecDeque<OffsetDateTime>,
    /// The last out-of-hours flag (one an hour is enough).
    night_flagged: Option<OffsetDateTime>,
    /// The last own-or-colleague flag per recipient (one an hour is enough).
    kin_flagged: HashMap<Uuid, OffsetDateTime>,
    /// The user's latest decision.
    last: OffsetDateTime,
}

impl Recent {
    fn new(at: OffsetDateTime) -> Recent {
        Recent {
            reads: VecDeque::new(),
            denials: VecDeque::new(),
            night_flagged: None,
            kin_flagged: HashMap::new(),
            last: at,
        }
    }
}

/// Users are swept for idleness at most this often (in decisions), and at least as seldom as
/// there are users, so that a sweep costs a constant per decision.
const SWEEP_EVERY: usize = 64;

/// The last hour of decisions per user, in memory and work bounded per decision whatever the
/// history's length (issue 22): each user keeps at most `recipients_per_hour` recipients and
/// `denials_per_hour` refusal times, and users idle for an hour are forgotten.
///
/// For decisions whose times never go backwards it flags exactly as the whole history would
/// (property-tested against that reference below); entries are committed in about the order
/// their times were taken, a few milliseconds apart at worst.
#[derive(Debug, Clone, Default)]
pub struct AlertWindow {
    users: HashMap<Uuid, Recent>,
    latest: Option<OffsetDateTime>,
    since_sweep: usize,
    /// Decisions until the next sweep: the users left after the last one (at least
    /// [`SWEEP_EVERY`]), so that a sweep's cost is spread over as many decisions.
    sweep_after: usize,
    work: u64,
}

fn is_night(at: OffsetDateTime, policy: &AlertPolicy) -> bool {
    let hk = crate::clock::in_hong_kong(at);
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
        self.work += 1;
        self.sweep_if_due(s.at);
        let user = self
            .users
            .entry(s.account)
            .or_insert_with(|| Recent::new(s.at));
        user.last = user.last.max(s.at);
        while user.reads.front().is_some_and(|(t, _)| s.at - *t >= hour) {
            user.reads.pop_front();
            self.work += 1;
        }
        while user.denials.front().is_some_and(|t| s.at - *t >= hour) {
            user.denials.pop_front();
            self.work += 1;
        }
        let mut flags = Vec::new();
        if s.denied {
            let count = user.denials.len() + 1;
            if count == policy.denials_per_hour {
                flags.push(Flag::RepeatedDenials { count });
            }
            user.denials.push_back(s.at);
            if user.denials.len() > policy.denials_per_hour.max(1) {
                user.denials.pop_front();
            }
            return flags;
        }
        if let Some(r) = s.recipient {
            let seen_at = user.reads.iter().position(|(_, x)| *x == r);
            self.work += seen_at.map_or(user.reads.len(), |i| i + 1) as u64;
            match seen_at {
                Some(i) => {
                    user.reads.remove(i);
                }
                None if user.reads.len() + 1 == policy.recipients_per_hour => {
                    flags.push(Flag::ManyRecipients {
                        count: user.reads.len() + 1,
                    });
                }
                None => {}
            }
            user.reads.push_back((s.at, r));
            if user.reads.len() > policy.recipients_per_hour.max(1) {
                user.reads.pop_front();
            }
        }
        if is_night(s.at, policy) && user.night_flagged.is_none_or(|last| s.at - last >= hour) {
            user.night_flagged = Some(s.at);
            flags.push(Flag::OutOfHours);
        }
        if let (Some(relation), Some(r)) = (s.relation, s.recipient)
            && user
                .kin_flagged
                .get(&r)
                .is_none_or(|last| s.at - *last >= hour)
        {
            user.kin_flagged.insert(r, s.at);
            flags.push(match relation {
                Relation::Own => Flag::OwnRecord,
                Relation::Colleague(colleague) => Flag::ColleagueRecord { colleague },
            });
        }
        flags
    }

    /// Forgets users idle for an hour and own-or-colleague marks an hour old (both behave as
    /// absent ones would). Runs after as many decisions as there were users after the last
    /// sweep: amortised, a constant per decision.
    fn sweep_if_due(&mut self, at: OffsetDateTime) {
        let latest = self.latest.map_or(at, |l| l.max(at));
        self.latest = Some(latest);
        self.since_sweep += 1;
        if self.since_sweep < self.sweep_after.max(SWEEP_EVERY) {
            return;
        }
        self.since_sweep = 0;
        let hour = Duration::hours(1);
        let mut steps = 0u64;
        self.users.retain(|_, u| {
            steps += 1 + u.kin_flagged.len() as u64;
            u.kin_flagged.retain(|_, t| latest - *t < hour);
            latest - u.last < hour
        });
        self.sweep_after = self.users.len();
        self.work += steps;
    }

    /// Elementary steps taken so far (decisions, expiries, positions compared, users swept):
    /// what the tests bound per decision.
    pub fn work(&self) -> u64 {
        self.work
    }

    /// How many users, times and marks are held: what the tests bound in memory.
    pub fn kept(&self) -> usize {
        self.users
            .values()
            .map(|u| 1 + u.reads.len() + u.denials.len() + u.kin_flagged.len())
            .sum()
    }
}

/// The scanner's memory: its window and position.
#[derive(Debug, Default)]
pub struct ScanState {
    /// The recent entries the rules look back on.
    pub window: AlertWindow,
    /// The next sequence number to scan, once known.
    pub next: Option<u64>,
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

    mod reference {
        use std::collections::{BTreeSet, HashMap, VecDeque};

        use time::{Duration, OffsetDateTime};
        use uuid::Uuid;

        use super::super::{AlertPolicy, Flag, Relation, Seen, is_night};

        /// The rules over the whole last hour, as they were first written: the reference.
        #[derive(Debug, Clone, Default)]
        pub struct Reference {
            recent: HashMap<Uuid, VecDeque<Seen>>,
            /// The last out-of-hours flag per user (one an hour is enough).
            night_flagged: HashMap<Uuid, OffsetDateTime>,
            /// The last own-or-colleague flag per user and recipient (one an hour is enough).
            kin_flagged: HashMap<(Uuid, Uuid), OffsetDateTime>,
        }

        impl Reference {
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
    }

    #[test]
    fn the_work_per_decision_is_bounded_whatever_the_history() {
        let p = AlertPolicy::default();
        let bound = (p.recipients_per_hour + p.denials_per_hour + 8) as u64;
        for n in [1_000u64, 100_000] {
            let mut w = AlertWindow::default();
            for i in 0..n {
                // One busy user, a decision every 10 ms (all within the hour), 5,000 patients.
                let mut s = read(
                    DAY + Duration::milliseconds(10 * i as i64),
                    u128::from(i % 5_000),
                );
                s.denied = i % 7 == 0;
                w.observe(s, &p);
            }
            assert!(w.work() <= n * bound, "{n}: {} steps", w.work());
            assert!(
                w.kept() <= 1 + p.recipients_per_hour + p.denials_per_hour,
                "{}",
                w.kept()
            );
        }
    }

    #[test]
    fn idle_users_are_forgotten() {
        let p = AlertPolicy::default();
        let mut w = AlertWindow::default();
        for i in 0..100_000u128 {
            let s = Seen {
                account: Uuid::from_u128(1_000 + i),
                ..read(DAY + Duration::seconds(i as i64), i)
            };
            w.observe(s, &p);
        }
        // Only the last hour's users (3,600 at one a second), and those one sweep behind.
        assert!(w.kept() < 20_000, "{}", w.kept());
    }

    proptest::proptest! {
        #[test]
        fn the_window_flags_as_the_whole_history_would(
            steps in proptest::collection::vec((0u128..3, 0u128..12, proptest::bool::ANY, 0u8..4, 0i64..900), 1..400),
            recipients_per_hour in 1usize..6,
            denials_per_hour in 1usize..5,
        ) {
            let p = AlertPolicy { recipients_per_hour, denials_per_hour, ..AlertPolicy::default() };
            let mut fast = AlertWindow::default();
            let mut reference = reference::Reference::default();
            let mut at = DAY;
            for (account, recipient, denied, relation, gap) in steps {
                at += Duration::seconds(gap * 8);
                let s = Seen {
                    at,
                    account: Uuid::from_u128(account),
                    recipient: (recipient < 10).then(|| Uuid::from_u128(100 + recipient)),
                    denied,
                    relation: match relation {
                        0 => Some(Relation::Own),
                        1 => Some(Relation::Colleague(Uuid::from_u128(99))),
                        _ => None,
                    },
                };
                proptest::prop_assert_eq!(fast.observe(s, &p), reference.observe(s, &p));
            }
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
