//! The disclosure ledger (SPEC 3.11): disclosures outside care (a court order, the police, a
//! coroner, approved research) recorded by the office's privacy officers. The recipient sees
//! each in their access log, unless a withholding period is recorded, and then from the
//! moment it ends.

use time::{Date, Duration, OffsetDateTime};

crate::coded_enum! {
    /// The legal basis of a disclosure.
    pub enum LegalBasis {
        CourtOrder = "court-order";
        Police = "police";
        Coroner = "coroner";
        Research = "research";
    }
}

/// The audit action of a recorded disclosure; the recipient's log shows such an entry only
/// once its disclosure is no longer withheld.
pub const DISCLOSURE_ACTION: &str = "disclosure.record";

/// The longest withholding period that may be recorded.
pub const WITHHOLD_AT_MOST: Duration = Duration::days(3_660);

/// Whether the recipient sees a disclosure at `now`: none withheld, or the period ended.
pub fn visible(withhold_until: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    withhold_until.is_none_or(|until| now >= until)
}

/// Why a disclosure's dates are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatesRefused {
    /// Disclosed after today (Hong Kong's date): the ledger records what happened.
    DisclosedInTheFuture,
    /// A withholding period that has already ended, or longer than [`WITHHOLD_AT_MOST`].
    WithholdingNotAhead,
}

/// Checks a disclosure's dates at `now`.
pub fn check_dates(
    disclosed_on: Date,
    withhold_until: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(), DatesRefused> {
    if disclosed_on > crate::clock::hong_kong_date(now) {
        return Err(DatesRefused::DisclosedInTheFuture);
    }
    if let Some(until) = withhold_until
        && (until <= now || until > now + WITHHOLD_AT_MOST)
    {
        return Err(DatesRefused::WithholdingNotAhead);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn a_withheld_disclosure_is_seen_exactly_when_the_period_ends() {
        let until = datetime!(2026-06-01 00:00 UTC);
        assert!(!visible(Some(until), until - Duration::seconds(1)));
        assert!(visible(Some(until), until));
        assert!(visible(None, until));
    }

    #[test]
    fn dates_are_checked() {
        let now = datetime!(2026-03-10 17:00 UTC); // 01:00 on the 11th in Hong Kong
        assert_eq!(check_dates(date!(2026 - 03 - 11), None, now), Ok(()));
        assert_eq!(
            check_dates(date!(2026 - 03 - 12), None, now),
            Err(DatesRefused::DisclosedInTheFuture)
        );
        assert_eq!(
            check_dates(date!(2026 - 03 - 01), Some(now), now),
            Err(DatesRefused::WithholdingNotAhead)
        );
        assert_eq!(
            check_dates(
                date!(2026 - 03 - 01),
                Some(now + WITHHOLD_AT_MOST + Duration::seconds(1)),
                now
            ),
            Err(DatesRefused::WithholdingNotAhead)
        );
        assert_eq!(
            check_dates(date!(2026 - 03 - 01), Some(now + Duration::days(90)), now),
            Ok(())
        );
        for b in LegalBasis::ALL {
            assert_eq!(LegalBasis::parse(b.code()), Some(b));
        }
    }
}
