//! `ehrshare demo` (and `serve --demo`): a realistic, bilingual demo population, loaded through
//! the same use cases the API calls, so that it is audited and valid like real data.
//!
//! Three providers in different districts (a public hospital with deemed consent, a private
//! family clinic, a Chinese medicine clinic with two locations), each with a user administrator
//! and staff of several professions (those with a registration number listed in the directory), 200 adults, 10 children with a
//! parent as SDM and one adult unable to consent with a guardian. Names and HKIDs are made up
//! (HKIDs with valid check digits) and deterministic. Access keys go out through the outbox
//! like any other: with the default `log` adapter they are in `DATA_DIR/outbox/messages.log`.
//! Each provider gets a demo smart ID card reader (`ehrshare_app::demo_reader`), so that the
//! portal's card page can stand in for the hardware.
//! Loading is recorded in `ehrshare_meta` (`demo_loading` when it starts, `demo_loaded` when it
//! ends) and never repeated; an interrupted load is reported rather than loaded over.

use anyhow::Context;
use ehrshare_app::App;
use ehrshare_app::account::NewAccount;
use ehrshare_app::caller::Caller;
use ehrshare_app::duty::Scope;
use ehrshare_app::provider::{ApplicationInput, ContactInput, LocationInput, StaffInput};
use ehrshare_core::account::OfficeRole;
use ehrshare_core::audit::Actor;
use ehrshare_core::identity::Hkid;
use ehrshare_core::profession::Role;
use ehrshare_core::provider::Event;
use ehrshare_core::registration::{DocumentInput, RegistrationInput, SdmInput};
use indicatif::{ProgressBar, ProgressStyle};

const SURNAMES: [(&str, &str); 12] = [
    ("CHAN", "陳"),
    ("WONG", "黃"),
    ("LEE", "李"),
    ("CHEUNG", "張"),
    ("LAU", "劉"),
    ("NG", "吳"),
    ("HO", "何"),
    ("LAM", "林"),
    ("LEUNG", "梁"),
    ("TSANG", "曾"),
    ("YEUNG", "楊"),
    ("CHOW", "周"),
];
const GIVEN: [(&str, &str); 10] = [
    ("Tai Man", "大文"),
    ("Siu Ming", "小明"),
    ("Ka Yan", "嘉欣"),
    ("Wai Ling", "慧玲"),
    ("Chi Keung", "志強"),
    ("Mei Ling", "美玲"),
    ("Ho Yin", "浩然"),
    ("Hoi Yan", "凱欣"),
    ("Kwok Wing", "國榮"),
    ("Suk Fan", "淑芬"),
];
const LETTERS: &[u8] = b"ACDEGHKPRVYZ";

/// The password of every demo account and patient login. Demo accounts are enrolled at once;
/// `ehrshare demo code USER` prints a demo account's current security code.
pub const DEMO_PASSWORD: &str = "Demo-2026-ehrshare";

/// The user-name prefix of each demo provider, in the order of [`providers`].
const PREFIXES: [&str; 3] = ["sth", "hvc", "tsc"];

/// How many adults (from the first) get a patient login; adult 0 is also the SDM of a child.
const PATIENT_LOGINS: usize = 3;

/// One demo login, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoLogin {
    pub user: String,
    pub role: String,
    pub place: String,
}

/// What a demo load did.
#[derive(Debug, Clone, Default)]
pub struct DemoReport {
    pub providers: usize,
    pub recipients: usize,
    pub already_loaded: bool,
    /// Staff accounts (user name, role, provider or office).
    pub accounts: Vec<DemoLogin>,
    /// Patient logins (document number, name, whom else they act for).
    pub patients: Vec<DemoLogin>,
}

/// A registration number of the profession's first pattern, numbered `n`.
fn demo_number(pattern: &str, n: usize) -> String {
    let digits = format!("{:012}", 100_003 + n * 7_919);
    let mut d = digits.chars().rev();
    let mut out: Vec<char> = pattern
        .split('|')
        .next()
        .unwrap_or("")
        .chars()
        .rev()
        .map(|c| match c {
            '#' => d.next().unwrap_or('0'),
            '@' => 'A',
            other => other,
        })
        .collect();
    out.reverse();
    out.into_iter().collect()
}

