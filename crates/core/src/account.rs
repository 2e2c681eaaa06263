//! Accounts of people who log in (SPEC 4.2): healthcare providers' users and eHR Office staff.
//!
//! One personal account per person per provider; no shared accounts. An account's status
//! decides whether it may act at all; suspending or terminating one ends its sessions and
//! tokens at once (the application does that in the same transaction as the change).

use crate::profession::Role;

/// Where an account belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Realm {
    /// A healthcare provider's user.
    Hcp,
    /// eHR Office staff.
    Office,
}

impl Realm {
    /// The stable code stored.
    pub fn code(self) -> &'static str {
        match self {
            Realm::Hcp => "hcp",
            Realm::Office => "office",
        }
    }

    /// Parses a stored code.
    pub fn parse(code: &str) -> Option<Realm> {
        match code {
            "hcp" => Some(Realm::Hcp),
            "office" => Some(Realm::Office),
            _ => None,
        }
    }
}

/// The roles of eHR Office staff. Duties are separated: registration officers register
/// recipients and providers, privacy officers review access, system administrators manage the
/// office's own accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfficeRole {
    RegistrationOfficer,
    PrivacyOfficer,
    SystemAdministrator,
}

impl OfficeRole {
    /// Every office role.
    pub const ALL: [OfficeRole; 3] = [
        OfficeRole::RegistrationOfficer,
        OfficeRole::PrivacyOfficer,
        OfficeRole::SystemAdministrator,
    ];

    /// The stable code stored and shown.
    pub fn code(self) -> &'static str {
        match self {
            OfficeRole::RegistrationOfficer => "registration-officer",
            OfficeRole::PrivacyOfficer => "privacy-officer",
            OfficeRole::SystemAdministrator => "system-administrator",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Option<OfficeRole> {
        OfficeRole::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Whether the role registers recipients and providers.
    pub fn registers(self) -> bool {
        self == OfficeRole::RegistrationOfficer
    }
}

/// The access role of a provider's account: one of the 13 professions, patient registration
/// staff, or a pure user administrator (who sees no clinical data).
pub fn parse_hcp_role(code: &str, enabled: impl Fn(Role) -> bool) -> Option<Role> {
    Role::parse(code).filter(|r| enabled(*r))
}

/// An account's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    /// Created; its holder has not yet changed the initial password and enrolled a token.
    Pending,
    Active,
    Suspended,
    /// Closed for good (the person left).
    Terminated,
}

/// A change of an account's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountEvent {
    /// The holder completed the first login (password changed, token enrolled).
    Enrol,
    Suspend,
    Reinstate,
    Terminate,
}

impl AccountEvent {
    /// Parses the code an administrator sends.
    pub fn parse(code: &str) -> Option<AccountEvent> {
        match code {
            "suspend" => Some(AccountEvent::Suspend),
            "reinstate" => Some(AccountEvent::Reinstate),
            "terminate" => Some(AccountEvent::Terminate),
            _ => None,
        }
    }
}

impl AccountStatus {
    /// The stable code stored and shown.
    pub fn code(self) -> &'static str {
        match self {
            AccountStatus::Pending => "pending",
            AccountStatus::Active => "active",
            AccountStatus::Suspended => "suspended",
            AccountStatus::Terminated => "terminated",
        }
    }

    /// Parses a stored code.
    pub fn parse(code: &str) -> Option<AccountStatus> {
        match code {
            "pending" => Some(AccountStatus::Pending),
            "active" => Some(AccountStatus::Active),
            "suspended" => Some(AccountStatus::Suspended),
            "terminated" => Some(AccountStatus::Terminated),
            _ => None,
        }
    }

    /// Whether the holder may log in (a pending account logs in only to finish enrolment).
    pub fn may_log_in(self) -> bool {
        matches!(self, AccountStatus::Pending | AccountStatus::Active)
    }

    /// The status after `event`, or `None` when the event does not apply. A suspended account
    /// is reinstated to active, or to pending when it never finished enrolment.
    pub fn after(self, event: AccountEvent, enrolled: bool) -> Option<AccountStatus> {
        use AccountEvent as E;
        use AccountStatus as S;
        match (self, event) {
            (S::Pending, E::Enrol) => Some(S::Active),
            (S::Pending | S::Active, E::Suspend) => Some(S::Suspended),
            (S::Suspended, E::Reinstate) => Some(if enrolled { S::Active } else { S::Pending }),
            (S::Pending | S::Active | S::Suspended, E::Terminate) => Some(S::Terminated),
            _ => None,
        }
    }
}

