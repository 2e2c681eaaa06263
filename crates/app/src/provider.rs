//! Healthcare provider registration (SPEC 4.1): the application the office keys in from the
//! form, the lifecycle events, additional service locations, and the public directory.

use ehrshare_core::audit::Outcome;
use ehrshare_core::contact::{Email, Phone};
use ehrshare_core::profession::Role;
use ehrshare_core::provider::{
    District, Event, HcpType, Lifecycle, Sector, Stage, Status, TransitionError,
};
use ehrshare_store::{Conn, change};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::{FieldError, invalid_fields};
use crate::{App, AppError};

pub use ehrshare_store::provider::{
    DirectoryFilter, DocumentRow, HcpRow, LocationRow, Owned, StaffRow,
};

/// How to reach a person named on the application: its authorised person or its contact person.
#[derive(Debug, Clone, Default)]
pub struct ContactInput {
    pub name: String,
    pub position: Option<String>,
    pub phone: String,
    pub email: Option<String>,
}

/// A service location as entered.
#[derive(Debug, Clone, Default)]
pub struct LocationInput {
    pub name_en: String,
    pub name_zh: String,
    pub room_floor: Option<String>,
    pub building: Option<String>,
    pub street: String,
    /// One of the 18 districts (`sha-tin`, ...).
    pub district: String,
    pub phone: String,
}

/// A member of staff named on the application (form part 5.2).
#[derive(Debug, Clone, Default)]
pub struct StaffInput {
    pub name_en: String,
    pub name_zh: Option<String>,
    pub position: Option<String>,
    /// A role code: one of the 13 professions, `registration-staff` or `user-administrator`.
    pub role: String,
    /// Required for the professions.
    pub prof_reg_no: Option<String>,
    pub mobile: String,
    /// Agrees to be listed in the public directory (professionals only).
    pub listed: bool,
}

/// An application as entered from the form.
#[derive(Debug, Clone, Default)]
pub struct ApplicationInput {
    pub name_en: String,
    pub name_zh: String,
    pub br_number: String,
    pub hcp_type: String,
    pub sector: String,
    pub authorised_person: ContactInput,
    pub contact_person: ContactInput,
    pub locations: Vec<LocationInput>,
    /// User administrators and staff; a submitted application names at least one user
    /// administrator (the bridge between the office and the provider's users).
    pub staff: Vec<StaffInput>,
    /// Submit now (otherwise kept as a draft).
    pub submit: bool,
}

/// A provider as shown, with its status now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub hcp: HcpRow,
    pub status: Status,
    pub locations: Vec<LocationRow>,
    /// All staff for the office; the listed professionals in the directory.
    pub staff: Vec<StaffRow>,
}

fn text(f: &mut Vec<FieldError>, field: &str, value: &str, max: usize) -> Option<String> {
    let v = value.trim();
    if v.is_empty() {
        f.push(FieldError {
            field: field.to_owned(),
            code: "required",
            message: "required".into(),
        });
        None
    } else if v.chars().count() > max || v.chars().any(char::is_control) {
        f.push(FieldError {
            field: field.to_owned(),
            code: "too-long",
            message: format!("at most {max} characters, no control characters"),
        });
        None
    } else {
        Some(v.to_owned())
    }
}

fn optional(
    f: &mut Vec<FieldError>,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Option<String> {
    value
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| text(f, field, v, max))
}

fn phone(f: &mut Vec<FieldError>, field: &str, value: &str) -> Option<String> {
    match Phone::parse(value) {
        Ok(p) => Some(p.as_str().to_owned()),
        Err(e) => {
            f.push(FieldError {
                field: field.to_owned(),
                code: "invalid-phone",
                message: e.to_string(),
            });
            None
        }
    }
}

