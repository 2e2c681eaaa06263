//! Care episodes (SPEC 3.5): a provider declares that a recipient is under its care (an
//! attendance, admission, appointment or referral) at one of its locations. The episode covers
//! access from a window before its start (preparing for a visit) to a window after its end
//! (follow-up); an episode not yet closed covers until it is.

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

/// How far around an episode access is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CareWindow {
    pub before: Duration,
    pub after: Duration,
}

impl Default for CareWindow {
    fn default() -> Self {
        CareWindow {
            before: Duration::days(7),
            after: Duration::days(30),
        }
    }
}

/// An episode as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Episode {
    pub id: Uuid,
    pub hcp: Uuid,
    pub start: OffsetDateTime,
    /// When it was closed (none: still open).
    pub end: Option<OffsetDateTime>,
}

impl Episode {
    /// Whether the episode covers `now` with `window` around it.
    pub fn covers(&self, now: OffsetDateTime, window: CareWindow) -> bool {
        now >= self.start - window.before && self.end.is_none_or(|end| now <= end + window.after)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_window_reaches_before_and_after() {
        let w = CareWindow::default();
        let start = datetime!(2026-03-10 09:00 UTC);
        let e = Episode {
            id: Uuid::nil(),
            hcp: Uuid::nil(),
            start,
            end: Some(datetime!(2026-03-12 09:00 UTC)),
        };
        assert!(e.covers(start - Duration::days(7), w));
        assert!(!e.covers(start - Duration::days(7) - Duration::seconds(1), w));
        assert!(e.covers(datetime!(2026-04-11 09:00 UTC), w));
        assert!(!e.covers(datetime!(2026-04-11 09:00:01 UTC), w));
        let open = Episode { end: None, ..e };
        assert!(open.covers(datetime!(2030-01-01 00:00 UTC), w));
        for k in EpisodeKind::ALL {
            assert_eq!(EpisodeKind::parse(k.code()), Some(k));
        }
    }
}
