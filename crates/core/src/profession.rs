//! The roles of provider staff (SPEC 3.6): the 13 professional groups of the Ordinance, and the
//! non-professional roles.

/// A role a provider's user holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Doctor,
    Dentist,
    DentalHygienist,
    ChineseMedicinePractitioner,
    Nurse,
    Midwife,
    Pharmacist,
    Physiotherapist,
    OccupationalTherapist,
    Optometrist,
    Radiographer,
    MedicalLaboratoryTechnologist,
    Chiropractor,
    /// Registers patients, captures consent, opens care episodes; sees demographics only.
    RegistrationStaff,
    /// Manages the provider's accounts; sees no clinical data.
    UserAdministrator,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 15] = [
        Role::Doctor,
        Role::Dentist,
        Role::DentalHygienist,
        Role::ChineseMedicinePractitioner,
        Role::Nurse,
        Role::Midwife,
        Role::Pharmacist,
        Role::Physiotherapist,
        Role::OccupationalTherapist,
        Role::Optometrist,
        Role::Radiographer,
        Role::MedicalLaboratoryTechnologist,
        Role::Chiropractor,
        Role::RegistrationStaff,
        Role::UserAdministrator,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Role::Doctor => "doctor",
            Role::Dentist => "dentist",
            Role::DentalHygienist => "dental-hygienist",
            Role::ChineseMedicinePractitioner => "chinese-medicine-practitioner",
            Role::Nurse => "nurse",
            Role::Midwife => "midwife",
            Role::Pharmacist => "pharmacist",
            Role::Physiotherapist => "physiotherapist",
            Role::OccupationalTherapist => "occupational-therapist",
            Role::Optometrist => "optometrist",
            Role::Radiographer => "radiographer",
            Role::MedicalLaboratoryTechnologist => "medical-laboratory-technologist",
            Role::Chiropractor => "chiropractor",
            Role::RegistrationStaff => "registration-staff",
            Role::UserAdministrator => "user-administrator",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The English name.
    pub fn name_en(self) -> &'static str {
        match self {
            Role::Doctor => "Doctor",
            Role::Dentist => "Dentist",
            Role::DentalHygienist => "Dental hygienist",
            Role::ChineseMedicinePractitioner => "Chinese medicine practitioner",
            Role::Nurse => "Nurse",
            Role::Midwife => "Midwife",
            Role::Pharmacist => "Pharmacist",
            Role::Physiotherapist => "Physiotherapist",
            Role::OccupationalTherapist => "Occupational therapist",
            Role::Optometrist => "Optometrist",
            Role::Radiographer => "Radiographer",
            Role::MedicalLaboratoryTechnologist => "Medical laboratory technologist",
            Role::Chiropractor => "Chiropractor",
            Role::RegistrationStaff => "Patient registration staff",
            Role::UserAdministrator => "User administrator",
        }
    }

    /// The Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Role::Doctor => "醫生",
            Role::Dentist => "牙醫",
            Role::DentalHygienist => "牙齒衞生員",
            Role::ChineseMedicinePractitioner => "中醫",
            Role::Nurse => "護士",
            Role::Midwife => "助產士",
            Role::Pharmacist => "藥劑師",
            Role::Physiotherapist => "物理治療師",
            Role::OccupationalTherapist => "職業治療師",
            Role::Optometrist => "視光師",
            Role::Radiographer => "放射技師",
            Role::MedicalLaboratoryTechnologist => "醫務化驗師",
            Role::Chiropractor => "脊醫",
            Role::RegistrationStaff => "病人登記職員",
            Role::UserAdministrator => "帳戶管理人員",
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

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