fn contact(f: &mut Vec<FieldError>, field: &str, p: &ContactInput) -> serde_json::Value {
    let name = ehrshare_core::field::person_name(f, &format!("{field}/name"), &p.name, 100, true);
    let position = optional(f, &format!("{field}/position"), p.position.as_deref(), 100);
    let phone = phone(f, &format!("{field}/phone"), &p.phone);
    let email = p
        .email
        .as_deref()
        .filter(|e| !e.trim().is_empty())
        .and_then(|e| match Email::parse(e) {
            Ok(e) => Some(e.as_str().to_owned()),
            Err(err) => {
                f.push(FieldError {
                    field: format!("{field}/email"),
                    code: "invalid-email",
                    message: err.to_string(),
                });
                None
            }
        });
    json!({ "name": name, "position": position, "phone": phone, "email": email })
}

fn location(
    f: &mut Vec<FieldError>,
    field: &str,
    l: &LocationInput,
    hcp_id: Uuid,
    now: OffsetDateTime,
) -> Result<Option<LocationRow>, AppError> {
    let name_en =
        ehrshare_core::field::display_text(f, &format!("{field}/name_en"), &l.name_en, 200, true);
    let name_zh =
        ehrshare_core::field::display_text(f, &format!("{field}/name_zh"), &l.name_zh, 200, true);
    let room_floor = optional(
        f,
        &format!("{field}/room_floor"),
        l.room_floor.as_deref(),
        100,
    );
    let building = optional(f, &format!("{field}/building"), l.building.as_deref(), 200);
    let street = text(f, &format!("{field}/street"), &l.street, 200);
    let district = District::parse(l.district.trim());
    if district.is_none() {
        f.push(FieldError {
            field: format!("{field}/district"),
            code: "invalid-district",
            message: "one of Hong Kong's 18 districts, such as sha-tin".into(),
        });
    }
    let phone = phone(f, &format!("{field}/phone"), &l.phone);
    let (Some(name_en), Some(name_zh), Some(street), Some(district), Some(phone)) =
        (name_en, name_zh, street, district, phone)
    else {
        return Ok(None);
    };
    let mut token = [0u8; 16];
    getrandom::fill(&mut token).map_err(|e| AppError::Internal(e.to_string().into()))?;
    Ok(Some(LocationRow {
        id: Uuid::now_v7(),
        hcp_id,
        name_en,
        name_zh,
        room_floor,
        building,
        street,
        district: district.code().to_owned(),
        phone,
        qr_token: ehrshare_core::audit::checkpoint::hex(&token),
        created_at: now,
    }))
}

fn staff_member(
    f: &mut Vec<FieldError>,
    field: &str,
    s: &StaffInput,
    hcp_id: Uuid,
    now: OffsetDateTime,
) -> Option<StaffRow> {
    use ehrshare_core::profession::{Role, registration_number};
    let name_en =
        ehrshare_core::field::person_name(f, &format!("{field}/name_en"), &s.name_en, 100, true);
    let name_zh = ehrshare_core::field::person_name(
        f,
        &format!("{field}/name_zh"),
        s.name_zh.as_deref().unwrap_or(""),
        100,
        false,
    );
    let position = optional(f, &format!("{field}/position"), s.position.as_deref(), 100);
    let mobile = phone(f, &format!("{field}/mobile"), &s.mobile);
    let role = Role::parse(s.role.trim());
    let prof_reg_no = match role {
        None => {
            f.push(FieldError {
                field: format!("{field}/role"),
                code: "invalid-role",
                message: "one of the 13 professions, registration-staff or user-administrator"
                    .into(),
            });
            None
        }
        Some(r) if r.is_professional() => match s.prof_reg_no.as_deref().map(registration_number) {
            Some(Ok(n)) => Some(n),
            Some(Err(e)) => {
                f.push(FieldError {
                    field: format!("{field}/prof_reg_no"),
                    code: "invalid-registration-number",
                    message: e.to_string(),
                });
                None
            }
            None => {
                f.push(FieldError {
                    field: format!("{field}/prof_reg_no"),
                    code: "required",
                    message: "required for a healthcare professional".into(),
                });
                None
            }
        },
        Some(_) => None,
    };
    let role = role?;
    Some(StaffRow {
        id: Uuid::now_v7(),
        hcp_id,
        name_en: name_en?,
        name_zh,
        position,
        role: role.code().to_owned(),
        prof_reg_no,
        mobile: mobile?,
        listed: s.listed && role.is_professional(),
        created_at: now,
    })
}

