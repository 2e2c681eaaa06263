//! Accounts of people who log in (SPEC 4.2): healthcare providers' users and eHR Office staff.
//!
//! One personal account per person per provider; no shared accounts. An account's status
//! decides whether it may act at all; suspending or terminating one ends its sessions and
//! tokens at once (the application does that in the same transaction as the change).

use crate::profession::Role;

crate::coded_enum! {
    /// Where an account belongs.
    pub enum Realm {
        /// A healthcare provider's user.
        Hcp = "hcp";
        /// eHR Office staff.
        Office = "office";
    }
}

crate::coded_enum! {
    /// The roles of eHR Office staff. Duties are separated: registration officers register
    /// recipients and providers, privacy officers review access, system administrators manage the
    /// office's own accounts.
    pub enum OfficeRole {
        RegistrationOfficer = "registration-officer";
        PrivacyOfficer = "privacy-officer";
        SystemAdministrator = "system-administrator";
    }
}

impl OfficeRole {
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

crate::coded_enum! {
    /// An account's status.
    pub enum AccountStatus {
        /// Created; its holder has not yet changed the initial password and enrolled a token.
        Pending = "pending";
        Active = "active";
        Suspended = "suspended";
        /// Closed for good (the person left).
        Terminated = "terminated";
    }
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

/// Who performs an administrative act on an account, as the separation-of-duties rule sees
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Administrator<'a> {
    pub account: uuid::Uuid,
    pub realm: Realm,
    /// The administrator's own identity document (`kind:issuer:number`), when recorded.
    pub document: Option<&'a str>,
}

/// The account acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder<'a> {
    /// `None` while the account is being created.
    pub account: Option<uuid::Uuid>,
    /// Where the account belongs.
    pub realm: Realm,
    /// The holder's identity document (`kind:issuer:number`), when recorded.
    pub document: Option<&'a str>,
}

/// An administrative act on an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAct {
    /// Opening an account with a role, and perhaps the administrator flag.
    Create {
        /// Whether the role is a pure user administrator's (no clinical data).
        pure_administrator: bool,
        user_admin: bool,
    },
    /// A new role, registration number or administrator flag.
    ChangeRole,
    /// Suspend, reinstate or terminate.
    ChangeStatus,
    /// A new first password.
    Reset,
    /// Clearing the login lock.
    Unlock,
}

impl AdminAct {
    /// Whether the act grants a role or the administrator flag.
    pub fn grants(self) -> bool {
        matches!(self, AdminAct::Create { .. } | AdminAct::ChangeRole)
    }
}

/// Why an administrative act is refused by the separation of duties (SPEC 4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DutyError {
    /// Nobody changes their own account (role, administrator flag, status, password).
    #[error("nobody administers their own account")]
    OwnAccount,
    /// Nobody creates or changes an account that bears their own identity document.
    #[error("nobody administers an account that bears their own identity document")]
    OwnDocument,
    /// An account granted a role must carry its holder's identity document, so that the
    /// rule above can hold.
    #[error("the account needs its holder's identity document")]
    DocumentRequired,
    /// A provider's administrator without a recorded identity document cannot grant roles
    /// (nothing could show that they are not granting one to themselves).
    #[error("an administrator without a recorded identity document cannot grant roles")]
    AdministratorDocumentRequired,
    /// At a provider the office opens only the first user administrator, or a replacement
    /// while none is active; roles are the provider's own administrators' to change.
    #[error(
        "the office opens only a provider's user administrator while it has none active, and changes no roles there"
    )]
    OfficeFirstAdministratorOnly,
}

impl DutyError {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            DutyError::OwnAccount => "own-account",
            DutyError::OwnDocument => "own-document",
            DutyError::DocumentRequired => "document-required",
            DutyError::AdministratorDocumentRequired => "administrator-document-required",
            DutyError::OfficeFirstAdministratorOnly => "office-first-administrator-only",
        }
    }
}

/// The separation of duties in user administration (SPEC 4.2; issue 22): whether `by` may
/// perform `act` on `on`. `provider_has_active_admin` says whether the provider of a
/// provider's account has an active user administrator (the office may then not open one).
///
/// The invariant it keeps, property-tested below against a model: no sequence of acts leaves
/// a person (by identity document) holding a role or administrator flag they granted
/// themselves.
pub fn check_duties(
    by: Administrator<'_>,
    on: Holder<'_>,
    act: AdminAct,
    provider_has_active_admin: bool,
) -> Result<(), DutyError> {
    if on.account.is_some() && on.account == Some(by.account) {
        return Err(DutyError::OwnAccount);
    }
    if by.document.is_some() && by.document == on.document {
        return Err(DutyError::OwnDocument);
    }
    if by.realm == Realm::Office && on.realm == Realm::Hcp {
        match act {
            AdminAct::Create {
                pure_administrator: true,
                user_admin: true,
            } if !provider_has_active_admin => {}
            AdminAct::Create { .. } | AdminAct::ChangeRole => {
                return Err(DutyError::OfficeFirstAdministratorOnly);
            }
            AdminAct::ChangeStatus | AdminAct::Reset | AdminAct::Unlock => {}
        }
    }
    if act.grants() {
        if on.document.is_none() {
            return Err(DutyError::DocumentRequired);
        }
        if by.realm == Realm::Hcp && by.document.is_none() {
            return Err(DutyError::AdministratorDocumentRequired);
        }
    }
    Ok(())
}

