//! The roles of provider staff (SPEC 3.6): the 13 professional groups of the Ordinance, and the
//! non-professional roles.

crate::coded_enum! {
    /// A role a provider's user holds.
    #[derive(PartialOrd, Ord)]
    pub enum Role {
        Doctor = "doctor", "Doctor", "醫生";
        Dentist = "dentist", "Dentist", "牙醫";
        DentalHygienist = "dental-hygienist", "Dental hygienist", "牙齒衞生員";
        ChineseMedicinePractitioner = "chinese-medicine-practitioner", "Chinese medicine practitioner", "中醫";
        Nurse = "nurse", "Nurse", "護士";
        Midwife = "midwife", "Midwife", "助產士";
        Pharmacist = "pharmacist", "Pharmacist", "藥劑師";
        Physiotherapist = "physiotherapist", "Physiotherapist", "物理治療師";
        OccupationalTherapist = "occupational-therapist", "Occupational therapist", "職業治療師";
        Optometrist = "optometrist", "Optometrist", "視光師";
        Radiographer = "radiographer", "Radiographer", "放射技師";
        MedicalLaboratoryTechnologist = "medical-laboratory-technologist", "Medical laboratory technologist", "醫務化驗師";
        Chiropractor = "chiropractor", "Chiropractor", "脊醫";
        /// Registers patients, captures consent, opens care episodes; sees demographics only.
        RegistrationStaff = "registration-staff", "Patient registration staff", "病人登記職員";
        /// Manages the provider's accounts; sees no clinical data.
        UserAdministrator = "user-administrator", "User administrator", "帳戶管理人員";
    }
}

impl Role {
    /// Whether the role is one of the 13 professional groups (and so carries a professional
    /// registration number).
    pub fn is_professional(self) -> bool {
        !matches!(self, Role::RegistrationStaff | Role::UserAdministrator)
    }

    /// Whether the role is enabled by default (dental hygienist and chiropractor are defined
    /// but disabled, as in the Ordinance's schedule).
    pub fn enabled_by_default(self) -> bool {
        !matches!(self, Role::DentalHygienist | Role::Chiropractor)
    }
}

/// Why a professional registration number is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a professional registration number is 3 to 20 letters, digits, hyphens or slashes")]
pub struct RegistrationNumberError;

/// Checks and normalises a professional registration number (upper case, no spaces). The
/// per-profession formats come with accounts (configurable patterns); this is the common shape.
pub fn registration_number(input: &str) -> Result<String, RegistrationNumberError> {
    let n: String = input
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect();
    let ok = (3..=20).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '/')
        && n.chars().any(|c| c.is_ascii_digit());
    if ok {
        Ok(n)
    } else {
        Err(RegistrationNumberError)
    }
}

/// The shapes a profession's registration numbers take, checked after normalisation by
/// [`registration_number`]. A pattern is a sequence of `#` (a digit), `@` (a letter) and
/// literal characters; a profession may have several, separated by `|`. The defaults follow
/// the boards' published numbering as far as it is public; operators override them in
/// configuration (`registration_number_patterns`) when a board changes its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationPatterns(std::collections::BTreeMap<&'static str, Vec<String>>);

impl Default for RegistrationPatterns {
    fn default() -> Self {
        let defaults: [(Role, &str); 13] = [
            (Role::Doctor, "M#####"),
            (Role::Dentist, "D#####"),
            (Role::DentalHygienist, "DH####|DH#####"),
            (Role::ChineseMedicinePractitioner, "######|L######"),
            (Role::Nurse, "RN######|EN######|RN#####|EN#####"),
            (Role::Midwife, "MW#####|MW######"),
            (Role::Pharmacist, "P####|P#####"),
            (Role::Physiotherapist, "PT#####|PT######"),
            (Role::OccupationalTherapist, "OT#####|OT######"),
            (Role::Optometrist, "OP#####|OP######"),
            (Role::Radiographer, "MR#####|MR######|DR#####|DR######"),
            (Role::MedicalLaboratoryTechnologist, "MT#####|MT######"),
            (Role::Chiropractor, "CH####|CH#####"),
        ];
        let mut map = std::collections::BTreeMap::new();
        for (role, patterns) in defaults {
            map.insert(role.code(), split_patterns(patterns));
        }
        RegistrationPatterns(map)
    }
}