/// The lifecycle of a stored provider.
pub(crate) fn lifecycle(h: &HcpRow) -> Result<Lifecycle, AppError> {
    let at = h.stage_at;
    let reason = h.stage_reason.clone().unwrap_or_default();
    let stage = match h.stage.as_str() {
        "draft" => Stage::Draft,
        "submitted" => Stage::Submitted { at },
        "accepted" => Stage::Accepted { at },
        "rejected" => Stage::Rejected { at, reason },
        "active" => Stage::Active { since: at },
        "suspended" => Stage::Suspended { at, reason },
        "withdrawn" => Stage::Withdrawn {
            effective: at,
            reason,
        },
        "cancelled" => Stage::Cancelled {
            effective: at,
            reason,
        },
        other => {
            return Err(AppError::Internal(
                format!("unknown stored stage {other}").into(),
            ));
        }
    };
    Ok(Lifecycle { stage })
}

/// The stored form of a stage.
fn stored(stage: &Stage) -> (&'static str, OffsetDateTime, Option<String>) {
    match stage {
        Stage::Draft => ("draft", OffsetDateTime::UNIX_EPOCH, None),
        Stage::Submitted { at } => ("submitted", *at, None),
        Stage::Accepted { at } => ("accepted", *at, None),
        Stage::Rejected { at, reason } => ("rejected", *at, Some(reason.clone())),
        Stage::Active { since } => ("active", *since, None),
        Stage::Suspended { at, reason } => ("suspended", *at, Some(reason.clone())),
        Stage::Withdrawn { effective, reason } => ("withdrawn", *effective, Some(reason.clone())),
        Stage::Cancelled { effective, reason } => ("cancelled", *effective, Some(reason.clone())),
    }
}

