//! How a recipient is reached (SPEC 3.2, 3.10: the notification channel), and which channels
//! a notice may take given what it carries.

crate::coded_enum! {
    /// A notification channel.
    pub enum Channel {
        Sms = "sms";
        Email = "email";
        /// The office's print queue: a letter to the recipient's postal address.
        Post = "post";
        /// The inbox of the patient portal, kept in the database.
        App = "app";
    }
}

/// What a notice carries, which bounds the channels it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carries {
    /// News of something that happened (a consent, an access, a change of registration).
    News,
    /// The access key: it is what sets up the portal login, so it cannot wait in the portal's
    /// inbox (SMS instead); a letter is fine.
    AccessKey,
    /// A one-time code, good for minutes: only a channel that arrives at once (e-mail where
    /// chosen, else SMS).
    OneTimeCode,
    /// A change of the registration itself (suspended, withdrawn, ...): it can shut the
    /// portal, so not to its inbox (SMS instead); a letter is fine.
    RegistrationChange,
}

/// The channel a notice to someone who chose `chosen` takes; `has_email` says whether an
/// e-mail address is on file (without one, e-mail falls back to SMS, which is always on file).
pub fn channel_for(chosen: Channel, carries: Carries, has_email: bool) -> Channel {
    let chosen = match chosen {
        Channel::Email if !has_email => Channel::Sms,
        c => c,
    };
    match (carries, chosen) {
        (Carries::News, c) => c,
        (Carries::AccessKey | Carries::RegistrationChange, Channel::App) => Channel::Sms,
        (Carries::AccessKey | Carries::RegistrationChange, c) => c,
        (Carries::OneTimeCode, Channel::Email) => Channel::Email,
        (Carries::OneTimeCode, _) => Channel::Sms,
    }
}

/// What a chosen channel lacks on file, if anything: e-mail needs an address to mail to, post
/// a postal address (SMS and the portal's inbox always reach: a phone number is required).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    NoEmail,
    NoAddress,
}

/// Whether `channel` reaches someone with an e-mail address (`has_email`) and a postal
/// address (`has_address`) on file: the rule at registration and at every later change.
pub fn reachable(channel: Channel, has_email: bool, has_address: bool) -> Result<(), Unreachable> {
    match channel {
        Channel::Email if !has_email => Err(Unreachable::NoEmail),
        Channel::Post if !has_address => Err(Unreachable::NoAddress),
        _ => Ok(()),
    }
}

/// Every channel an urgent notice (an emergency access, SPEC 3.11) goes by: the chosen one
/// first, then SMS, e-mail where on file, and the portal's inbox; each once.
pub fn every_channel(chosen: Channel, has_email: bool) -> Vec<Channel> {
    let mut out = vec![channel_for(chosen, Carries::News, has_email)];
    for c in [Channel::Sms, Channel::Email, Channel::App] {
        if (c != Channel::Email || has_email) && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// Whether an access to a record is notified: a recipient may turn access notices off, but
/// never those of an access that unlocked a restricted item (SPEC 3.7).
pub fn access_notice_due(refuses_access_notices: bool, restricted_unlocked: bool) -> bool {
    !refuses_access_notices || restricted_unlocked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.code()), Some(c));
        }
        assert_eq!(Channel::parse("fax"), None);
    }

    #[test]
    fn news_goes_by_the_chosen_channel() {
        for c in Channel::ALL {
            assert_eq!(channel_for(c, Carries::News, true), c);
        }
        assert_eq!(
            channel_for(Channel::Email, Carries::News, false),
            Channel::Sms
        );
    }

    #[test]
    fn the_access_key_never_waits_in_the_inbox_it_unlocks() {
        assert_eq!(
            channel_for(Channel::App, Carries::AccessKey, true),
            Channel::Sms
        );
        assert_eq!(
            channel_for(Channel::Post, Carries::AccessKey, true),
            Channel::Post
        );
        assert_eq!(
            channel_for(Channel::Email, Carries::AccessKey, true),
            Channel::Email
        );
    }

    #[test]
    fn a_registration_change_never_waits_in_an_inbox_it_may_shut() {
        assert_eq!(
            channel_for(Channel::App, Carries::RegistrationChange, true),
            Channel::Sms
        );
        assert_eq!(
            channel_for(Channel::Email, Carries::RegistrationChange, true),
            Channel::Email
        );
    }

    #[test]
    fn a_one_time_code_goes_only_where_it_arrives_at_once() {
        for c in Channel::ALL {
            let got = channel_for(c, Carries::OneTimeCode, true);
            assert!(matches!(got, Channel::Sms | Channel::Email), "{c:?}");
        }
        assert_eq!(
            channel_for(Channel::Email, Carries::OneTimeCode, true),
            Channel::Email
        );
        assert_eq!(
            channel_for(Channel::Post, Carries::OneTimeCode, true),
            Channel::Sms
        );
    }

    #[test]
    fn an_urgent_notice_goes_everywhere_once() {
        assert_eq!(
            every_channel(Channel::Post, true),
            vec![Channel::Post, Channel::Sms, Channel::Email, Channel::App]
        );
        assert_eq!(
            every_channel(Channel::App, false),
            vec![Channel::App, Channel::Sms]
        );
        assert_eq!(
            every_channel(Channel::Email, true),
            vec![Channel::Email, Channel::Sms, Channel::App]
        );
    }

    #[test]
    fn a_channel_needs_its_address_on_file() {
        assert_eq!(
            reachable(Channel::Email, false, true),
            Err(Unreachable::NoEmail)
        );
        assert_eq!(
            reachable(Channel::Post, true, false),
            Err(Unreachable::NoAddress)
        );
        assert_eq!(reachable(Channel::Sms, false, false), Ok(()));
        assert_eq!(reachable(Channel::App, false, false), Ok(()));
        assert_eq!(reachable(Channel::Email, true, false), Ok(()));
    }

    #[test]
    fn restricted_access_notices_cannot_be_turned_off() {
        assert!(access_notice_due(false, false));
        assert!(!access_notice_due(true, false));
        assert!(access_notice_due(true, true));
        assert!(access_notice_due(false, true));
    }
}
