//! How a recipient is reached (SPEC 3.2: the notification channel).

crate::coded_enum! {
    /// A notification channel.
    pub enum Channel {
        Sms = "sms";
        Email = "email";
        Post = "post";
        App = "app";
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