impl App {
    /// Records an application (as a draft, or submitted).
    pub async fn apply_hcp(
        &self,
        caller: &Caller,
        input: ApplicationInput,
    ) -> Result<Provider, AppError> {
        let now = self.clock().now();
        let id = Uuid::now_v7();
        let mut f = Vec::new();
        let name_en =
            ehrshare_core::field::display_text(&mut f, "/name_en", &input.name_en, 200, true);
        let name_zh =
            ehrshare_core::field::display_text(&mut f, "/name_zh", &input.name_zh, 200, true);
        let br = input
            .br_number
            .trim()
            .to_ascii_uppercase()
            .replace([' ', '-'], "");
        if br.is_empty() || br.len() > 20 || !br.chars().all(|c| c.is_ascii_alphanumeric()) {
            f.push(FieldError {
                field: "/br_number".into(),
                code: "invalid-br-number",
                message: "1 to 20 letters and digits".into(),
            });
        }
        let hcp_type = HcpType::parse(input.hcp_type.trim());
        if hcp_type.is_none() {
            f.push(FieldError {
                field: "/hcp_type".into(),
                code: "invalid-hcp-type",
                message: "unknown provider type".into(),
            });
        }
        let sector = Sector::parse(input.sector.trim());
        if sector.is_none() {
            f.push(FieldError {
                field: "/sector".into(),
                code: "invalid-sector",
                message: "public or private".into(),
            });
        }
        let authorised = contact(&mut f, "/authorised_person", &input.authorised_person);
        let contact = contact(&mut f, "/contact_person", &input.contact_person);
        if input.locations.is_empty() {
            f.push(FieldError {
                field: "/locations".into(),
                code: "required",
                message: "at least one service location".into(),
            });
        }
        let mut locations = Vec::new();
        for (i, l) in input.locations.iter().enumerate() {
            if let Some(row) = location(&mut f, &format!("/locations/{i}"), l, id, now)? {
                locations.push(row);
            }
        }
        let mut staff = Vec::new();
        for (i, member) in input.staff.iter().enumerate() {
            if let Some(row) = staff_member(&mut f, &format!("/staff/{i}"), member, id, now) {
                staff.push(row);
            }
        }
        if input.submit
            && !input
                .staff
                .iter()
                .any(|m| Role::parse(m.role.trim()) == Some(Role::UserAdministrator))
        {
            f.push(FieldError {
                field: "/staff".into(),
                code: "user-administrator-required",
                message: "name at least one user administrator".into(),
            });
        }
        let (Some(name_en), Some(name_zh), Some(hcp_type), Some(sector)) =
            (name_en, name_zh, hcp_type, sector)
        else {
            return Err(invalid_fields("the application has invalid fields", f));
        };
        if !f.is_empty() {
            return Err(invalid_fields("the application has invalid fields", f));
        }
        let (stage, stage_at) = if input.submit {
            ("submitted", now)
        } else {
            ("draft", now)
        };
        let hcp = HcpRow {
            id,
            name_en,
            name_zh,
            br_number: br,
            hcp_type: hcp_type.code().to_owned(),
            sector,
            authorised_person: authorised,
            contact_person: contact,
            stage: stage.to_owned(),
            stage_at,
            stage_reason: None,
            created_at: now,
        };
        let mut entry = caller.entry(self, "hcp.apply", Outcome::Allowed);
        entry.record_ids = vec![id];
        let (h, ls, st) = (hcp.clone(), locations.clone(), staff.clone());
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::provider::insert(conn, &h, &ls, &st).await })
        });
        self.audit_with(entry, insert).await?;
        Ok(Provider {
            status: lifecycle(&hcp)?.status_at(now),
            hcp,
            locations,
            staff,
        })
    }

    /// A provider's status now (404 if there is none).
    pub async fn provider_status(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<ehrshare_core::provider::Status, AppError> {
        Ok(self.provider_brief(id, now).await?.1)
    }

    /// A provider's row and status at `now`, in one query (the hot path of every decision).
    pub(crate) async fn provider_brief(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<(HcpRow, ehrshare_core::provider::Status), AppError> {
        let hcp = self.db().hcp_row(id).await?.ok_or(AppError::NotFound)?;
        let status = lifecycle(&hcp)?.status_at(now);
        Ok((hcp, status))
    }

    /// A lifecycle event on a provider (office). A refused event changes nothing: 409.
    pub async fn hcp_event(
        &self,
        caller: &Caller,
        id: Uuid,
        event: Event,
    ) -> Result<Provider, AppError> {
        if let Event::Reject { reason }
        | Event::Suspend { reason }
        | Event::Withdraw { reason, .. }
        | Event::Cancel { reason, .. } = &event
        {
            crate::limits::check("/reason", Some(reason), crate::limits::REASON)?;
        }
        let now = self.clock().now();
        let (hcp, locations) = self.db().hcp(id).await?.ok_or(AppError::NotFound)?;
        let name = match &event {
            Event::Submit => "hcp.submit",
            Event::Accept => "hcp.accept",
            Event::Reject { .. } => "hcp.reject",
            Event::CompleteSetUp => "hcp.complete-set-up",
            Event::Suspend { .. } => "hcp.suspend",
            Event::Reinstate => "hcp.reinstate",
            Event::Withdraw { .. } => "hcp.withdraw",
            Event::Cancel { .. } => "hcp.cancel",
        };
        let next = lifecycle(&hcp)?.apply(event, now).map_err(|e| match e {
            TransitionError::ReasonRequired => AppError::Invalid {
                code: "reason-required",
                message: e.to_string(),
                fields: vec![FieldError {
                    field: "/reason".into(),
                    code: "required",
                    message: "required".into(),
                }],
            },
            TransitionError::EffectiveInPast => AppError::Invalid {
                code: "effective-in-past",
                message: e.to_string(),
                fields: vec![FieldError {
                    field: "/effective".into(),
                    code: "effective-in-past",
                    message: e.to_string(),
                }],
            },
            TransitionError::NotAllowed { .. } => AppError::Conflict {
                code: "invalid-transition",
                message: e.to_string(),
            },
        })?;
        let (stage, at, reason) = stored(&next.stage);
        let mut entry = caller.entry(self, name, Outcome::Allowed);
        entry.record_ids = vec![id];
        entry.reason = reason.clone();
        let update = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::provider::set_stage(conn, id, stage, at, reason.as_deref()).await
            })
        });
        self.audit_with(entry, update).await?;
        let hcp = HcpRow {
            stage: stage.to_owned(),
            stage_at: at,
            stage_reason: next_reason(&next.stage),
            ..hcp
        };
        let staff = self.db().hcp_staff(id, false).await?;
        Ok(Provider {
            status: next.status_at(now),
            hcp,
            locations,
            staff,
        })
    }

    /// Adds a service location (the "additional healthcare service location" form).
    pub async fn add_location(
        &self,
        caller: &Caller,
        id: Uuid,
        input: LocationInput,
    ) -> Result<LocationRow, AppError> {
        let now = self.clock().now();
        if self.db().hcp(id).await?.is_none() {
            return Err(AppError::NotFound);
        }
        let mut f = Vec::new();
        let Some(row) = location(&mut f, "", &input, id, now)? else {
            return Err(invalid_fields("the application has invalid fields", f));
        };
        let mut entry = caller.entry(self, "hcp.add-location", Outcome::Allowed);
        entry.record_ids = vec![id, row.id];
        let l = row.clone();
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::provider::insert_location(conn, &l).await })
        });
        self.audit_with(entry, insert).await?;
        Ok(row)
    }

    /// Stores a supporting document (PDF, PNG or JPEG whose content matches its type) with its
    /// SHA-256. The size limit is the server's body limit.
    pub async fn upload_hcp_document(
        &self,
        caller: &Caller,
        hcp_id: Uuid,
        kind: &str,
        file_name: &str,
        media_type: &str,
        content: Vec<u8>,
    ) -> Result<DocumentRow, AppError> {
        use ehrshare_core::provider::{UploadError, check_upload};
        use sha2::{Digest, Sha256};
        if self.db().hcp(hcp_id).await?.is_none() {
            return Err(AppError::NotFound);
        }
        let kind = kind.trim();
        if kind.is_empty()
            || kind.len() > 64
            || !kind.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        {
            return Err(AppError::Invalid {
                code: "invalid-document-kind",
                message: "a kind such as business-registration".into(),
                fields: vec![FieldError {
                    field: "kind".into(),
                    code: "invalid-document-kind",
                    message: "lower-case letters and hyphens".into(),
                }],
            });
        }
        let media = check_upload(media_type, &content, file_name).map_err(|e| match e {
            UploadError::MediaType => AppError::UnsupportedMedia {
                message: e.to_string(),
            },
            UploadError::ContentMismatch => AppError::UnsupportedMedia {
                message: e.to_string(),
            },
            UploadError::Empty | UploadError::FileName => AppError::Invalid {
                code: "invalid-upload",
                message: e.to_string(),
                fields: Vec::new(),
            },
        })?;
        let row = DocumentRow {
            id: Uuid::now_v7(),
            hcp_id,
            kind: kind.to_owned(),
            file_name: file_name.trim().to_owned(),
            media_type: media.media_type().to_owned(),
            size: i64::try_from(content.len()).unwrap_or(i64::MAX),
            sha256: ehrshare_core::audit::checkpoint::hex(&Sha256::digest(&content)),
            uploaded_at: self.clock().now(),
        };
        let mut entry = caller.entry(self, "hcp.upload-document", Outcome::Allowed);
        entry.record_ids = vec![hcp_id, row.id];
        let stored = row.clone();
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::provider::insert_document(conn, &stored, &content).await
            })
        });
        self.audit_with(entry, insert).await?;
        Ok(row)
    }

    /// A provider's supporting documents (descriptions).
    pub async fn hcp_documents(&self, hcp_id: Uuid) -> Result<Vec<DocumentRow>, AppError> {
        if self.db().hcp(hcp_id).await?.is_none() {
            return Err(AppError::NotFound);
        }
        Ok(self.db().hcp_documents(hcp_id).await?)
    }

    /// One supporting document with its content; the reading is audited.
    pub async fn hcp_document(
        &self,
        caller: &Caller,
        hcp_id: Uuid,
        id: Uuid,
    ) -> Result<(DocumentRow, Vec<u8>), AppError> {
        let found = self
            .db()
            .hcp_document(hcp_id, id)
            .await?
            .ok_or(AppError::NotFound)?;
        let mut entry = caller.entry(self, "hcp.read-document", Outcome::Allowed);
        entry.record_ids = vec![hcp_id, id];
        self.audit(entry).await?;
        Ok(found)
    }

    /// A provider with its status now.
    pub async fn provider(&self, id: Uuid) -> Result<Provider, AppError> {
        let (hcp, locations) = self.db().hcp(id).await?.ok_or(AppError::NotFound)?;
        let status = lifecycle(&hcp)?.status_at(self.clock().now());
        let staff = self.db().hcp_staff(id, false).await?;
        Ok(Provider {
            hcp,
            status,
            locations,
            staff,
        })
    }

    /// The public directory: providers active now, matching the filter, one page of them, and
    /// how many there are in all.
    pub async fn directory(
        &self,
        filter: &DirectoryFilter,
        page: usize,
        per_page: usize,
    ) -> Result<(Vec<Provider>, usize), AppError> {
        crate::limits::check("q", filter.name.as_deref(), crate::limits::SEARCH)?;
        let now = self.clock().now();
        let mut active = Vec::new();
        for (hcp, locations) in self.db().directory_candidates(filter).await? {
            let status = lifecycle(&hcp)?.status_at(now);
            if status.is_active() {
                // Only professionals who agreed to be listed are public.
                let staff = self.db().hcp_staff(hcp.id, true).await?;
                active.push(Provider {
                    hcp,
                    status,
                    locations,
                    staff,
                });
            }
        }
        let total = active.len();
        let per_page = per_page.clamp(1, 100);
        let items = active
            .into_iter()
            .skip(page.saturating_sub(1).saturating_mul(per_page))
            .take(per_page)
            .collect();
        Ok((items, total))
    }
}

