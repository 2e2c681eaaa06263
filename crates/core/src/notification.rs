//! How a recipient is reached (SPEC 3.2: the notification channel).

/// A notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Sms,
    Email,
    Post,
    App,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 4] = [Channel::Sms, Channel::Email, Channel::Post, Channel::App];

    /// The stable code stored and configured.
    pub fn code(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Post => "post",
            Channel::App => "app",
        }
    }

    /// Parses a code.
    pub fn parse(code: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.code() == code)
    }
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
}