/// Whether a professional registration number may go to the holder of `document`: no account
/// of a different identity document (or of none) carries it. One professional may hold
/// accounts at several providers, all under their one document.
pub fn registration_number_free<'a>(
    document: &str,
    carriers: impl IntoIterator<Item = Option<&'a str>>,
) -> bool {
    carriers.into_iter().all(|d| d == Some(document))
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

    fn admin(account: u128, realm: Realm, document: Option<&str>) -> Administrator<'_> {
        Administrator {
            account: uuid::Uuid::from_u128(account),
            realm,
            document,
        }
    }

    fn holder(account: Option<u128>, realm: Realm, document: Option<&str>) -> Holder<'_> {
        Holder {
            account: account.map(uuid::Uuid::from_u128),
            realm,
            document,
        }
    }

    #[test]
    fn separation_of_duties() {
        use AdminAct as A;
        use DutyError as E;
        use Realm::{Hcp, Office};
        let doctor = A::Create {
            pure_administrator: false,
            user_admin: false,
        };
        let first_admin = A::Create {
            pure_administrator: true,
            user_admin: true,
        };
        let me = Some("hkid:HK:A1234563");
        let other = Some("hkid:HK:B2345678");
        let cases = [
            // (administrator, holder, act, provider has an active admin, expected)
            (
                admin(1, Hcp, me),
                holder(None, Hcp, other),
                doctor,
                true,
                Ok(()),
            ),
            (
                admin(1, Hcp, me),
                holder(Some(1), Hcp, me),
                A::ChangeRole,
                true,
                Err(E::OwnAccount),
            ),
            (
                admin(1, Hcp, me),
                holder(Some(1), Hcp, me),
                A::ChangeStatus,
                true,
                Err(E::OwnAccount),
            ),
            (
                admin(1, Hcp, me),
                holder(Some(1), Hcp, me),
                A::Reset,
                true,
                Err(E::OwnAccount),
            ),
            // Own document on another account (here or at another provider).
            (
                admin(1, Hcp, me),
                holder(None, Hcp, me),
                doctor,
                true,
                Err(E::OwnDocument),
            ),
            (
                admin(1, Hcp, me),
                holder(Some(2), Hcp, me),
                A::ChangeRole,
                true,
                Err(E::OwnDocument),
            ),
            (
                admin(1, Hcp, me),
                holder(Some(2), Hcp, me),
                A::ChangeStatus,
                true,
                Err(E::OwnDocument),
            ),
            // Documents are needed to grant.
            (
                admin(1, Hcp, me),
                holder(None, Hcp, None),
                doctor,
                true,
                Err(E::DocumentRequired),
            ),
            (
                admin(1, Hcp, me),
                holder(Some(2), Hcp, None),
                A::ChangeRole,
                true,
                Err(E::DocumentRequired),
            ),
            (
                admin(1, Hcp, me),
                holder(Some(2), Hcp, None),
                A::ChangeStatus,
                true,
                Ok(()),
            ),
            (
                admin(1, Hcp, None),
                holder(None, Hcp, other),
                doctor,
                true,
                Err(E::AdministratorDocumentRequired),
            ),
            (
                admin(1, Hcp, None),
                holder(Some(2), Hcp, other),
                A::ChangeStatus,
                true,
                Ok(()),
            ),
            // The office at a provider: the first administrator, or a replacement.
            (
                admin(9, Office, None),
                holder(None, Hcp, other),
                first_admin,
                false,
                Ok(()),
            ),
            (
                admin(9, Office, None),
                holder(None, Hcp, other),
                first_admin,
                true,
                Err(E::OfficeFirstAdministratorOnly),
            ),
            (
                admin(9, Office, None),
                holder(None, Hcp, other),
                doctor,
                false,
                Err(E::OfficeFirstAdministratorOnly),
            ),
            (
                admin(9, Office, None),
                holder(None, Hcp, other),
                A::Create {
                    pure_administrator: false,
                    user_admin: true,
                },
                false,
                Err(E::OfficeFirstAdministratorOnly),
            ),
            (
                admin(9, Office, None),
                holder(Some(2), Hcp, other),
                A::ChangeRole,
                false,
                Err(E::OfficeFirstAdministratorOnly),
            ),
            (
                admin(9, Office, None),
                holder(Some(2), Hcp, other),
                A::ChangeStatus,
                true,
                Ok(()),
            ),
            (
                admin(9, Office, me),
                holder(None, Hcp, me),
                first_admin,
                false,
                Err(E::OwnDocument),
            ),
            // The office's own accounts.
            (
                admin(9, Office, None),
                holder(None, Office, other),
                A::Create {
                    pure_administrator: false,
                    user_admin: false,
                },
                true,
                Ok(()),
            ),
            (
                admin(9, Office, None),
                holder(Some(9), Office, None),
                A::ChangeRole,
                true,
                Err(E::OwnAccount),
            ),
        ];
        for (i, (by, on, act, has_admin, expected)) in cases.into_iter().enumerate() {
            assert_eq!(check_duties(by, on, act, has_admin), expected, "case {i}");
        }
        for e in [
            E::OwnAccount,
            E::OwnDocument,
            E::DocumentRequired,
            E::AdministratorDocumentRequired,
            E::OfficeFirstAdministratorOnly,
        ] {
            assert!(!e.code().is_empty() && !e.to_string().is_empty());
        }
    }

    #[test]
    fn registration_numbers_stay_with_one_document() {
        let me = "hkid:HK:A1234563";
        assert!(registration_number_free(me, []));
        assert!(registration_number_free(me, [Some(me), Some(me)]));
        assert!(!registration_number_free(
            me,
            [Some(me), Some("hkid:HK:B2345678")]
        ));
        assert!(!registration_number_free(me, [None]));
    }

    /// The model: people (by document) holding accounts; each act is applied only when the
    /// rule allows it, and each account remembers whose document granted its current role.
    mod model {
        use proptest::prelude::*;

        use super::super::*;

        const PEOPLE: [&str; 4] = [
            "hkid:HK:A1234563",
            "hkid:HK:B2345678",
            "passport:GB:123456789",
            "hkid:HK:C6688990",
        ];

        #[derive(Debug, Clone)]
        struct Account {
            realm: Realm,
            hcp: Option<u8>,
            /// Index into PEOPLE, or `None` for an account without a document.
            person: Option<usize>,
            role: &'static str,
            user_admin: bool,
            status: AccountStatus,
            /// The document of whoever granted the current role and flag.
            granted_by: Option<Option<usize>>,
        }

        #[derive(Debug, Clone)]
        enum Step {
            Create {
                actor: usize,
                hcp: Option<u8>,
                person: Option<usize>,
                role: usize,
                admin: bool,
            },
            ChangeRole {
                actor: usize,
                target: usize,
                role: usize,
                admin: bool,
            },
            Status {
                actor: usize,
                target: usize,
                event: usize,
            },
        }

        const ROLES: [&str; 3] = ["doctor", "registration-staff", "user-administrator"];

        fn step() -> impl Strategy<Value = Step> {
            let person = prop_oneof![Just(None), (0..PEOPLE.len()).prop_map(Some)];
            let hcp = prop_oneof![Just(None), (0u8..2).prop_map(Some)];
            prop_oneof![
                (0usize..8, hcp, person, 0..ROLES.len(), any::<bool>()).prop_map(
                    |(actor, hcp, person, role, admin)| Step::Create {
                        actor,
                        hcp,
                        person,
                        role,
                        admin
                    }
                ),
                (0usize..8, 0usize..8, 0..ROLES.len(), any::<bool>()).prop_map(
                    |(actor, target, role, admin)| Step::ChangeRole {
                        actor,
                        target,
                        role,
                        admin
                    }
                ),
                (0usize..8, 0usize..8, 0usize..3).prop_map(|(actor, target, event)| Step::Status {
                    actor,
                    target,
                    event
                }),
            ]
        }

        fn may_manage(a: &Account, realm: Realm, hcp: Option<u8>) -> bool {
            if a.status != AccountStatus::Active {
                return false;
            }
            match (a.realm, realm) {
                (Realm::Hcp, Realm::Hcp) => a.user_admin && a.hcp == hcp,
                (Realm::Office, Realm::Hcp) => true,
                (Realm::Office, Realm::Office) => a.role == "system-administrator",
                (Realm::Hcp, Realm::Office) => false,
            }
        }

        fn has_active_admin(accounts: &[Account], hcp: Option<u8>) -> bool {
            accounts.iter().any(|a| {
                a.hcp == hcp
                    && a.realm == Realm::Hcp
                    && a.user_admin
                    && a.status == AccountStatus::Active
            })
        }

        fn act(accounts: &mut Vec<Account>, s: &Step) {
            let id = |i: usize| uuid::Uuid::from_u128(i as u128 + 1);
            let doc = |p: Option<usize>| p.map(|p| PEOPLE[p]);
            match *s {
                Step::Create {
                    actor,
                    hcp,
                    person,
                    role,
                    admin: flag,
                } => {
                    let Some(a) = accounts.get(actor).cloned() else {
                        return;
                    };
                    let realm = if hcp.is_some() {
                        Realm::Hcp
                    } else {
                        Realm::Office
                    };
                    if !may_manage(&a, realm, hcp) {
                        return;
                    }
                    let role = if realm == Realm::Office {
                        "privacy-officer"
                    } else {
                        ROLES[role]
                    };
                    let pure = role == "user-administrator";
                    let user_admin = realm == Realm::Hcp && (flag || pure);
                    let act = AdminAct::Create {
                        pure_administrator: pure,
                        user_admin,
                    };
                    let by = Administrator {
                        account: id(actor),
                        realm: a.realm,
                        document: doc(a.person),
                    };
                    let on = Holder {
                        account: None,
                        realm,
                        document: doc(person),
                    };
                    if check_duties(by, on, act, has_active_admin(accounts, hcp)).is_ok() {
                        accounts.push(Account {
                            realm,
                            hcp,
                            person,
                            role,
                            user_admin,
                            status: AccountStatus::Active,
                            granted_by: Some(a.person),
                        });
                    }
                }
                Step::ChangeRole {
                    actor,
                    target,
                    role,
                    admin: flag,
                } => {
                    let (Some(a), Some(t)) =
                        (accounts.get(actor).cloned(), accounts.get(target).cloned())
                    else {
                        return;
                    };
                    if !may_manage(&a, t.realm, t.hcp) || t.realm != Realm::Hcp {
                        return;
                    }
                    let by = Administrator {
                        account: id(actor),
                        realm: a.realm,
                        document: doc(a.person),
                    };
                    let on = Holder {
                        account: Some(id(target)),
                        realm: t.realm,
                        document: doc(t.person),
                    };
                    if check_duties(
                        by,
                        on,
                        AdminAct::ChangeRole,
                        has_active_admin(accounts, t.hcp),
                    )
                    .is_ok()
                    {
                        let t = &mut accounts[target];
                        t.role = ROLES[role];
                        t.user_admin = flag || t.role == "user-administrator";
                        t.granted_by = Some(a.person);
                    }
                }
                Step::Status {
                    actor,
                    target,
                    event,
                } => {
                    let (Some(a), Some(t)) =
                        (accounts.get(actor).cloned(), accounts.get(target).cloned())
                    else {
                        return;
                    };
                    if !may_manage(&a, t.realm, t.hcp) {
                        return;
                    }
                    let by = Administrator {
                        account: id(actor),
                        realm: a.realm,
                        document: doc(a.person),
                    };
                    let on = Holder {
                        account: Some(id(target)),
                        realm: t.realm,
                        document: doc(t.person),
                    };
                    let event = [
                        AccountEvent::Suspend,
                        AccountEvent::Reinstate,
                        AccountEvent::Terminate,
                    ][event];
                    if check_duties(
                        by,
                        on,
                        AdminAct::ChangeStatus,
                        has_active_admin(accounts, t.hcp),
                    )
                    .is_ok()
                        && let Some(next) = t.status.after(event, true)
                    {
                        accounts[target].status = next;
                    }
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            #[test]
            fn nobody_holds_a_role_they_granted_themselves(
                first_admins in proptest::collection::vec(prop_oneof![Just(None), (0..PEOPLE.len()).prop_map(Some)], 2),
                steps in proptest::collection::vec(step(), 1..40),
            ) {
                // The office's system administrator (no document recorded), and a registration
                // officer who is one of the people.
                let mut accounts = vec![
                    Account { realm: Realm::Office, hcp: None, person: None, role: "system-administrator",
                        user_admin: false, status: AccountStatus::Active, granted_by: None },
                    Account { realm: Realm::Office, hcp: None, person: Some(0), role: "registration-officer",
                        user_admin: false, status: AccountStatus::Active, granted_by: None },
                ];
                for (hcp, person) in first_admins.into_iter().enumerate() {
                    act(&mut accounts, &Step::Create { actor: 1, hcp: Some(hcp as u8), person, role: 2, admin: true });
                }
                for s in &steps {
                    act(&mut accounts, s);
                    for a in &accounts {
                        if let Some(granter) = a.granted_by {
                            prop_assert!(
                                granter.is_none() || granter != a.person,
                                "{a:?} was granted by its own holder after {steps:?}"
                            );
                            // Whoever holds a role at a provider carries a document.
                            prop_assert!(a.realm == Realm::Office || a.person.is_some());
                        }
                    }
                }
            }
        }
    }
}
