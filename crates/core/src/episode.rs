//! Care episodes (SPEC 3.5): a provider declares that a recipient is under its care (an
//! attendance, admission, appointment or referral) at one of its locations. The episode covers
//! access from a window before its start (preparing for a visit; for an appointment booked
//! ahead, before its planned start) to a window after its end (follow-up).
//!
//! Care ends even when nobody closes the episode: its end is the end recorded when it was
//! closed, else the planned end (pushed back by activity after it), else a period of
//! inactivity (default 90 days) after its last activity, which is a deposit by the provider
//! or a recorded attendance, never a read. Computed here at each decision, so that no batch
//! job can be late and a forgotten episode never gives a provider access for life.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

crate::coded_enum! {
    /// The kinds of episode.
    pub enum EpisodeKind {
        Attendance = "attendance";
        Admission = "admission";
        Appointment = "appointment";
        Referral = "referral";
    }
}

/// How far around an episode access is allowed, and when an episode nobody closed ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CareWindow {
    pub before: Duration,
    pub after: Duration,
    /// An episode with no recorded or planned end ends this long after its last activity.
    pub idle: Duration,
}

impl Default for CareWindow {
    fn default() -> Self {
        CareWindow {
            before: Duration::days(7),
            after: Duration::days(30),
            idle: Duration::days(90),
        }
    }
}

/// How far ahead an episode may be planned, and how far back one may be recorded late.
pub const PLAN_AHEAD: Duration = Duration::days(366);
pub const RECORD_LATE: Duration = Duration::days(30);

/// An episode as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Episode {
    pub id: Uuid,
    pub hcp: Uuid,
    /// When it started, or is planned to.
    pub start: OffsetDateTime,
    /// When it was closed (none: not closed).
    pub end: Option<OffsetDateTime>,
    /// When it is planned to end, if the provider said.
    pub planned_end: Option<OffsetDateTime>,
    /// The provider's last deposit or recorded attendance in it (none: none yet).
    pub last_activity: Option<OffsetDateTime>,
}

impl Episode {
    /// When the episode ends (or ended), and what ends it: the close; else the earlier of
    /// its planned end (pushed back by activity after it) and `idle` after its last activity
    /// (or start). A plan can shorten an episode, never keep an idle one running.
    pub fn ending(&self, idle: Duration) -> (OffsetDateTime, Ending) {
        let active = self.last_activity.map_or(self.start, |a| a.max(self.start));
        let idle_end = active + idle;
        match (self.end, self.planned_end) {
            (Some(end), _) => (end, Ending::Closed),
            (None, Some(planned)) if planned.max(active) < idle_end => {
                (planned.max(active), Ending::Plan)
            }
            (None, _) => (idle_end, Ending::Inactivity),
        }
    }

    /// When the episode ends (or ended) ([`Episode::ending`]).
    pub fn ends_at(&self, idle: Duration) -> OffsetDateTime {
        self.ending(idle).0
    }

    /// Whether activity (a deposit, an attendance) is recorded in it at `now`: it has started
    /// and has not ended. An episode in its follow-up window, or one still ahead, takes none:
    /// activity there would revive an ended episode or run one that has not begun.
    pub fn takes_activity(&self, now: OffsetDateTime, idle: Duration) -> bool {
        self.start <= now && self.is_open(now, idle)
    }

    /// Whether the episode is still running at `now`: not ended (closed, planned or idle).
    /// A planned episode not yet started is running.
    pub fn is_open(&self, now: OffsetDateTime, idle: Duration) -> bool {
        now < self.ends_at(idle)
    }

    /// Whether the episode covers `now` with `window` around it. An episode closed before it
    /// started (an appointment cancelled) had no care to follow up: it covers nothing after
    /// it was closed.
    pub fn covers(&self, now: OffsetDateTime, window: CareWindow) -> bool {
        let last = match self.end {
            Some(end) if end < self.start => end,
            _ => self.ends_at(window.idle) + window.after,
        };
        now >= self.start - window.before && now <= last
    }
}

/// What ends an episode ([`Episode::ending`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Closed,
    Plan,
    Inactivity,
}

/// The episode of `hcp` that takes activity at `now` ([`Episode::takes_activity`]), the
/// latest started if several.
pub fn active_episode(
    episodes: &[Episode],
    hcp: Uuid,
    now: OffsetDateTime,
    idle: Duration,
) -> Option<Uuid> {
    episodes
        .iter()
        .filter(|e| e.hcp == hcp && e.takes_activity(now, idle))
        .max_by_key(|e| e.start)
        .map(|e| e.id)
}

