//! Sharing consent rules (SPEC 3.4).
//!
//! For now: the consent regime, a deployment-wide setting that changes what a sharing consent
//! is needed for.

use std::fmt;
use std::str::FromStr;

/// Which version of the sharing-consent rules is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Regime {
    /// The rules the seed describes: a sharing consent is needed to view and to deposit.
    #[default]
    Y2016,
    /// The 2025 amendment: joining lets every participating provider deposit; a sharing consent
    /// is needed only to view, and new consents carry no type.
    Y2025,
}

impl Regime {
    /// The configuration spelling: `"2016"` or `"2025"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Regime::Y2016 => "2016",
            Regime::Y2025 => "2025",
        }
    }

    /// Whether depositing a record needs the recipient's sharing consent with the provider.
    pub fn consent_needed_to_deposit(self) -> bool {
        matches!(self, Regime::Y2016)
    }
}

impl fmt::Display for Regime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A consent regime name that is neither `2016` nor `2025`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown consent regime {0:?}: expected \"2016\" or \"2025\"")]
pub struct UnknownRegime(pub String);

impl FromStr for Regime {
    type Err = UnknownRegime;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "2016" => Ok(Regime::Y2016),
            "2025" => Ok(Regime::Y2025),
            other => Err(UnknownRegime(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regime_parses_both_spellings_and_refuses_others() {
        let check = |input: &str, expected: Result<Regime, UnknownRegime>| {
            assert_eq!(input.parse::<Regime>(), expected, "input {input:?}");
        };
        check("2016", Ok(Regime::Y2016));
        check(" 2025 ", Ok(Regime::Y2025));
        check("2020", Err(UnknownRegime("2020".into())));
        check("", Err(UnknownRegime(String::new())));
    }

    #[test]
    fn regime_round_trips_and_defaults_to_2016() {
        for r in [Regime::Y2016, Regime::Y2025] {
            assert_eq!(r.as_str().parse::<Regime>(), Ok(r));
        }
        assert_eq!(Regime::default(), Regime::Y2016);
        assert!(Regime::Y2016.consent_needed_to_deposit());
        assert!(!Regime::Y2025.consent_needed_to_deposit());
    }
}
