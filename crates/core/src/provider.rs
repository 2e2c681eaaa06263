//! Healthcare providers (SPEC 4.1): kinds, districts, and the registration lifecycle
//! draft -> submitted -> accepted | rejected -> active, with lapse, suspension, withdrawal and
//! cancellation.
//!
//! The lapse of an accepted application (60 days without technical set-up) and the effect of a
//! withdrawal or cancellation dated in the future are decided against the clock when the status
//! is read ([`Lifecycle::status_at`]), never by a batch job that could run late.

use time::{Duration, OffsetDateTime};

/// How long an accepted application waits for technical set-up before it lapses.
pub const SET_UP_PERIOD: Duration = Duration::days(60);

crate::coded_enum! {
    /// Hong Kong's 18 districts.
    pub enum District {
        CentralAndWestern = "central-and-western", "Central and Western", "中西區";
        WanChai = "wan-chai", "Wan Chai", "灣仔";
        Eastern = "eastern", "Eastern", "東區";
        Southern = "southern", "Southern", "南區";
        YauTsimMong = "yau-tsim-mong", "Yau Tsim Mong", "油尖旺";
        ShamShuiPo = "sham-shui-po", "Sham Shui Po", "深水埗";
        KowloonCity = "kowloon-city", "Kowloon City", "九龍城";
        WongTaiSin = "wong-tai-sin", "Wong Tai Sin", "黃大仙";
        KwunTong = "kwun-tong", "Kwun Tong", "觀塘";
        KwaiTsing = "kwai-tsing", "Kwai Tsing", "葵青";
        TsuenWan = "tsuen-wan", "Tsuen Wan", "荃灣";
        TuenMun = "tuen-mun", "Tuen Mun", "屯門";
        YuenLong = "yuen-long", "Yuen Long", "元朗";
        North = "north", "North", "北區";
        TaiPo = "tai-po", "Tai Po", "大埔";
        ShaTin = "sha-tin", "Sha Tin", "沙田";
        SaiKung = "sai-kung", "Sai Kung", "西貢";
        Islands = "islands", "Islands", "離島";
    }
}

crate::coded_enum! {
    /// Kinds of healthcare provider.
    pub enum HcpType {
        Hospital = "hospital", "Hospital", "醫院";
        Clinic = "clinic", "Clinic", "診所";
        CmClinic = "cm-clinic", "Chinese medicine clinic", "中醫診所";
        ElderlyHome = "elderly-home", "Residential care home for the elderly", "安老院舍";
        Laboratory = "laboratory", "Medical laboratory", "醫務化驗所";
        ImagingCentre = "imaging-centre", "Imaging centre", "醫學影像中心";
        DentalClinic = "dental-clinic", "Dental clinic", "牙科診所";
        Pharmacy = "pharmacy", "Pharmacy", "藥房";
        Other = "other", "Other healthcare provider", "其他醫護機構";
    }
}

crate::coded_enum! {
    /// Public providers have deemed consent (SPEC 3.4).
    pub enum Sector {
        Public = "public", "Public", "公營";
        Private = "private", "Private", "私營";
    }
}

/// Where a provider's registration stands, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    Draft,
    Submitted {
        at: OffsetDateTime,
    },
    Accepted {
        at: OffsetDateTime,
    },
    Rejected {
        at: OffsetDateTime,
        reason: String,
    },
    Active {
        since: OffsetDateTime,
    },
    Suspended {
        at: OffsetDateTime,
        reason: String,
    },
    /// Withdrawn by the provider, effective from `effective` (may be in the future).
    Withdrawn {
        effective: OffsetDateTime,
        reason: String,
    },
    /// Cancelled by the office, effective from `effective` (may be in the future).
    Cancelled {
        effective: OffsetDateTime,
        reason: String,
    },
}

/// A provider's status at a moment, as everyone else sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Draft,
    Submitted,
    Accepted,
    Rejected,
    /// Accepted more than 60 days ago without set-up.
    Lapsed,
    Active,
    Suspended,
    Withdrawn,
    Cancelled,
}

impl Status {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
            Status::Lapsed => "lapsed",
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Withdrawn => "withdrawn",
            Status::Cancelled => "cancelled",
        }
    }

    /// Whether the provider may use the system and appears in the directory.
    pub fn is_active(self) -> bool {
        self == Status::Active
    }
}

/// What can happen to a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Submit,
    Accept,
    Reject {
        reason: String,
    },
    /// Technical set-up done (first user administrator enrolled, or marked by the office).
    CompleteSetUp,
    Suspend {
        reason: String,
    },
    Reinstate,
    Withdraw {
        effective: OffsetDateTime,
        reason: String,
    },
    Cancel {
        effective: OffsetDateTime,
        reason: String,
    },
}

/// Why an event does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("a registration that is {status} cannot be {event}")]
    NotAllowed {
        status: &'static str,
        event: &'static str,
    },
    #[error("a reason is required")]
    ReasonRequired,
    #[error("the effective date cannot be in the past")]
    EffectiveInPast,
}

fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Submit => "submitted",
        Event::Accept => "accepted",
        Event::Reject { .. } => "rejected",
        Event::CompleteSetUp => "set up",
        Event::Suspend { .. } => "suspended",
        Event::Reinstate => "reinstated",
        Event::Withdraw { .. } => "withdrawn",
        Event::Cancel { .. } => "cancelled",
    }
}

/// The registration lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    pub stage: Stage,
}

impl Lifecycle {
    /// The status at `now`.
    pub fn status_at(&self, now: OffsetDateTime) -> Status {
        match &self.stage {
            Stage::Draft => Status::Draft,
            Stage::Submitted { .. } => Status::Submitted,
            Stage::Accepted { at } if now > *at + SET_UP_PERIOD => Status::Lapsed,
            Stage::Accepted { .. } => Status::Accepted,
            Stage::Rejected { .. } => Status::Rejected,
            Stage::Active { .. } => Status::Active,
            Stage::Suspended { .. } => Status::Suspended,
            Stage::Withdrawn { effective, .. } if now >= *effective => Status::Withdrawn,
            Stage::Cancelled { effective, .. } if now >= *effective => Status::Cancelled,
            // Not yet effective: still active until then.
            Stage::Withdrawn { .. } | Stage::Cancelled { .. } => Status::Active,
        }
    }

    /// Applies `event` at `now`.
    pub fn apply(&self, event: Event, now: OffsetDateTime) -> Result<Lifecycle, TransitionError> {
        let status = self.status_at(now);
        let refuse = || TransitionError::NotAllowed {
            status: status.code(),
            event: event_name(&event),
        };
        let need_reason = |reason: &str| {
            if reason.trim().is_empty() {
                Err(TransitionError::ReasonRequired)
            } else {
                Ok(reason.trim().to_owned())
            }
        };
        let stage = match (&event, status) {
            (Event::Submit, Status::Draft) => Stage::Submitted { at: now },
            (Event::Accept, Status::Submitted) => Stage::Accepted { at: now },
            (Event::Reject { reason }, Status::Submitted) => Stage::Rejected {
                at: now,
                reason: need_reason(reason)?,
            },
            (Event::CompleteSetUp, Status::Accepted) => Stage::Active { since: now },
            (Event::Suspend { reason }, Status::Active) => Stage::Suspended {
                at: now,
                reason: need_reason(reason)?,
            },
            (Event::Reinstate, Status::Suspended) => Stage::Active { since: now },
            (Event::Withdraw { effective, reason }, Status::Active | Status::Suspended) => {
                if *effective < now {
                    return Err(TransitionError::EffectiveInPast);
                }
                Stage::Withdrawn {
                    effective: *effective,
                    reason: need_reason(reason)?,
                }
            }
            (
                Event::Cancel { effective, reason },
                Status::Accepted | Status::Lapsed | Status::Active | Status::Suspended,
            ) => {
                if *effective < now {
                    return Err(TransitionError::EffectiveInPast);
                }
                Stage::Cancelled {
                    effective: *effective,
                    reason: need_reason(reason)?,
                }
            }
            _ => return Err(refuse()),
        };
        Ok(Lifecycle { stage })
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-01-15 09:30 UTC);

    fn accepted() -> Lifecycle {
        Lifecycle {
            stage: Stage::Draft,
        }
        .apply(Event::Submit, T0)
        .unwrap()
        .apply(Event::Accept, T0)
        .unwrap()
    }

    #[test]
    fn an_accepted_application_lapses_after_60_days() {
        let l = accepted();
        assert_eq!(l.status_at(T0 + Duration::days(60)), Status::Accepted);
        assert_eq!(
            l.status_at(T0 + Duration::days(60) + Duration::seconds(1)),
            Status::Lapsed
        );
        assert_eq!(l.status_at(T0 + Duration::days(61)), Status::Lapsed);
        // Too late to set up.
        assert!(matches!(
            l.apply(Event::CompleteSetUp, T0 + Duration::days(61)),
            Err(TransitionError::NotAllowed {
                status: "lapsed",
                ..
            })
        ));
        let active = l
            .apply(Event::CompleteSetUp, T0 + Duration::days(59))
            .unwrap();
        assert!(active.status_at(T0 + Duration::days(400)).is_active());
    }

    #[test]
    fn suspension_and_withdrawal() {
        let active = accepted().apply(Event::CompleteSetUp, T0).unwrap();
        let suspended = active
            .apply(
                Event::Suspend {
                    reason: "under review".into(),
                },
                T0,
            )
            .unwrap();
        assert_eq!(suspended.status_at(T0), Status::Suspended);
        assert!(!suspended.status_at(T0).is_active());
        assert_eq!(
            active.apply(Event::Suspend { reason: " ".into() }, T0),
            Err(TransitionError::ReasonRequired)
        );
        let back = suspended.apply(Event::Reinstate, T0).unwrap();
        assert!(back.status_at(T0).is_active());

        let later = T0 + Duration::days(30);
        let withdrawn = back
            .apply(
                Event::Withdraw {
                    effective: later,
                    reason: "clinic closing".into(),
                },
                T0,
            )
            .unwrap();
        assert_eq!(
            withdrawn.status_at(later - Duration::seconds(1)),
            Status::Active
        );
        assert_eq!(withdrawn.status_at(later), Status::Withdrawn);
        assert_eq!(
            back.apply(
                Event::Withdraw {
                    effective: T0 - Duration::days(1),
                    reason: "x".into()
                },
                T0
            ),
            Err(TransitionError::EffectiveInPast)
        );
    }