/// Enrolled accounts for every enabled role at a provider: the named staff where the
/// application names one of that role, made-up people otherwise.
async fn provider_accounts(
    app: &App,
    hcp: uuid::Uuid,
    prefix: &str,
    place: &str,
    application: &ApplicationInput,
    report: &mut DemoReport,
) -> anyhow::Result<()> {
    let patterns = &app.settings().auth.registration_numbers;
    for (n, role) in Role::ALL
        .into_iter()
        .filter(|r| r.enabled_by_default())
        .enumerate()
    {
        let named = application.staff.iter().find(|s| s.role == role.code());
        let (name_en, name_zh) = match named {
            Some(s) => (s.name_en.clone(), s.name_zh.clone()),
            None => (
                format!("DEMO {}", role.name_en()),
                Some(format!("示範{}", role.name_zh())),
            ),
        };
        let prof_reg_no = role.is_professional().then(|| {
            named
                .and_then(|s| s.prof_reg_no.clone())
                .filter(|r| patterns.check(role, r).is_ok())
                .unwrap_or_else(|| demo_number(&patterns.describe(role).replace(' ', ""), n))
        });
        let user = format!("{prefix}.{}", role.code());
        let input = NewAccount {
            user_name: user.clone(),
            name_en,
            name_zh,
            role: role.code().to_owned(),
            user_admin: role == Role::UserAdministrator,
            prof_reg_no,
            mobile: format!("9300 {:04}", report.accounts.len() + 1),
            email: None,
            language: Some("zh-HK".to_owned()),
            // Each demo user a passport of their own: administrators need one to grant roles
            // (the separation of duties, core::account::check_duties).
            document: Some(DocumentInput {
                kind: "passport".to_owned(),
                issuer: Some("HK".to_owned()),
                number: format!("DEMO{:06}", report.accounts.len() + 1),
            }),
        };
        let seed = ehrshare_app::secret::random_bytes::<20>()?;
        app.create_demo_account(Scope::Hcp(hcp), input, DEMO_PASSWORD, &seed)
            .await
            .with_context(|| format!("demo account {user}"))?;
        report.accounts.push(DemoLogin {
            user,
            role: role.code().to_owned(),
            place: place.to_owned(),
        });
    }
    Ok(())
}

/// The office's demo accounts, one per office role.
async fn office_accounts(app: &App, report: &mut DemoReport) -> anyhow::Result<()> {
    for (user, role) in [
        ("office.admin", OfficeRole::SystemAdministrator),
        ("office.registration", OfficeRole::RegistrationOfficer),
        ("office.privacy", OfficeRole::PrivacyOfficer),
    ] {
        let input = NewAccount {
            user_name: user.to_owned(),
            name_en: format!("DEMO {}", role.code()),
            role: role.code().to_owned(),
            mobile: format!("9400 {:04}", report.accounts.len() + 1),
            ..NewAccount::default()
        };
        let seed = ehrshare_app::secret::random_bytes::<20>()?;
        app.create_demo_account(Scope::Office, input, DEMO_PASSWORD, &seed)
            .await
            .with_context(|| format!("demo account {user}"))?;
        report.accounts.push(DemoLogin {
            user: user.to_owned(),
            role: role.code().to_owned(),
            place: "eHR Office".to_owned(),
        });
    }
    Ok(())
}

fn caller() -> Caller {
    Caller {
        actor: Actor {
            role: Some("demo-loader".to_owned()),
            ..Actor::system()
        },
        request_id: None,
        client_addr: None,
    }
}

fn contact(name: &str, phone: &str) -> ContactInput {
    ContactInput {
        name: name.to_owned(),
        position: Some("Director".to_owned()),
        phone: phone.to_owned(),
        email: None,
    }
}

