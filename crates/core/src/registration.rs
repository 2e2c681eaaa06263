//! A registration as entered (SPEC 3.2, 3.3), parsed once into a [`NewRecipient`]: every field
//! checked and typed, every problem named, then the age and capacity rules
//! ([`crate::recipient::check_registration`]). What leaves here cannot be invalid, so the use
//! case that stores it has nothing left to check.

use time::Date;
use time::macros::format_description;

use crate::contact::{Email, Phone};
use crate::field::{FieldError, person_name, too_long};
use crate::identity::{Document, DocumentError, DocumentType, HkidError};
use crate::locale::Locale;
use crate::notification::Channel;
use crate::recipient::{Capacity, RegistrationError, SdmCategory, SdmClaim, check_registration};

/// The longest name (English or Chinese) of a recipient or an SDM, in characters.
pub const NAME: usize = 100;
/// The longest postal address, in characters.
pub const ADDRESS: usize = 300;
/// The longest reference of an SDM's proof of relationship (a certificate number, a court
/// order's reference), in characters.
pub const RELATIONSHIP_PROOF: usize = 200;

crate::coded_enum! {
    /// How a registration reached the office (SPEC 3.2).
    pub enum RegistrationChannel {
        /// At a registration centre: identity seen, active at once.
        InPerson = "in-person";
        /// Online: waits for verification.
        Online = "online";
        /// By mail or fax: waits for verification.
        MailFax = "mail-fax";
        /// At a provider, by its registration staff: identity seen, active at once.
        Hcp = "hcp";
    }
}

impl RegistrationChannel {
    /// Whether the person's identity was verified as they registered (so the registration is
    /// active at once).
    pub fn verifies_identity(self) -> bool {
        matches!(
            self,
            RegistrationChannel::InPerson | RegistrationChannel::Hcp
        )
    }
}

crate::coded_enum! {
    /// Sex as registered.
    pub enum Sex {
        Female = "female";
        Male = "male";
        Unknown = "unknown";
    }
}

/// An identity document as entered.
#[derive(Debug, Clone, Default)]
pub struct DocumentInput {
    /// `hkid`, `passport`, ... ([`DocumentType`]).
    pub kind: String,
    /// Issuing place; defaults to HK for HKIDs and birth certificates, MO for Macao identity
    /// cards and CN for mainland travel permits.
    pub issuer: Option<String>,
    pub number: String,
}

impl DocumentInput {
    /// The document, or the problem at `field` + `/type`, `/issuer` or `/number`. Shared by
    /// registrations, accounts and the card reader's look-up.
    pub fn parse(&self, field: &str) -> Result<Document, FieldError> {
        let problem = |part: &str, code, message: String| {
            FieldError::new(&format!("{field}/{part}"), code, message)
        };
        let Some(kind) = DocumentType::parse(self.kind.trim()) else {
            return Err(problem(
                "type",
                "invalid-document-type",
                "unknown document type".to_owned(),
            ));
        };
        let default_issuer = match kind {
            DocumentType::Hkid | DocumentType::HkBirthCertificate => "HK",
            DocumentType::MacaoId => "MO",
            DocumentType::MainlandTravelPermit => "CN",
            DocumentType::Passport | DocumentType::Other => "",
        };
        let issuer = self.issuer.as_deref().unwrap_or(default_issuer);
        Document::parse(kind, issuer, &self.number).map_err(|e| match e {
            DocumentError::Hkid(HkidError::CheckDigit) => problem(
                "number",
                "invalid-hkid",
                "the check digit does not match".to_owned(),
            ),
            DocumentError::Hkid(HkidError::Format) => {
                problem("number", "invalid-hkid", HkidError::Format.to_string())
            }
            e @ (DocumentError::Issuer | DocumentError::WrongIssuer(_)) => {
                problem("issuer", "invalid-issuer", e.to_string())
            }
            e => problem("number", "invalid-document-number", e.to_string()),
        })
    }
}