    #[test]
    fn refuses_what_does_not_follow() {
        let draft = Lifecycle {
            stage: Stage::Draft,
        };
        assert!(draft.apply(Event::Accept, T0).is_err());
        assert!(draft.apply(Event::CompleteSetUp, T0).is_err());
        let rejected = draft
            .apply(Event::Submit, T0)
            .unwrap()
            .apply(
                Event::Reject {
                    reason: "documents missing".into(),
                },
                T0,
            )
            .unwrap();
        assert_eq!(rejected.status_at(T0), Status::Rejected);
        assert!(rejected.apply(Event::Accept, T0).is_err());
    }

    #[test]
    fn codes_round_trip_and_there_are_18_districts() {
        assert_eq!(District::ALL.len(), 18);
        for d in District::ALL {
            assert_eq!(District::parse(d.code()), Some(d));
            assert!(!d.name_zh().is_empty() && !d.name_en().is_empty());
        }
        for t in HcpType::ALL {
            assert_eq!(HcpType::parse(t.code()), Some(t));
        }
        assert_eq!(Sector::parse("public"), Some(Sector::Public));
        assert_eq!(District::parse("kowloon"), None);
    }
}

/// The kinds of file accepted as supporting documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentMedia {
    Pdf,
    Png,
    Jpeg,
}

impl DocumentMedia {
    /// The media type.
    pub fn media_type(self) -> &'static str {
        match self {
            DocumentMedia::Pdf => "application/pdf",
            DocumentMedia::Png => "image/png",
            DocumentMedia::Jpeg => "image/jpeg",
        }
    }
}

/// Why an upload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    #[error("supporting documents are PDF, PNG or JPEG files")]
    MediaType,
    #[error("the file's content is not what its media type says")]
    ContentMismatch,
    #[error("the file is empty")]
    Empty,
    #[error("the file name must be 1 to 200 characters without slashes or control characters")]
    FileName,
}

/// Checks an uploaded supporting document: an accepted media type whose content starts as that
/// type's files do (a renamed executable is refused), and a plain file name.
pub fn check_upload(
    media_type: &str,
    content: &[u8],
    file_name: &str,
) -> Result<DocumentMedia, UploadError> {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let media = match essence.as_str() {
        "application/pdf" => DocumentMedia::Pdf,
        "image/png" => DocumentMedia::Png,
        "image/jpeg" => DocumentMedia::Jpeg,
        _ => return Err(UploadError::MediaType),
    };
    if content.is_empty() {
        return Err(UploadError::Empty);
    }
    let magic: &[u8] = match media {
        DocumentMedia::Pdf => b"%PDF-",
        DocumentMedia::Png => b"\x89PNG\r\n\x1a\n",
        DocumentMedia::Jpeg => b"\xff\xd8\xff",
    };
    if !content.starts_with(magic) {
        return Err(UploadError::ContentMismatch);
    }
    let name = file_name.trim();
    if name.is_empty()
        || name.chars().count() > 200
        || name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
        || name == "."
        || name == ".."
    {
        return Err(UploadError::FileName);
    }
    Ok(media)
}

#[cfg(test)]
mod upload_tests {
    use super::*;

    #[test]
    fn uploads() {
        assert_eq!(
            check_upload("application/pdf", b"%PDF-1.7 ...", "br.pdf"),
            Ok(DocumentMedia::Pdf)
        );
        assert_eq!(
            check_upload(
                "image/png; charset=binary",
                b"\x89PNG\r\n\x1a\nxxxx",
                "br.png"
            ),
            Ok(DocumentMedia::Png)
        );
        assert_eq!(
            check_upload("image/jpeg", b"\xff\xd8\xff\xe0", "br.jpg"),
            Ok(DocumentMedia::Jpeg)
        );
        assert_eq!(
            check_upload("application/pdf", b"MZ\x90\x00", "br.pdf"),
            Err(UploadError::ContentMismatch)
        );
        assert_eq!(
            check_upload("text/html", b"<script>", "x.html"),
            Err(UploadError::MediaType)
        );
        assert_eq!(
            check_upload("application/pdf", b"", "br.pdf"),
            Err(UploadError::Empty)
        );
        assert_eq!(
            check_upload("application/pdf", b"%PDF-", "../etc/passwd"),
            Err(UploadError::FileName)
        );
        assert_eq!(
            check_upload("application/pdf", b"%PDF-", "a\\b"),
            Err(UploadError::FileName)
        );
        assert_eq!(
            check_upload("application/pdf", b"%PDF-", "a\nb"),
            Err(UploadError::FileName)
        );
    }
}
