//! Need-to-know (SPEC 3.6): which domains each role may see. The matrix is data
//! (`config/access-profiles.toml`), versioned, validated when loaded: an unknown role or domain,
//! or a role left out, is an error, so that a typo can never widen or silently narrow access.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::Domain;
use crate::profession::Role;

/// The role -> domains matrix in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessProfiles {
    version: String,
    domains: BTreeMap<Role, BTreeSet<Domain>>,
    /// The domains emergency access shows (SPEC 3.11).
    emergency: BTreeSet<Domain>,
}

/// The emergency domains by default (SPEC 3.11).
pub const EMERGENCY_DOMAINS: [Domain; 3] = [Domain::Allergy, Domain::Medication, Domain::Diagnosis];

/// Why a matrix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("the access profiles need a version")]
    NoVersion,
    #[error("unknown role {0:?} in the access profiles")]
    UnknownRole(String),
    #[error("unknown domain {domain:?} for role {role}")]
    UnknownDomain { role: String, domain: String },
    #[error("role {0} is missing from the access profiles (list it, with [] for no domains)")]
    MissingRole(String),
    #[error("role {0} is listed twice")]
    DuplicateRole(String),
}

impl AccessProfiles {
    /// Builds the matrix from `(role, domains)` entries; `"*"` stands for every domain.
    pub fn from_entries(
        version: &str,
        entries: &[(String, Vec<String>)],
    ) -> Result<AccessProfiles, ProfileError> {
        if version.trim().is_empty() {
            return Err(ProfileError::NoVersion);
        }
        let mut domains = BTreeMap::new();
        for (role, list) in entries {
            let r = Role::parse(role).ok_or_else(|| ProfileError::UnknownRole(role.clone()))?;
            let mut set = BTreeSet::new();
            for d in list {
                if d == "*" {
                    set.extend(Domain::ALL);
                } else {
                    set.insert(Domain::parse(d).ok_or_else(|| ProfileError::UnknownDomain {
                        role: role.clone(),
                        domain: d.clone(),
                    })?);
                }
            }
            if domains.insert(r, set).is_some() {
                return Err(ProfileError::DuplicateRole(role.clone()));
            }
        }
        if let Some(missing) = Role::ALL.into_iter().find(|r| !domains.contains_key(r)) {
            return Err(ProfileError::MissingRole(missing.code().to_owned()));
        }
        Ok(AccessProfiles {
            version: version.trim().to_owned(),
            domains,
            emergency: EMERGENCY_DOMAINS.into_iter().collect(),
        })
    }

    /// These profiles with `codes` as the emergency domains (`"*"` is not allowed: emergency
    /// access is the narrow view).
    pub fn with_emergency(mut self, codes: &[String]) -> Result<AccessProfiles, ProfileError> {
        let mut set = BTreeSet::new();
        for c in codes {
            set.insert(Domain::parse(c).ok_or_else(|| ProfileError::UnknownDomain {
                role: "emergency".to_owned(),
                domain: c.clone(),
            })?);
        }
        self.emergency = set;
        Ok(self)
    }

    /// The domains emergency access shows.
    pub fn emergency_domains(&self) -> &BTreeSet<Domain> {
        &self.emergency
    }

    /// The version named in the file.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The domains `role` may see.
    pub fn domains(&self, role: Role) -> BTreeSet<Domain> {
        self.domains.get(&role).cloned().unwrap_or_default()
    }

    /// Whether `role` may see `domain`.
    pub fn permits(&self, role: Role, domain: Domain) -> bool {
        self.domains.get(&role).is_some_and(|s| s.contains(&domain))
    }

    /// Every role with its domains, for display.
    pub fn entries(&self) -> impl Iterator<Item = (Role, &BTreeSet<Domain>)> {
        self.domains.iter().map(|(r, d)| (*r, d))
    }
}