fn location(en: &str, zh: &str, street: &str, district: &str, phone: &str) -> LocationInput {
    LocationInput {
        name_en: en.to_owned(),
        name_zh: zh.to_owned(),
        room_floor: None,
        building: None,
        street: street.to_owned(),
        district: district.to_owned(),
        phone: phone.to_owned(),
    }
}

fn staff(name_en: &str, name_zh: &str, role: &str, reg: Option<&str>, mobile: &str) -> StaffInput {
    StaffInput {
        name_en: name_en.into(),
        name_zh: Some(name_zh.into()),
        position: None,
        role: role.into(),
        prof_reg_no: reg.map(str::to_owned),
        mobile: mobile.into(),
        listed: reg.is_some(),
    }
}

fn providers() -> Vec<ApplicationInput> {
    vec![
        ApplicationInput {
            name_en: "Shatin Union Hospital".into(),
            name_zh: "沙田聯合醫院".into(),
            br_number: "HA0001".into(),
            hcp_type: "hospital".into(),
            sector: "public".into(),
            authorised_person: contact("LEUNG Kwok Wing", "9100 0001"),
            contact_person: contact("CHOW Mei Ling", "2632 0001"),
            locations: vec![location(
                "Shatin Union Hospital",
                "沙田聯合醫院",
                "30 Ngan Shing Street",
                "sha-tin",
                "2632 2211",
            )],
            staff: vec![
                staff(
                    "CHOW Mei Ling",
                    "周美玲",
                    "user-administrator",
                    None,
                    "9200 0001",
                ),
                staff(
                    "LEUNG Chi Keung",
                    "梁志強",
                    "doctor",
                    Some("M10234"),
                    "9200 0002",
                ),
                staff(
                    "YEUNG Hoi Yan",
                    "楊凱欣",
                    "nurse",
                    Some("RN123456"),
                    "9200 0003",
                ),
                staff(
                    "TSANG Ho Yin",
                    "曾浩然",
                    "pharmacist",
                    Some("P01234"),
                    "9200 0004",
                ),
                staff(
                    "LAU Ka Yan",
                    "劉嘉欣",
                    "radiographer",
                    Some("MR12345"),
                    "9200 0005",
                ),
                staff(
                    "NG Wai Ling",
                    "吳慧玲",
                    "registration-staff",
                    None,
                    "9200 0006",
                ),
            ],
            submit: true,
        },
        ApplicationInput {
            name_en: "Harbour View Family Clinic".into(),
            name_zh: "海景家庭診所".into(),
            br_number: "61234567".into(),
            hcp_type: "clinic".into(),
            sector: "private".into(),
            authorised_person: contact("CHAN Chi Keung", "9100 0002"),
            contact_person: contact("LAM Hoi Yan", "2511 0002"),
            locations: vec![location(
                "Harbour View Family Clinic",
                "海景家庭診所",
                "88 Hennessy Road",
                "wan-chai",
                "2511 2345",
            )],
            staff: vec![
                staff(
                    "LAM Hoi Yan",
                    "林凱欣",
                    "user-administrator",
                    None,
                    "9200 0011",
                ),
                staff(
                    "CHAN Chi Keung",
                    "陳志強",
                    "doctor",
                    Some("M20345"),
                    "9200 0012",
                ),
                staff(
                    "WONG Suk Fan",
                    "黃淑芬",
                    "nurse",
                    Some("RN234567"),
                    "9200 0013",
                ),
                staff(
                    "LEE Siu Ming",
                    "李小明",
                    "physiotherapist",
                    Some("PT12345"),
                    "9200 0014",
                ),
            ],
            submit: true,
        },
        ApplicationInput {
            name_en: "Tung Shing Chinese Medicine Clinic".into(),
            name_zh: "同盛中醫診所".into(),
            br_number: "62345678".into(),
            hcp_type: "cm-clinic".into(),
            sector: "private".into(),
            authorised_person: contact("HO Suk Fan", "9100 0003"),
            contact_person: contact("NG Ho Yin", "2388 0003"),
            locations: vec![
                location(
                    "Tung Shing Chinese Medicine Clinic (Mong Kok)",
                    "同盛中醫診所（旺角）",
                    "123 Nathan Road",
                    "yau-tsim-mong",
                    "2388 1234",
                ),
                location(
                    "Tung Shing Chinese Medicine Clinic (Kwun Tong)",
                    "同盛中醫診所（觀塘）",
                    "45 Hoi Yuen Road",
                    "kwun-tong",
                    "2345 6789",
                ),
            ],
            staff: vec![
                staff(
                    "NG Ho Yin",
                    "吳浩然",
                    "user-administrator",
                    None,
                    "9200 0021",
                ),
                staff(
                    "HO Suk Fan",
                    "何淑芬",
                    "chinese-medicine-practitioner",
                    Some("003456"),
                    "9200 0022",
                ),
                staff(
                    "CHEUNG Kwok Wing",
                    "張國榮",
                    "chinese-medicine-practitioner",
                    Some("004567"),
                    "9200 0023",
                ),
                staff(
                    "LAU Mei Ling",
                    "劉美玲",
                    "registration-staff",
                    None,
                    "9200 0024",
                ),
            ],
            submit: true,
        },
    ]
}