/// Whether a caller may see the public directory's `resource_type` through FHIR with
/// `access`: anyone logged in, but a token only as far as its scopes say (a scope narrows).
pub fn directory_scope_allows(
    session: &crate::auth::Session,
    access: ehrshare_core::oauth::Access,
    resource_type: &str,
) -> bool {
    match &session.subject {
        crate::auth::Subject::Client(g) => {
            let context = if g.account.is_some() {
                ehrshare_core::oauth::Context::User
            } else {
                ehrshare_core::oauth::Context::System
            };
            g.scopes
                .iter()
                .any(|s| s.allows(context, access, resource_type))
        }
        _ => true,
    }
}

impl App {
    /// A provider of the public directory (active now) with its locations and the
    /// professionals who agreed to be listed; any other is 404.
    pub async fn listed_provider(&self, id: Uuid) -> Result<Provider, AppError> {
        let p = self.provider(id).await?;
        if !p.status.is_active() {
            return Err(AppError::NotFound);
        }
        Ok(Provider {
            staff: p.staff.into_iter().filter(|s| s.listed).collect(),
            ..p
        })
    }

    /// The listed provider a location or a member of staff belongs to.
    pub async fn listed_owner(&self, owned: Owned, id: Uuid) -> Result<Provider, AppError> {
        let hcp = self
            .db()
            .owner_of(owned, id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.listed_provider(hcp).await
    }
}

fn next_reason(stage: &Stage) -> Option<String> {
    stored(stage).2
}