fn split_patterns(text: &str) -> Vec<String> {
    text.split('|')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether `number` (normalised) has the shape of `pattern`.
fn fits(pattern: &str, number: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), number.chars().collect());
    p.len() == n.len()
        && p.iter().zip(&n).all(|(p, c)| match p {
            '#' => c.is_ascii_digit(),
            '@' => c.is_ascii_alphabetic(),
            lit => lit.to_ascii_uppercase() == *c,
        })
}

/// Why a registration number does not fit its profession.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("{0:?} is not a profession")]
    UnknownProfession(String),
    #[error("the pattern list for {0} is empty")]
    Empty(String),
}

impl RegistrationPatterns {
    /// Replaces one profession's patterns (`|`-separated), as configured.
    pub fn set(&mut self, profession: &str, patterns: &str) -> Result<(), PatternError> {
        let role = Role::parse(profession)
            .filter(|r| r.is_professional())
            .ok_or_else(|| PatternError::UnknownProfession(profession.to_owned()))?;
        let list = split_patterns(patterns);
        if list.is_empty() {
            return Err(PatternError::Empty(profession.to_owned()));
        }
        self.0.insert(role.code(), list);
        Ok(())
    }

    /// The patterns of a profession, as text (for messages).
    pub fn describe(&self, role: Role) -> String {
        self.0
            .get(role.code())
            .map(|p| p.join(" | "))
            .unwrap_or_default()
    }

    /// Normalises `input` and checks it against `role`'s patterns. Roles that are not
    /// professions carry no number.
    pub fn check(&self, role: Role, input: &str) -> Result<String, RegistrationNumberError> {
        let n = registration_number(input)?;
        let ok = self
            .0
            .get(role.code())
            .is_some_and(|ps| ps.iter().any(|p| fits(p, &n)));
        if ok {
            Ok(n)
        } else {
            Err(RegistrationNumberError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_numbers_fit_their_profession() {
        let mut p = RegistrationPatterns::default();
        assert_eq!(p.check(Role::Doctor, "m 12345"), Ok("M12345".into()));
        assert!(p.check(Role::Doctor, "D12345").is_err());
        assert!(p.check(Role::Doctor, "M1234").is_err());
        assert_eq!(
            p.check(Role::ChineseMedicinePractitioner, "003456"),
            Ok("003456".into())
        );
        assert_eq!(p.check(Role::Nurse, "RN123456"), Ok("RN123456".into()));
        assert!(p.check(Role::RegistrationStaff, "M12345").is_err());
        p.set("doctor", "M######| MX@## ").unwrap();
        assert_eq!(p.check(Role::Doctor, "mxa12"), Ok("MXA12".into()));
        assert!(p.check(Role::Doctor, "M12345").is_err());
        assert!(p.set("registration-staff", "###").is_err());
        assert!(p.set("doctor", " | ").is_err());
        for r in Role::ALL.into_iter().filter(|r| r.is_professional()) {
            assert!(!p.describe(r).is_empty(), "{r:?}");
        }
    }

    #[test]
    fn thirteen_professions_two_other_roles() {
        assert_eq!(Role::ALL.iter().filter(|r| r.is_professional()).count(), 13);
        assert!(!Role::Chiropractor.enabled_by_default());
        assert!(!Role::DentalHygienist.enabled_by_default());
        assert!(Role::ChineseMedicinePractitioner.enabled_by_default());
        for r in Role::ALL {
            assert_eq!(Role::parse(r.code()), Some(r));
            assert!(!r.name_en().is_empty() && !r.name_zh().is_empty());
        }
    }

    #[test]
    fn registration_numbers() {
        assert_eq!(registration_number(" m 12345 "), Ok("M12345".into()));
        assert_eq!(registration_number("003456"), Ok("003456".into()));
        assert_eq!(registration_number("RN/123-45"), Ok("RN/123-45".into()));
        assert!(registration_number("AB").is_err());
        assert!(registration_number("ABCDEF").is_err(), "needs a digit");
        assert!(registration_number("M1234;5").is_err());
    }
}