/// Who is asking to manage a provider's accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manager<'a> {
    pub realm: Realm,
    pub hcp: Option<uuid::Uuid>,
    pub user_admin: bool,
    pub role: &'a str,
}

/// Whether `who` may manage the accounts of provider `hcp`: the provider's own user
/// administrators, and the office's registration officers and system administrators (who
/// enrol a provider's first user administrator and act when a provider cannot). Anyone else
/// must not even learn that an account exists (the caller answers 404).
pub fn may_manage_accounts_of(who: Manager<'_>, hcp: uuid::Uuid) -> bool {
    match who.realm {
        Realm::Hcp => who.user_admin && who.hcp == Some(hcp),
        Realm::Office => matches!(
            OfficeRole::parse(who.role),
            Some(OfficeRole::RegistrationOfficer | OfficeRole::SystemAdministrator)
        ),
    }
}

/// Whether `who` may manage the office's own accounts: its system administrators only.
pub fn may_manage_office_accounts(who: Manager<'_>) -> bool {
    who.realm == Realm::Office
        && OfficeRole::parse(who.role) == Some(OfficeRole::SystemAdministrator)
}

/// Why a user name is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a user name is 3 to 64 letters, digits, dots, hyphens or underscores, starting with a letter"
)]
pub struct UserNameError;

/// Checks and normalises a user name (lower case). User names are compared case-insensitively.
pub fn user_name(input: &str) -> Result<String, UserNameError> {
    let n = input.trim().to_ascii_lowercase();
    let ok = (3..=64).contains(&n.len())
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if ok { Ok(n) } else { Err(UserNameError) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_transitions() {
        use AccountEvent as E;
        use AccountStatus as S;
        let cases = [
            (S::Pending, E::Enrol, false, Some(S::Active)),
            (S::Active, E::Enrol, true, None),
            (S::Active, E::Suspend, true, Some(S::Suspended)),
            (S::Pending, E::Suspend, false, Some(S::Suspended)),
            (S::Suspended, E::Reinstate, true, Some(S::Active)),
            (S::Suspended, E::Reinstate, false, Some(S::Pending)),
            (S::Active, E::Reinstate, true, None),
            (S::Suspended, E::Terminate, true, Some(S::Terminated)),
            (S::Terminated, E::Reinstate, true, None),
            (S::Terminated, E::Suspend, true, None),
            (S::Terminated, E::Terminate, true, None),
        ];
        for (from, event, enrolled, expected) in cases {
            assert_eq!(from.after(event, enrolled), expected, "{from:?} {event:?}");
        }
        for s in [S::Pending, S::Active, S::Suspended, S::Terminated] {
            assert_eq!(S::parse(s.code()), Some(s));
        }
        assert!(S::Pending.may_log_in() && S::Active.may_log_in());
        assert!(!S::Suspended.may_log_in() && !S::Terminated.may_log_in());
    }

    #[test]
    fn user_names() {
        assert_eq!(user_name(" Chan.TM "), Ok("chan.tm".into()));
        assert_eq!(user_name("dr_wong-2"), Ok("dr_wong-2".into()));
        assert!(user_name("ab").is_err());
        assert!(user_name("1abc").is_err());
        assert!(user_name("chan tm").is_err());
        assert!(user_name("陳大文").is_err());
        assert!(user_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn who_manages_which_accounts() {
        let a = uuid::Uuid::from_u128(1);
        let b = uuid::Uuid::from_u128(2);
        let ua = Manager {
            realm: Realm::Hcp,
            hcp: Some(a),
            user_admin: true,
            role: "doctor",
        };
        let doctor = Manager {
            user_admin: false,
            ..ua
        };
        let officer = Manager {
            realm: Realm::Office,
            hcp: None,
            user_admin: false,
            role: "registration-officer",
        };
        let privacy = Manager {
            role: "privacy-officer",
            ..officer
        };
        let sysadmin = Manager {
            role: "system-administrator",
            ..officer
        };
        assert!(may_manage_accounts_of(ua, a));
        assert!(!may_manage_accounts_of(ua, b));
        assert!(!may_manage_accounts_of(doctor, a));
        assert!(may_manage_accounts_of(officer, b));
        assert!(!may_manage_accounts_of(privacy, b));
        assert!(may_manage_office_accounts(sysadmin));
        assert!(!may_manage_office_accounts(officer));
        assert!(!may_manage_office_accounts(ua));
    }

    #[test]
    fn office_roles_round_trip() {
        for r in OfficeRole::ALL {
            assert_eq!(OfficeRole::parse(r.code()), Some(r));
        }
        assert_eq!(OfficeRole::parse("doctor"), None);
        assert_eq!(Realm::parse(Realm::Office.code()), Some(Realm::Office));
    }
}