fn name(i: usize) -> (String, String) {
    let (se, sz) = SURNAMES[i % SURNAMES.len()];
    let (ge, gz) = GIVEN[(i / SURNAMES.len()) % GIVEN.len()];
    (format!("{se} {ge}"), format!("{sz}{gz}"))
}

fn hkid(i: usize) -> String {
    let letter = (LETTERS[i % LETTERS.len()] as char).to_string();
    Hkid::from_parts(&letter, (100_000 + i * 3_571) as u32 % 1_000_000)
        .map(|h| h.display())
        .unwrap_or_default()
}

fn adult(i: usize) -> RegistrationInput {
    let (name_en, name_zh) = name(i);
    RegistrationInput {
        channel: "in-person".into(),
        name_en,
        name_zh: Some(name_zh),
        date_of_birth: format!("{}-{:02}-{:02}", 1940 + i % 60, 1 + i % 12, 1 + i % 28),
        sex: if i.is_multiple_of(2) {
            "female"
        } else {
            "male"
        }
        .into(),
        capacity: None,
        document: DocumentInput {
            kind: "hkid".into(),
            issuer: None,
            number: hkid(i),
        },
        phone: format!("{}", 91_000_000 + i * 13),
        phone2: None,
        email: i
            .is_multiple_of(3)
            .then(|| format!("patient{i}@example.org")),
        address: Some(format!(
            "Flat {}, {} Demo Street, Hong Kong",
            1 + i % 30,
            1 + i % 200
        )),
        language: if i % 3 == 1 { "en" } else { "zh-HK" }.into(),
        notify_channel: "sms".into(),
        refuses_access_notices: i.is_multiple_of(17),
        sdm: None,
    }
}

fn sdm(parent: &RegistrationInput, category: &str) -> SdmInput {
    SdmInput {
        name_en: parent.name_en.clone(),
        name_zh: parent.name_zh.clone(),
        document: parent.document.clone(),
        category: category.into(),
        no_higher_available: false,
        relationship_proof: Some("birth certificate / court order seen".into()),
        phone: parent.phone.clone(),
        email: None,
        notify_channel: None,
    }
}