/// A substitute decision maker as entered.
#[derive(Debug, Clone, Default)]
pub struct SdmInput {
    pub name_en: String,
    pub name_zh: Option<String>,
    pub document: DocumentInput,
    /// `parent`, `guardian`, ... ([`SdmCategory`]).
    pub category: String,
    pub no_higher_available: bool,
    /// Reference of the proof of relationship seen (birth certificate number, court order).
    pub relationship_proof: Option<String>,
    pub phone: String,
    pub email: Option<String>,
    /// How notices to the SDM reach them: `sms` (default) or `email` (issue 26: the SDM's own
    /// channel, not the recipient's).
    pub notify_channel: Option<String>,
}

/// A registration as entered.
#[derive(Debug, Clone, Default)]
pub struct RegistrationInput {
    /// A [`RegistrationChannel`] code.
    pub channel: String,
    pub name_en: String,
    pub name_zh: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// A [`Sex`] code.
    pub sex: String,
    /// `able` (default) or `unable`: whether a person of 16 or over can consent.
    pub capacity: Option<String>,
    pub document: DocumentInput,
    pub phone: String,
    pub phone2: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    /// `en` or `zh-HK`.
    pub language: String,
    /// A [`Channel`] code: how notices reach the person.
    pub notify_channel: String,
    pub refuses_access_notices: bool,
    pub sdm: Option<SdmInput>,
}

/// A registration that may be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecipient {
    pub channel: RegistrationChannel,
    pub name_en: String,
    pub name_zh: Option<String>,
    pub date_of_birth: Date,
    pub sex: Sex,
    pub capacity: Capacity,
    pub document: Document,
    pub phone: Phone,
    pub phone2: Option<Phone>,
    pub email: Option<Email>,
    pub address: Option<String>,
    pub language: Locale,
    pub notify_channel: Channel,
    pub refuses_access_notices: bool,
    pub sdm: Option<NewSdm>,
}

/// The SDM who registers a recipient, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSdm {
    pub name_en: String,
    pub name_zh: Option<String>,
    pub document: Document,
    pub claim: SdmClaim,
    pub relationship_proof: Option<String>,
    pub phone: Phone,
    pub email: Option<Email>,
    /// SMS or e-mail.
    pub notify_channel: Channel,
}

/// Why a registration as entered cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Fields that are wrong on their own, every one named, in the order of the form.
    Fields(Vec<FieldError>),
    /// The fields are right, but the age and capacity rules refuse who registers whom.
    Rule(RegistrationError),
}

/// A `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s.trim(), format_description!("[year]-[month]-[day]")).ok()
}