/// Why a planned episode's times are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanRefused {
    /// The start is more than [`PLAN_AHEAD`] ahead.
    StartTooFarAhead,
    /// The start is more than [`RECORD_LATE`] ago.
    StartTooLongAgo,
    /// The planned end is not after the start, or not after now.
    EndNotAfterStart,
    /// The planned end is more than [`PLAN_AHEAD`] after the start.
    EndTooFarAhead,
}

/// Checks the times of an episode being opened at `now`: a start (now when not given) within
/// [`RECORD_LATE`] before now and [`PLAN_AHEAD`] after it, and a planned end after both the
/// start and now, within [`PLAN_AHEAD`] of the start. Answers the start.
pub fn plan(
    now: OffsetDateTime,
    start: Option<OffsetDateTime>,
    planned_end: Option<OffsetDateTime>,
) -> Result<OffsetDateTime, PlanRefused> {
    let start = start.unwrap_or(now);
    if start > now + PLAN_AHEAD {
        return Err(PlanRefused::StartTooFarAhead);
    }
    if start < now - RECORD_LATE {
        return Err(PlanRefused::StartTooLongAgo);
    }
    if let Some(end) = planned_end {
        if end <= start || end <= now {
            return Err(PlanRefused::EndNotAfterStart);
        }
        if end > start + PLAN_AHEAD {
            return Err(PlanRefused::EndTooFarAhead);
        }
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;

    fn episode(start: OffsetDateTime) -> Episode {
        Episode {
            id: Uuid::nil(),
            hcp: Uuid::nil(),
            start,
            end: None,
            planned_end: None,
            last_activity: None,
        }
    }

    #[test]
    fn the_window_reaches_before_and_after() {
        let w = CareWindow::default();
        let start = datetime!(2026-03-10 09:00 UTC);
        let e = Episode {
            end: Some(datetime!(2026-03-12 09:00 UTC)),
            ..episode(start)
        };
        assert!(e.covers(start - Duration::days(7), w));
        assert!(!e.covers(start - Duration::days(7) - Duration::seconds(1), w));
        assert!(e.covers(datetime!(2026-04-11 09:00 UTC), w));
        assert!(!e.covers(datetime!(2026-04-11 09:00:01 UTC), w));
        for k in EpisodeKind::ALL {
            assert_eq!(EpisodeKind::parse(k.code()), Some(k));
        }
    }

    #[test]
    fn an_episode_nobody_closes_ends_ninety_days_after_its_last_activity() {
        let w = CareWindow::default();
        let start = datetime!(2026-03-10 09:00 UTC);
        let e = episode(start);
        let end = start + Duration::days(90);
        assert_eq!(e.ends_at(w.idle), end);
        assert!(e.is_open(end - Duration::seconds(1), w.idle));
        assert!(!e.is_open(end, w.idle));
        assert!(e.covers(end + Duration::days(30), w));
        assert!(!e.covers(end + Duration::days(30) + Duration::seconds(1), w));
        // A deposit on day 60 keeps it going to day 150.
        let active = Episode {
            last_activity: Some(start + Duration::days(60)),
            ..e
        };
        assert_eq!(active.ends_at(w.idle), start + Duration::days(150));
        // Activity recorded before a planned start counts from the start.
        let early = Episode {
            last_activity: Some(start - Duration::days(2)),
            ..e
        };
        assert_eq!(early.ends_at(w.idle), end);
    }

    #[test]
    fn a_planned_start_opens_the_window_seven_days_before_it() {
        let w = CareWindow::default();
        let now = datetime!(2026-03-10 09:00 UTC);
        let next_week = now + Duration::days(7);
        let e = episode(next_week);
        assert!(e.covers(now, w));
        assert!(!e.covers(now - Duration::seconds(1), w));
        assert!(e.is_open(now, w.idle));
    }

    #[test]
    fn a_planned_end_is_the_end_unless_activity_goes_past_it_and_a_close_is_final() {
        let w = CareWindow::default();
        let start = datetime!(2026-03-10 09:00 UTC);
        let planned = Episode {
            planned_end: Some(start + Duration::days(3)),
            ..episode(start)
        };
        assert_eq!(planned.ends_at(w.idle), start + Duration::days(3));
        let stayed = Episode {
            last_activity: Some(start + Duration::days(5)),
            ..planned
        };
        assert_eq!(stayed.ends_at(w.idle), start + Duration::days(5));
        // A plan far ahead does not keep an idle episode running: inactivity ends it first.
        let far = Episode {
            planned_end: Some(start + Duration::days(300)),
            ..episode(start)
        };
        assert_eq!(
            far.ending(w.idle),
            (start + Duration::days(90), Ending::Inactivity)
        );
        assert_eq!(planned.ending(w.idle).1, Ending::Plan);
        let closed = Episode {
            end: Some(start + Duration::days(1)),
            ..stayed
        };
        assert_eq!(closed.ends_at(w.idle), start + Duration::days(1));
        // An appointment cancelled before it started covers nothing after the cancellation.
        let cancelled = Episode {
            end: Some(start - Duration::days(2)),
            ..episode(start)
        };
        assert!(cancelled.covers(start - Duration::days(3), w));
        assert!(!cancelled.covers(start - Duration::days(2) + Duration::seconds(1), w));
        assert!(!cancelled.covers(start, w));
    }

    #[test]
    fn only_a_started_running_episode_takes_activity() {
        let w = CareWindow::default();
        let start = datetime!(2026-03-10 09:00 UTC);
        let hcp = Uuid::from_u128(7);
        let ended = Episode {
            id: Uuid::from_u128(1),
            hcp,
            ..episode(start)
        };
        let ahead = Episode {
            id: Uuid::from_u128(2),
            hcp,
            ..episode(start + Duration::days(100))
        };
        // Day 95: the first ended on day 90 (still in its follow-up window), the second is
        // ahead: neither takes the deposit.
        let day95 = start + Duration::days(95);
        assert!(ended.covers(day95, w) && !ended.takes_activity(day95, w.idle));
        assert!(ahead.covers(day95, w) && !ahead.takes_activity(day95, w.idle));
        assert_eq!(active_episode(&[ended, ahead], hcp, day95, w.idle), None);
        let day50 = start + Duration::days(50);
        assert_eq!(
            active_episode(&[ended, ahead], hcp, day50, w.idle),
            Some(ended.id)
        );
        assert_eq!(
            active_episode(&[ended], Uuid::from_u128(8), day50, w.idle),
            None,
            "another provider's"
        );
    }

    #[test]
    fn plans_are_bounded() {
        let now = datetime!(2026-03-10 09:00 UTC);
        assert_eq!(plan(now, None, None), Ok(now));
        assert_eq!(
            plan(now, Some(now + PLAN_AHEAD), None),
            Ok(now + PLAN_AHEAD)
        );
        assert_eq!(
            plan(now, Some(now + PLAN_AHEAD + Duration::seconds(1)), None),
            Err(PlanRefused::StartTooFarAhead)
        );
        assert_eq!(
            plan(now, Some(now - RECORD_LATE - Duration::seconds(1)), None),
            Err(PlanRefused::StartTooLongAgo)
        );
        assert_eq!(
            plan(now, None, Some(now)),
            Err(PlanRefused::EndNotAfterStart)
        );
        let later = now + Duration::days(10);
        assert_eq!(
            plan(now, Some(later), Some(later - Duration::days(1))),
            Err(PlanRefused::EndNotAfterStart)
        );
        assert_eq!(
            plan(now, None, Some(now + PLAN_AHEAD + Duration::seconds(1))),
            Err(PlanRefused::EndTooFarAhead)
        );
        assert_eq!(
            plan(now, Some(later), Some(later + Duration::days(2))),
            Ok(later)
        );
    }

    proptest! {
        /// Reads are not activity, so nothing but the episode's own times moves its end; and
        /// an episode never covers a moment after its end plus the window.
        #[test]
        fn the_end_never_precedes_the_start_and_bounds_the_cover(
            start_days in -400i64..400,
            end in prop::option::of(0i64..200),
            planned in prop::option::of(1i64..200),
            activity in prop::option::of(-10i64..300),
            probe in -500i64..900,
        ) {
            let w = CareWindow::default();
            let base = datetime!(2026-03-10 09:00 UTC);
            let start = base + Duration::days(start_days);
            let e = Episode {
                id: Uuid::nil(),
                hcp: Uuid::nil(),
                start,
                end: end.map(|d| start + Duration::days(d)),
                planned_end: planned.map(|d| start + Duration::days(d)),
                last_activity: activity.map(|d| start + Duration::days(d)),
            };
            let ends = e.ends_at(w.idle);
            prop_assert!(ends >= start);
            let at = base + Duration::days(probe);
            if e.covers(at, w) {
                prop_assert!(at >= start - w.before && at <= ends + w.after);
            }
        }
    }
}
