//! Login rules (SPEC 4.2): progressive delay and lock after repeated failures, session
//! lifetimes, password age.
//!
//! Failures are counted per *key*: the user name as typed (whether or not such an account
//! exists, so that throttling tells nothing about which names exist) and the client address.
//! After a few free failures each attempt must wait twice as long as the last; at
//! `lock_after` consecutive failures the key is locked for `lock_for`, and every further
//! failure locks it again. A success clears the key's count.

use time::{Duration, OffsetDateTime};

/// How failures are throttled for one kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures allowed before any delay.
    pub free_failures: u32,
    /// The longest delay between attempts.
    pub max_delay: Duration,
    /// Consecutive failures that lock the key (must be below 100: SPEC and issue).
    pub lock_after: u32,
    /// How long a lock lasts.
    pub lock_for: Duration,
    /// A count this long without a failure starts again from zero.
    pub forget_after: Duration,
}

impl ThrottlePolicy {
    /// Per user name: locked after 10 consecutive failures for 30 minutes.
    pub const USER: ThrottlePolicy = ThrottlePolicy {
        free_failures: 3,
        max_delay: Duration::seconds(60),
        lock_after: 10,
        lock_for: Duration::minutes(30),
        forget_after: Duration::hours(24),
    };

    /// Per client address: looser, as many users may share an address (a clinic's NAT).
    pub const ADDRESS: ThrottlePolicy = ThrottlePolicy {
        free_failures: 10,
        max_delay: Duration::seconds(30),
        lock_after: 50,
        lock_for: Duration::minutes(15),
        forget_after: Duration::hours(1),
    };
}

/// A key's failure record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    pub count: u32,
    pub last: Option<OffsetDateTime>,
    pub locked_until: Option<OffsetDateTime>,
}

/// Whether an attempt may be evaluated now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Too soon after the last failure: try again at `until`.
    Wait {
        until: OffsetDateTime,
    },
    /// Locked until `until` (or until an administrator unlocks).
    Locked {
        until: OffsetDateTime,
    },
}

impl Failures {
    /// The count as it stands at `now` (forgotten after a quiet period).
    fn current(&self, policy: &ThrottlePolicy, now: OffsetDateTime) -> u32 {
        match self.last {
            Some(last) if now - last < policy.forget_after => self.count,
            _ => 0,
        }
    }

    /// Whether an attempt at `now` may be evaluated.
    pub fn gate(&self, policy: &ThrottlePolicy, now: OffsetDateTime) -> Gate {
        if let Some(until) = self.locked_until
            && now < until
        {
            return Gate::Locked { until };
        }
        let count = self.current(policy, now);
        if let Some(last) = self.last
            && count >= policy.free_failures
        {
            let until = last + delay(policy, count);
            if now < until {
                return Gate::Wait { until };
            }
        }
        Gate::Open
    }

    /// The record after a failed attempt at `now`.
    pub fn after_failure(&self, policy: &ThrottlePolicy, now: OffsetDateTime) -> Failures {
        let count = self.current(policy, now).saturating_add(1);
        Failures {
            count,
            last: Some(now),
            locked_until: if count >= policy.lock_after {
                Some(now + policy.lock_for)
            } else {
                self.locked_until
            },
        }
    }
}

/// The wait after `count` failures: 1 s after the first one beyond the free ones, doubling.
fn delay(policy: &ThrottlePolicy, count: u32) -> Duration {
    let beyond = count.saturating_sub(policy.free_failures).min(20);
    let secs = 1i64 << beyond;
    Duration::seconds(secs).min(policy.max_delay)
}

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Ended after this long without a request.
    pub idle: Duration,
    /// Ended this long after login, however active.
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle: Duration::minutes(15),
            absolute: Duration::hours(12),
        }
    }
}

/// Why a session is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Idle,
    Absolute,
}

impl SessionPolicy {
    /// Whether a session created at `created` and last used at `last_seen` is still live.
    pub fn check(
        &self,
        created: OffsetDateTime,
        last_seen: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), SessionEnd> {
        if now - created >= self.absolute {
            Err(SessionEnd::Absolute)
        } else if now - last_seen >= self.idle {
            Err(SessionEnd::Idle)
        } else {
            Ok(())
        }
    }
}

/// What a password's age calls for at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAge {
    Fine,
    /// It expires at `expires`: remind the holder.
    Remind {
        expires: OffsetDateTime,
    },
    /// It expired: the holder must change it before anything else.
    Expired,
}

/// The age rule: a password set at `set_at` lasts `max_age`; the reminder starts `remind`
/// before it expires. `max_age` of zero turns the rule off.
pub fn password_age(
    set_at: OffsetDateTime,
    max_age: Duration,
    remind: Duration,
    now: OffsetDateTime,
) -> PasswordAge {
    if max_age <= Duration::ZERO {
        return PasswordAge::Fine;
    }
    let expires = set_at + max_age;
    if now >= expires {
        PasswordAge::Expired
    } else if now >= expires - remind {
        PasswordAge::Remind { expires }
    } else {
        PasswordAge::Fine
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);

    #[test]
    fn delays_grow_and_the_key_locks_before_one_hundred_failures() {
        let p = ThrottlePolicy::USER;
        let mut f = Failures::default();
        let mut now = T0;
        let mut waits = Vec::new();
        let mut locked_at = None;
        for n in 1..=100u32 {
            match f.gate(&p, now) {
                Gate::Open => {}
                Gate::Wait { until } => {
                    waits.push((until - now).whole_seconds());
                    now = until;
                }
                Gate::Locked { .. } => {
                    locked_at = Some(n);
                    break;
                }
            }
            f = f.after_failure(&p, now);
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60]);
        assert_eq!(locked_at, Some(11), "locked after the tenth failure");
        // The lock ends with time; one more failure locks again at once.
        now += p.lock_for;
        assert_eq!(f.gate(&p, now), Gate::Open);
        f = f.after_failure(&p, now);
        assert!(matches!(f.gate(&p, now), Gate::Locked { .. }));
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_period() {
        let p = ThrottlePolicy::USER;
        let mut f = Failures::default();
        for _ in 0..5 {
            f = f.after_failure(&p, T0);
        }
        assert!(matches!(f.gate(&p, T0), Gate::Wait { .. }));
        let later = T0 + p.forget_after;
        assert_eq!(f.gate(&p, later), Gate::Open);
        assert_eq!(f.after_failure(&p, later).count, 1);
    }

    #[test]
    fn sessions_end_when_idle_or_old() {
        let p = SessionPolicy::default();
        assert_eq!(p.check(T0, T0, T0 + Duration::minutes(14)), Ok(()));
        assert_eq!(
            p.check(T0, T0, T0 + Duration::minutes(15)),
            Err(SessionEnd::Idle)
        );
        let late = T0 + Duration::hours(12);
        assert_eq!(
            p.check(T0, late - Duration::minutes(1), late),
            Err(SessionEnd::Absolute)
        );
    }

    #[test]
    fn password_age_reminds_then_expires() {
        let max = Duration::days(90);
        let remind = Duration::days(14);
        assert_eq!(password_age(T0, max, remind, T0), PasswordAge::Fine);
        assert_eq!(
            password_age(T0, max, remind, T0 + Duration::days(80)),
            PasswordAge::Remind { expires: T0 + max }
        );
        assert_eq!(
            password_age(T0, max, remind, T0 + max),
            PasswordAge::Expired
        );
        assert_eq!(
            password_age(T0, Duration::ZERO, remind, T0 + Duration::days(9999)),
            PasswordAge::Fine
        );
    }
}
