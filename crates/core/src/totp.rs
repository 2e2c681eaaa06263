//! Time-based one-time passwords (RFC 6238, HMAC-SHA1, 30-second steps, 6 digits), the security
//! token of SPEC 4.2. A code is accepted in the current step or one step either side, and only
//! once: the caller stores the step it was accepted in and passes it back.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;

/// The HOTP value (RFC 4226) of `counter`, `digits` long.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    bin % 10u32.pow(digits)
}

/// The step a Unix time falls in.
pub fn step_of(unix_seconds: u64) -> u64 {
    unix_seconds / STEP
}

/// Why a code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("the code is not six digits")]
    Format,
    #[error("the code is wrong or expired")]
    Wrong,
    #[error("the code was used already")]
    Replayed,
}

/// Checks `code` at `unix_seconds`; `last_used` is the step of the last accepted code. Returns
/// the step to store on success.
pub fn verify(
    secret: &[u8],
    code: &str,
    unix_seconds: u64,
    last_used: Option<u64>,
) -> Result<u64, TotpError> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Format);
    }
    let value: u32 = code.parse().map_err(|_| TotpError::Format)?;
    let now = step_of(unix_seconds);
    for step in [now.saturating_sub(1), now, now + 1] {
        if hotp(secret, step, DIGITS) == value {
            // A step at or before the last accepted one is a replay (including a code from the
            // previous step after a newer one was used).
            if last_used.is_some_and(|last| step <= last) {
                return Err(TotpError::Replayed);
            }
            return Ok(step);
        }
    }
    Err(TotpError::Wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_test_vectors() {
        // Appendix B, SHA1, 8 digits.
        for (time, expected) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(SECRET, step_of(time), 8), expected, "{time}");
        }
    }

    #[test]
    fn accepts_one_step_either_side_once() {
        let t = 1_234_567_890;
        let code = format!("{:06}", hotp(SECRET, step_of(t), DIGITS));
        let step = verify(SECRET, &code, t, None).unwrap();
        assert_eq!(
            verify(SECRET, &code, t, Some(step)),
            Err(TotpError::Replayed)
        );
        assert_eq!(
            verify(SECRET, &code, t + 30, None),
            Ok(step),
            "one step late"
        );
        assert_eq!(
            verify(SECRET, &code, t - 30, None),
            Ok(step),
            "one step early"
        );
        assert_eq!(verify(SECRET, &code, t + 61, None), Err(TotpError::Wrong));
        assert_eq!(verify(SECRET, "12345", t, None), Err(TotpError::Format));
        assert_eq!(verify(SECRET, "12a456", t, None), Err(TotpError::Format));
        // An older code after a newer one was used is a replay too.
        let older = format!("{:06}", hotp(SECRET, step_of(t) - 1, DIGITS));
        assert_eq!(
            verify(SECRET, &older, t, Some(step)),
            Err(TotpError::Replayed)
        );
    }
}