/// The default matrix of SPEC 3.6 (the shipped `config/access-profiles.toml` says the same; a
/// test keeps them equal).
pub fn spec_default() -> AccessProfiles {
    let all = vec!["*".to_owned()];
    let list = |ds: &[&str]| ds.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>();
    let mut entries = Vec::new();
    for role in Role::ALL {
        let domains = match role {
            Role::Doctor
            | Role::Dentist
            | Role::ChineseMedicinePractitioner
            | Role::Nurse
            | Role::Midwife => all.clone(),
            // Not in the SPEC table; they see what their nearest profession sees.
            Role::DentalHygienist => list(&[
                "demographics",
                "allergy",
                "diagnosis",
                "procedure",
                "medication",
                "encounter",
            ]),
            Role::Chiropractor => list(&[
                "demographics",
                "allergy",
                "diagnosis",
                "procedure",
                "encounter",
                "radiology",
                "referral",
            ]),
            Role::Pharmacist => list(&[
                "demographics",
                "allergy",
                "diagnosis",
                "medication",
                "cm-prescription",
                "encounter",
                "laboratory",
            ]),
            Role::Physiotherapist | Role::OccupationalTherapist => list(&[
                "demographics",
                "allergy",
                "diagnosis",
                "procedure",
                "encounter",
                "clinical-note",
                "radiology",
                "referral",
                "cm-treatment",
            ]),
            Role::Radiographer => list(&[
                "demographics",
                "allergy",
                "diagnosis",
                "radiology",
                "encounter",
                "referral",
            ]),
            Role::Optometrist => list(&[
                "demographics",
                "allergy",
                "diagnosis",
                "medication",
                "encounter",
                "referral",
            ]),
            Role::MedicalLaboratoryTechnologist => {
                list(&["demographics", "laboratory", "encounter", "referral"])
            }
            Role::RegistrationStaff => list(&["demographics"]),
            Role::UserAdministrator => Vec::new(),
        };
        entries.push((role.code().to_owned(), domains));
    }
    match AccessProfiles::from_entries("spec-3.6", &entries) {
        Ok(p) => p,
        // The table above names only known roles and domains (a unit test checks it).
        Err(_) => AccessProfiles {
            version: "empty".to_owned(),
            domains: BTreeMap::new(),
            emergency: BTreeSet::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_table() {
        let p = spec_default();
        assert_eq!(p.version(), "spec-3.6");
        assert_eq!(p.domains(Role::Doctor).len(), Domain::ALL.len());
        assert!(p.permits(Role::Pharmacist, Domain::Medication));
        assert!(!p.permits(Role::Pharmacist, Domain::ClinicalNote));
        assert_eq!(
            p.domains(Role::RegistrationStaff)
                .into_iter()
                .collect::<Vec<_>>(),
            vec![Domain::Demographics]
        );
        assert!(p.domains(Role::UserAdministrator).is_empty());
    }

    #[test]
    fn mistakes_are_refused() {
        let mut entries: Vec<(String, Vec<String>)> = Role::ALL
            .iter()
            .map(|r| (r.code().to_owned(), vec!["demographics".to_owned()]))
            .collect();
        assert!(AccessProfiles::from_entries("v1", &entries).is_ok());
        assert_eq!(
            AccessProfiles::from_entries(" ", &entries),
            Err(ProfileError::NoVersion)
        );
        entries[0].1.push("everything".into());
        assert!(matches!(
            AccessProfiles::from_entries("v1", &entries),
            Err(ProfileError::UnknownDomain { .. })
        ));
        entries[0].1.pop();
        entries.push(("wizard".into(), vec![]));
        assert_eq!(
            AccessProfiles::from_entries("v1", &entries),
            Err(ProfileError::UnknownRole("wizard".into()))
        );
        entries.pop();
        entries.push(("doctor".into(), vec![]));
        assert_eq!(
            AccessProfiles::from_entries("v1", &entries),
            Err(ProfileError::DuplicateRole("doctor".into()))
        );
        entries.pop();
        entries.remove(3);
        assert!(matches!(
            AccessProfiles::from_entries("v1", &entries),
            Err(ProfileError::MissingRole(_))
        ));
    }
}