/// The `YYYY-MM-DD` text of a date, as [`parse_date`] reads it and the store keeps it.
pub fn date_text(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The problems found so far.
struct Problems(Vec<FieldError>);

impl Problems {
    fn push(&mut self, field: &str, code: &'static str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, code, message));
    }

    fn name(&mut self, field: &str, value: &str, required: bool) -> Option<String> {
        person_name(&mut self.0, field, value, NAME, required)
    }

    fn optional_name(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        value.and_then(|v| self.name(field, v, false))
    }

    fn phone(&mut self, field: &str, value: &str) -> Option<Phone> {
        Phone::parse(value)
            .map_err(|e| self.push(field, "invalid-phone", e.to_string()))
            .ok()
    }

    fn document(&mut self, field: &str, d: &DocumentInput) -> Option<Document> {
        d.parse(field).map_err(|e| self.0.push(e)).ok()
    }

    fn length(&mut self, field: &str, value: Option<&str>, max: usize) {
        if let Some(p) = value.and_then(|v| too_long(field, v, max)) {
            self.0.push(p);
        }
    }

    fn coded<T>(
        &mut self,
        field: &str,
        value: &str,
        parse: fn(&str) -> Option<T>,
        code: &'static str,
        expected: &str,
    ) -> Option<T> {
        let parsed = parse(value);
        if parsed.is_none() {
            self.push(field, code, expected);
        }
        parsed
    }
}

/// Text that is there: trimmed, `None` when blank.
fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

impl NewRecipient {
    /// Parses `input`, registered on `today` (a Hong Kong date).
    pub fn parse(input: &RegistrationInput, today: Date) -> Result<NewRecipient, Refused> {
        let mut f = Problems(Vec::new());
        let channel = f.coded(
            "/channel",
            &input.channel,
            RegistrationChannel::parse,
            "invalid-channel",
            "in-person, online, mail-fax or hcp",
        );
        let name_en = f.name("/name_en", &input.name_en, true);
        let name_zh = f.optional_name("/name_zh", input.name_zh.as_deref());
        let born = f.coded(
            "/date_of_birth",
            &input.date_of_birth,
            parse_date,
            "invalid-date",
            "a date such as 1980-01-31",
        );
        let sex = f.coded(
            "/sex",
            &input.sex,
            Sex::parse,
            "invalid-sex",
            "female, male or unknown",
        );
        let capacity = f.coded(
            "/capacity",
            input.capacity.as_deref().unwrap_or("able"),
            Capacity::parse,
            "invalid-capacity",
            "able or unable",
        );
        let document = f.document("/document", &input.document);
        let phone = f.phone("/phone", &input.phone);
        let phone2 = present(input.phone2.as_deref()).and_then(|p| f.phone("/phone2", p));
        let email = present(input.email.as_deref()).and_then(|e| {
            Email::parse(e)
                .map_err(|err| f.push("/email", "invalid-email", err.to_string()))
                .ok()
        });
        let address = present(input.address.as_deref());
        f.length("/address", address, ADDRESS);
        let proof = input
            .sdm
            .as_ref()
            .and_then(|s| present(s.relationship_proof.as_deref()));
        f.length("/sdm/relationship_proof", proof, RELATIONSHIP_PROOF);
        // Only the two tags ehrshare speaks, as written: `Locale::parse` is lenient for browsers.
        let language = matches!(input.language.as_str(), "en" | "zh-HK")
            .then(|| Locale::parse(&input.language))
            .flatten();
        if language.is_none() {
            f.push("/language", "invalid-language", "en or zh-HK");
        }
        let notify = f.coded(
            "/notify_channel",
            &input.notify_channel,
            Channel::parse,
            "invalid-channel",
            "sms, email, post or app",
        );
        if let Some(c) = notify {
            match crate::notification::reachable(c, email.is_some(), address.is_some()) {
                Err(crate::notification::Unreachable::NoEmail) => {
                    f.push("/email", "required", "required for notifications by e-mail")
                }
                Err(crate::notification::Unreachable::NoAddress) => {
                    f.push("/address", "required", "required for notifications by post")
                }
                Ok(()) => {}
            }
        }
        let sdm = input.sdm.as_ref().map(|s| {
            let category = f.coded(
                "/sdm/category",
                s.category.trim(),
                SdmCategory::parse,
                "invalid-sdm-category",
                "unknown category",
            );
            let name_en = f.name("/sdm/name_en", &s.name_en, true);
            let name_zh = f.optional_name("/sdm/name_zh", s.name_zh.as_deref());
            let document = f.document("/sdm/document", &s.document);
            let phone = f.phone("/sdm/phone", &s.phone);
            let email = present(s.email.as_deref()).and_then(|e| {
                Email::parse(e)
                    .map_err(|err| f.push("/sdm/email", "invalid-email", err.to_string()))
                    .ok()
            });
            let channel = match present(s.notify_channel.as_deref()) {
                None | Some("sms") => Some(Channel::Sms),
                Some("email") if email.is_some() => Some(Channel::Email),
                Some("email") => {
                    f.push(
                        "/sdm/email",
                        "required",
                        "required for notifications by e-mail",
                    );
                    None
                }
                Some(_) => {
                    f.push("/sdm/notify_channel", "invalid-channel", "sms or email");
                    None
                }
            };
            match (category, name_en, document, phone, channel) {
                (Some(category), Some(name_en), Some(document), Some(phone), Some(channel)) => {
                    Some(NewSdm {
                        name_en,
                        name_zh,
                        document,
                        claim: SdmClaim {
                            category,
                            no_higher_available: s.no_higher_available,
                        },
                        relationship_proof: proof.map(str::to_owned),
                        phone,
                        email,
                        notify_channel: channel,
                    })
                }
                _ => None,
            }
        });
        let (
            Some(channel),
            Some(name_en),
            Some(born),
            Some(sex),
            Some(capacity),
            Some(document),
            Some(phone),
            Some(language),
            Some(notify),
            true,
        ) = (
            channel,
            name_en,
            born,
            sex,
            capacity,
            document,
            phone,
            language,
            notify,
            f.0.is_empty(),
        )
        else {
            return Err(Refused::Fields(f.0));
        };
        // Every field parsed: an SDM given is complete here.
        let sdm = sdm.flatten();
        check_registration(born, capacity, sdm.as_ref().map(|s| s.claim), today)
            .map_err(Refused::Rule)?;
        Ok(NewRecipient {
            channel,
            name_en,
            name_zh,
            date_of_birth: born,
            sex,
            capacity,
            document,
            phone,
            phone2,
            email,
            address: address.map(str::to_owned),
            language,
            notify_channel: notify,
            refuses_access_notices: input.refuses_access_notices,
            sdm,
        })
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    const TODAY: Date = date!(2026 - 12 - 07);

    fn adult() -> RegistrationInput {
        RegistrationInput {
            channel: "in-person".to_owned(),
            name_en: "CHAN, Tai Man".to_owned(),
            name_zh: Some("陳大文".to_owned()),
            date_of_birth: "1980-01-31".to_owned(),
            sex: "male".to_owned(),
            capacity: None,
            document: DocumentInput {
                kind: "hkid".to_owned(),
                issuer: None,
                number: "A123456(3)".to_owned(),
            },
            phone: "9123 4567".to_owned(),
            phone2: Some(" ".to_owned()),
            email: None,
            address: None,
            language: "zh-HK".to_owned(),
            notify_channel: "sms".to_owned(),
            refuses_access_notices: false,
            sdm: None,
        }
    }

    fn fields(r: Result<NewRecipient, Refused>) -> Vec<(String, &'static str)> {
        match r {
            Err(Refused::Fields(f)) => f.into_iter().map(|e| (e.field, e.code)).collect(),
            other => panic!("expected field problems, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_adult_parses_into_typed_values() {
        let r = NewRecipient::parse(&adult(), TODAY).expect("valid");
        assert_eq!(r.channel, RegistrationChannel::InPerson);
        assert!(r.channel.verifies_identity());
        assert_eq!(r.date_of_birth, date!(1980 - 01 - 31));
        assert_eq!(date_text(r.date_of_birth), "1980-01-31");
        assert_eq!(
            parse_date(&date_text(date!(0999 - 02 - 03))),
            Some(date!(0999 - 02 - 03))
        );
        assert_eq!(r.sex, Sex::Male);
        assert_eq!(r.capacity, Capacity::Able);
        assert_eq!(r.document.kind, DocumentType::Hkid);
        assert_eq!(r.document.issuer, "HK");
        assert_eq!(r.phone2, None, "a blank second phone is none");
        assert_eq!(r.language, Locale::ZhHk);
        assert_eq!(r.notify_channel, Channel::Sms);
        assert!(r.sdm.is_none());
    }

    #[test]
    fn every_wrong_field_is_named_in_form_order() {
        let input = RegistrationInput {
            channel: "fax".to_owned(),
            name_en: " ".to_owned(),
            date_of_birth: "31/01/1980".to_owned(),
            sex: "M".to_owned(),
            capacity: Some("maybe".to_owned()),
            document: DocumentInput {
                kind: "hkid".to_owned(),
                issuer: None,
                number: "A123456(4)".to_owned(),
            },
            phone: "12".to_owned(),
            email: Some("not-an-address".to_owned()),
            address: Some("x".repeat(ADDRESS + 1)),
            language: "zh-hk".to_owned(),
            notify_channel: "pigeon".to_owned(),
            ..adult()
        };
        assert_eq!(
            fields(NewRecipient::parse(&input, TODAY)),
            [
                ("/channel".to_owned(), "invalid-channel"),
                ("/name_en".to_owned(), "required"),
                ("/date_of_birth".to_owned(), "invalid-date"),
                ("/sex".to_owned(), "invalid-sex"),
                ("/capacity".to_owned(), "invalid-capacity"),
                ("/document/number".to_owned(), "invalid-hkid"),
                ("/phone".to_owned(), "invalid-phone"),
                ("/email".to_owned(), "invalid-email"),
                ("/address".to_owned(), "too-long"),
                ("/language".to_owned(), "invalid-language"),
                ("/notify_channel".to_owned(), "invalid-channel"),
            ]
        );
    }

    #[test]
    fn a_channel_needs_its_address() {
        let by_email = RegistrationInput {
            notify_channel: "email".to_owned(),
            ..adult()
        };
        assert_eq!(
            fields(NewRecipient::parse(&by_email, TODAY)),
            [("/email".to_owned(), "required")]
        );
        let by_post = RegistrationInput {
            notify_channel: "post".to_owned(),
            address: Some("  ".to_owned()),
            ..adult()
        };
        assert_eq!(
            fields(NewRecipient::parse(&by_post, TODAY)),
            [("/address".to_owned(), "required")]
        );
    }

    fn child_with(category: &str, declared: bool) -> RegistrationInput {
        RegistrationInput {
            date_of_birth: "2015-03-01".to_owned(),
            sdm: Some(SdmInput {
                name_en: "CHAN, Siu Ming".to_owned(),
                name_zh: None,
                document: DocumentInput {
                    kind: "passport".to_owned(),
                    issuer: Some("GB".to_owned()),
                    number: "123456789".to_owned(),
                },
                category: category.to_owned(),
                no_higher_available: declared,
                relationship_proof: Some(" BC-1 ".to_owned()),
                phone: "61234567".to_owned(),
                email: None,
                notify_channel: None,
            }),
            ..adult()
        }
    }

    #[test]
    fn an_sdm_is_told_by_sms_or_by_their_own_email() {
        let r = NewRecipient::parse(&child_with("parent", false), TODAY).expect("valid");
        assert_eq!(r.sdm.expect("the SDM").notify_channel, Channel::Sms);
        let mut input = child_with("parent", false);
        let sdm = input.sdm.as_mut().unwrap();
        sdm.notify_channel = Some("email".to_owned());
        let Err(Refused::Fields(fields)) = NewRecipient::parse(&input, TODAY) else {
            panic!("e-mail without an address");
        };
        assert_eq!(fields[0].field, "/sdm/email");
        let sdm = input.sdm.as_mut().unwrap();
        sdm.email = Some("parent@example.org".to_owned());
        let r = NewRecipient::parse(&input, TODAY).expect("valid");
        let sdm = r.sdm.expect("the SDM");
        assert_eq!(sdm.notify_channel, Channel::Email);
        assert_eq!(
            sdm.email.map(|e| e.as_str().to_owned()).as_deref(),
            Some("parent@example.org")
        );
        let mut input = child_with("parent", false);
        input.sdm.as_mut().unwrap().notify_channel = Some("post".to_owned());
        let Err(Refused::Fields(fields)) = NewRecipient::parse(&input, TODAY) else {
            panic!("post is not an SDM's channel here");
        };
        assert_eq!(fields[0].field, "/sdm/notify_channel");
    }

    #[test]
    fn a_child_registers_through_an_sdm_under_the_rules() {
        let r = NewRecipient::parse(&child_with("parent", false), TODAY).expect("valid");
        let sdm = r.sdm.expect("the SDM");
        assert_eq!(sdm.claim.category, SdmCategory::Parent);
        assert_eq!(sdm.relationship_proof.as_deref(), Some("BC-1"));
        assert_eq!(
            NewRecipient::parse(&child_with("child-guardian", false), TODAY),
            Err(Refused::Rule(RegistrationError::HigherPriorityNotDeclared))
        );
        assert_eq!(
            NewRecipient::parse(
                &RegistrationInput {
                    sdm: None,
                    ..child_with("parent", false)
                },
                TODAY
            ),
            Err(Refused::Rule(RegistrationError::SdmRequiredForChild))
        );
        assert_eq!(
            fields(NewRecipient::parse(&child_with("uncle", false), TODAY)),
            [("/sdm/category".to_owned(), "invalid-sdm-category")]
        );
    }
}