/// Loads the population unless it was loaded before.
pub async fn load(app: &App) -> anyhow::Result<DemoReport> {
    if app.meta("demo_loaded").await?.is_some() {
        return Ok(DemoReport {
            already_loaded: true,
            ..DemoReport::default()
        });
    }
    if !app.mark_meta("demo_loading").await? {
        anyhow::bail!(
            "an earlier demo load was interrupted; start again with an empty database \
             (remove the data folder, or point EHRSHARE_DATABASE_URL at a new database)"
        );
    }
    let caller = caller();
    let adults = 200;
    let children = 10;
    let total = (providers().len() + adults + children + 1) as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("loading the demo population {bar:40} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut report = DemoReport::default();
    office_accounts(app, &mut report).await?;
    for (application, prefix) in providers().into_iter().zip(PREFIXES) {
        let provider = app
            .apply_hcp(&caller, application.clone())
            .await
            .context("demo provider")?;
        app.hcp_event(&caller, provider.hcp.id, Event::Accept)
            .await
            .context("demo provider acceptance")?;
        provider_accounts(
            app,
            provider.hcp.id,
            prefix,
            &application.name_en,
            &application,
            &mut report,
        )
        .await?;
        // The demo's user administrators are enrolled at once, so set-up is complete.
        app.hcp_event(&caller, provider.hcp.id, Event::CompleteSetUp)
            .await
            .context("demo provider set-up")?;
        // A card reader for the counter's demo reader page (the hardware's stand-in).
        app.install_demo_reader(&caller, provider.hcp.id)
            .await
            .context("demo card reader")?;
        report.providers += 1;
        bar.inc(1);
    }
    for i in 0..adults {
        let reg = app
            .register_recipient(&caller, adult(i))
            .await
            .with_context(|| format!("demo recipient {i}"))?;
        if i < PATIENT_LOGINS {
            app.create_demo_person(reg.recipient.id, DEMO_PASSWORD)
                .await
                .with_context(|| format!("demo patient login {i}"))?;
            report.patients.push(DemoLogin {
                user: reg.recipient.doc_number.clone(),
                role: if i == 0 {
                    "recipient, parent (SDM) of a child"
                } else {
                    "recipient"
                }
                .to_owned(),
                place: reg.recipient.name_en.clone(),
            });
        }
        report.recipients += 1;
        bar.inc(1);
    }
    for c in 0..children {
        let parent = adult(c);
        let mut child = adult(adults + c);
        child.date_of_birth = format!("{}-{:02}-15", 2012 + c % 10, 1 + c % 12);
        child.name_en = format!("{} Jr", parent.name_en);
        child.sdm = Some(sdm(&parent, "parent"));
        app.register_recipient(&caller, child)
            .await
            .with_context(|| format!("demo child {c}"))?;
        report.recipients += 1;
        bar.inc(1);
    }
    let guardian = adult(1);
    let mut ward = adult(adults + children);
    ward.capacity = Some("unable".into());
    ward.date_of_birth = "1938-08-08".into();
    ward.sdm = Some(sdm(&guardian, "guardian"));
    app.register_recipient(&caller, ward)
        .await
        .context("demo adult with a guardian")?;
    report.recipients += 1;
    // Shared records: the first twenty adults are under the demo hospital's care, with its
    // consent and ten records each, so that a demo doctor has something to read.
    let hospital = bench_provider(app).await?;
    bench_population(app, hospital, 20, 10, ehrshare_fhir::build::demo_record).await?;
    bar.finish_and_clear();
    app.mark_meta("demo_loaded").await?;
    Ok(report)
}

/// The demo provider benchmarks read as: the public hospital (`sth.`), found by name.
pub async fn bench_provider(app: &App) -> anyhow::Result<uuid::Uuid> {
    let (found, _) = app
        .directory(
            &ehrshare_app::provider::DirectoryFilter {
                name: Some("Shatin Union Hospital".to_owned()),
                ..Default::default()
            },
            0,
            10,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    found
        .first()
        .map(|p| p.hcp.id)
        .context("the demo hospital is missing")
}

/// Gives the first `n` demo recipients a consent with `hcp`, an open episode there and
/// `records` records made by `resource(i)`, written directly as a fixture (one audited change
/// per recipient). Returns their ids.
pub async fn bench_population(
    app: &App,
    hcp: uuid::Uuid,
    n: usize,
    records: usize,
    resource: fn(usize) -> (String, String, serde_json::Value),
) -> anyhow::Result<Vec<uuid::Uuid>> {
    app.bench_population(hcp, n, records, resource)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}
