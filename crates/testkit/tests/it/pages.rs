//! The public pages in both languages.

use axum::body::Body;
use axum::http::Request;
use ehrshare_testkit::{TestApp, page_get, page_post};
use ehrshare_web::i18n::{Locale, PortalLocale, SOURCES, message_ids};

fn assert_no_message_ids(html: &str) {
    for id in message_ids(SOURCES[0].1) {
        assert!(!html.contains(&format!(">{id}<")), "untranslated {id}");
    }
}

#[tokio::test]
async fn home_page_in_english_by_default() {
    let t = TestApp::spawn().await;
    let r = t.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    let html = r.text();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains(&Locale::En.t("home-title")));
    assert!(html.contains("href=\"?lang=zh-HK\""));
    assert_no_message_ids(&html);
}

#[tokio::test]
async fn home_page_in_chinese_by_choice_and_remembered() {
    let t = TestApp::spawn().await;
    let r = t.get("/?lang=zh-HK").await;
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(html.contains("<html lang=\"zh-HK\">"));
    assert!(html.contains("歡迎使用 ehrshare"));
    assert_no_message_ids(&html);
    let cookie = r.header("set-cookie");
    assert!(cookie.starts_with("lang=zh-HK;"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"));

    // The cookie, sent back, keeps Chinese even though the browser prefers English.
    let r = t
        .send(
            Request::get("/")
                .header("cookie", "lang=zh-HK")
                .header("accept-language", "en")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(r.text().contains("<html lang=\"zh-HK\">"));
    assert_eq!(r.header("set-cookie"), "", "nothing new to remember");
}

#[tokio::test]
async fn browser_language_chooses_when_nothing_else_does() {
    let t = TestApp::spawn().await;
    let r = t
        .send(
            Request::get("/")
                .header("accept-language", "zh-HK,zh;q=0.9,en;q=0.8")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(r.text().contains(&Locale::ZhHk.t("home-intro")));
}

#[tokio::test]
async fn stylesheet_is_served_and_cacheable() {
    let t = TestApp::spawn().await;
    let r = t.get("/static/site.css").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").starts_with("text/css"));
    assert_eq!(r.header("cache-control"), "public, max-age=3600");
    assert!(r.text().contains("--brand"));
}

#[tokio::test]
async fn openapi_document_describes_the_api() {
    let t = TestApp::spawn().await;
    let r = t.get("/api/v1/openapi.json").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").starts_with("application/json"));
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["paths"]["/healthz"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/openapi.json"]["get"].is_object());
    assert!(doc["components"]["schemas"]["ProblemBody"].is_object());
    for path in [
        "/api/v1/recipients",
        "/api/v1/recipients/{id}",
        "/api/v1/recipients/{id}/events",
        "/api/v1/recipients/{id}/access-key",
        "/api/v1/providers",
        "/api/v1/providers/{id}/events",
        "/api/v1/providers/{id}/documents",
        "/api/v1/directory",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["in"],
        "cookie"
    );
}

#[tokio::test]
async fn the_provider_login_page_shows_the_reminders_and_tips_in_both_languages() {
    let t = TestApp::spawn().await;
    let r = t.get("/hcp/login").await;
    assert_eq!(r.status, 200);
    let html = r.text();
    for id in [
        "hcp-reminder-1",
        "hcp-reminder-5",
        "hcp-tip-1",
        "hcp-admin-tip-6",
    ] {
        assert!(html.contains(&Locale::En.t(id)), "{id}");
    }
    for field in ["user_name", "password", "totp"] {
        assert!(
            html.contains(&format!("<label for=\"{field}\">")),
            "{field}"
        );
    }
    assert!(html.contains("href=\"/pics\"") && html.contains("href=\"/privacy\""));
    assert_no_message_ids(&html);
    let zh = t.get("/hcp/login?lang=zh-HK").await.text();
    assert!(zh.contains("重要提示"));
    assert!(zh.contains("所有病人的資料都必須嚴格保密"));
    assert_no_message_ids(&zh);
    // The statements it links to have real text.
    for (path, text) in [
        ("/pics", "Personal Information Collection Statement"),
        ("/privacy", "tamper-evident audit log"),
        ("/pics?lang=zh-HK", "收集個人資料聲明"),
        ("/privacy?lang=zh-HK", "私隱政策聲明"),
    ] {
        let r = t.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.text().contains(text), "{path}");
    }
}

fn form(path: &str, cookie: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn a_provider_user_logs_in_with_password_and_token_and_logs_out_for_good() {
    let t = TestApp::spawn().await;
    let (hcp, _) = t.active_provider("Clinic W", "w").await;
    let scope = ehrshare_app::duty::Scope::Hcp(hcp.parse().unwrap());
    let seed = b"test-totp-seed-12345";
    t.agent(scope, "dr.web", "doctor", false).await;

    // Not logged in: the portal sends you to the login page.
    let r = t.get("/hcp").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), "/hcp/login");

    // A wrong password: one message, the user name shown back escaped, the password never.
    let r = t
        .send(form(
            "/hcp/login",
            None,
            "user_name=%3Cb%3Edr.web%3C%2Fb%3E&password=Wrong-password-1&totp=000000",
        ))
        .await;
    assert_eq!(r.status, 401);
    let html = r.text();
    assert!(html.contains(&Locale::En.t("login-refused")), "{html}");
    assert!(
        html.contains("value=\"&#60;b&#62;dr.web&#60;/b&#62;\""),
        "{html}"
    );
    assert!(!html.contains("<b>dr.web"));
    assert!(!html.contains("Wrong-password-1"));
    assert_eq!(r.header("set-cookie"), "");

    // Password and the token's code: a session, and the start page.
    t.clock.advance(time::Duration::seconds(30));
    let body = format!(
        "user_name=dr.web&password={}&totp={}",
        ehrshare_testkit::TEST_PASSWORD,
        t.totp_code(seed)
    );
    let r = t.send(form("/hcp/login", None, &body)).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), "/hcp");
    let cookie = r.header("set-cookie").split(';').next().unwrap().to_owned();
    let home = t
        .send(
            Request::get("/hcp")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(home.status, 200);
    assert_eq!(home.header("cache-control"), "no-store");
    let html = home.text();
    assert!(html.contains("TEST dr.web"));
    assert!(html.contains("Clinic W"));
    assert!(
        html.contains(">Doctor<") || html.contains("Doctor"),
        "{html}"
    );

    // Logging out needs the session's CSRF token (no state change by a forged form).
    let r = t.send(form("/hcp/logout", Some(&cookie), "")).await;
    assert_eq!(r.status, 403);
    let csrf = csrf_of(&html);
    let r = t
        .send(form(
            "/hcp/logout",
            Some(&cookie),
            &format!("csrf_token={csrf}"),
        ))
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), "/hcp/login");
    assert!(r.header("set-cookie").contains("Max-Age=0"));
    // The old cookie opens nothing any more.
    let r = t
        .send(
            Request::get("/hcp")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), "/hcp/login");
}

/// The CSRF token a page's form carries.
fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_new_user_changes_the_first_password_and_enrols_the_token_in_the_portal() {
    let t = TestApp::spawn().await;
    let (hcp, ua) = t.active_provider("Clinic N", "n").await;
    let r = t
        .send_json(
            Some(&ua),
            Request::post(format!("/api/v1/providers/{hcp}/accounts")),
            &serde_json::json!({"user_name": "rn.new", "name_en": "LEE Ka Yan", "role": "nurse",
                                "prof_reg_no": "RN123456", "mobile": "6000 5678", "language": "en",
                                "document": ehrshare_testkit::accounts::test_document_json("rn.new")}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let first = t.last_message("+85260005678", "initial-password").await["password"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .send(form(
            "/hcp/login",
            None,
            &format!("user_name=rn.new&password={first}"),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), "/hcp/password");
    let cookie = r.header("set-cookie").split(';').next().unwrap().to_owned();
    let get = |path: &'static str| {
        Request::get(path)
            .header("cookie", cookie.clone())
            .body(Body::empty())
            .unwrap()
    };
    // Nothing else opens before the password is changed.
    let r = t.send(get("/hcp")).await;
    assert_eq!(r.header("location"), "/hcp/password");
    let page = t.send(get("/hcp/password")).await.text();
    assert!(page.contains("8 to 128 characters"), "{page}");
    let csrf = csrf_of(&page);
    let change = |new: &str, again: &str| {
        format!(
            "csrf_token={csrf}&current_password={}&new_password={}&confirm_password={}",
            urlencode(&first),
            urlencode(new),
            urlencode(again)
        )
    };
    let r = t
        .send(form(
            "/hcp/password",
            Some(&cookie),
            &change("Nurse-2026-a", "Nurse-2026-b"),
        ))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("The two new passwords are not the same."));
    let r = t
        .send(form(
            "/hcp/password?lang=zh-HK",
            Some(&cookie),
            &change("Ab1", "Ab1"),
        ))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("新密碼太短。"), "{}", r.text());
    let r = t
        .send(form(
            "/hcp/password",
            Some(&cookie),
            &change("Nurse-2026-a", "Nurse-2026-a"),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), "/hcp/token");

    // The token: a QR code and the key; a wrong code, then the right one.
    let start = |cookie: &str| form("/hcp/token", Some(cookie), &format!("csrf_token={csrf}"));
    let offer = t.send(start(&cookie)).await.text();
    assert!(offer.contains("<svg"), "{offer}");
    let r = t
        .send(form(
            "/hcp/token/confirm",
            Some(&cookie),
            &format!("csrf_token={csrf}&code=000000"),
        ))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("The code did not match."));
    let offer = t.send(start(&cookie)).await.text();
    let secret = offer
        .split("id=\"token-secret\" class=\"reference\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap();
    let seed = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    let r = t
        .send(form(
            "/hcp/token/confirm",
            Some(&cookie),
            &format!("csrf_token={csrf}&code={}", t.totp_code(&seed)),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), "/hcp");
    let home = t.send(get("/hcp")).await;
    assert_eq!(home.status, 200);
    assert!(home.text().contains("LEE Ka Yan"));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn at_the_counter_a_patient_is_found_consent_and_episode_recorded_and_the_summary_read() {
    use ehrshare_app::duty::Scope;
    let t = TestApp::spawn().await;
    let (hcp, _) = t.active_provider("Clinic P", "p").await;
    let scope = Scope::Hcp(hcp.parse().unwrap());
    let doctor = t.agent(scope, "dr.p", "doctor", false).await;
    let clerk = t.agent(scope, "clerk.p", "registration-staff", false).await;
    let office = t.office().await;
    // A recipient whose name is markup: it must render as text everywhere.
    let xss = "<img src=x onerror=alert(1)>";
    let r = t
        .send_json(
            Some(&office),
            Request::post("/api/v1/recipients"),
            &serde_json::json!({"channel": "in-person", "name_en": xss, "name_zh": "陳大文",
                    "date_of_birth": "1980-03-02", "sex": "male",
                    "document": {"type": "hkid", "number": "A123456(3)"},
                    "phone": "9123 4567", "language": "en", "notify_channel": "sms"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let key = t.last_message("+85291234567", "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let no_markup = |html: &str| {
        assert!(!html.contains("<img src=x"), "unescaped: {html}");
    };

    // Look-up: a wrong check digit, an unknown patient, then the patient, by form post.
    let r = t
        .send(page_post(
            &clerk,
            "/hcp/patients",
            "kind=hkid&number=A123456(4)",
        ))
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("The HKID number is not valid"),
        "{}",
        r.text()
    );
    let r = t
        .send(page_post(
            &clerk,
            "/hcp/patients",
            "kind=hkid&number=B123456(?)",
        ))
        .await;
    assert_eq!(r.status, 422);
    let r = t
        .send(page_post(
            &clerk,
            "/hcp/patients",
            "kind=hkid&number=a123456+3",
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), format!("/hcp/patients/{id}"));
    let page = t
        .send(page_get(&clerk, &format!("/hcp/patients/{id}")))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), "no-store");
    let html = page.text();
    no_markup(&html);
    assert!(
        html.contains("&#60;img src=x onerror=alert(1)&#62;"),
        "{html}"
    );
    // The clerk's role writes no clinical domain: no deposit form is offered; the doctor's is.
    assert!(
        !html.contains("/deposit/") && !html.contains("/cm-prescription"),
        "{html}"
    );
    let html = t
        .send(page_get(&doctor, &format!("/hcp/patients/{id}")))
        .await
        .text();
    assert!(
        html.contains(&format!("/hcp/patients/{id}/deposit/allergy")),
        "{html}"
    );

    // No consent yet: the record page says why, in the page's language.
    let r = t
        .send(page_get(
            &doctor,
            &format!("/hcp/patients/{id}/record?lang=zh-HK"),
        ))
        .await;
    assert_eq!(r.status, 403);
    assert!(r.text().contains("病人尚未給予你的醫療服務提供者互通同意"));
    // The consent by access key: a wrong key, then the right one.
    let consent = format!("/hcp/patients/{id}/consent");
    let r = t
        .send(page_post(
            &clerk,
            &consent,
            "access_key=00000000&kind=indefinite",
        ))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("The access key is not right."));
    let r = t
        .send(page_post(
            &clerk,
            &consent,
            &format!("access_key={key}&kind=one-year"),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        r.header("location"),
        format!("/hcp/patients/{id}?done=consent")
    );
    let r = t
        .send(page_get(
            &clerk,
            &format!("/hcp/patients/{id}?done=consent"),
        ))
        .await;
    assert!(r.text().contains("The sharing consent is recorded"));
    // A signed paper form, renewing it: its reference is required.
    let r = t
        .send(page_post(
            &clerk,
            &consent,
            "method=form&form_ref=+&kind=indefinite",
        ))
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("Fill in what is required."),
        "{}",
        r.text()
    );
    let r = t
        .send(page_post(
            &clerk,
            &consent,
            "method=form&form_ref=F-2026-0042&kind=indefinite",
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = t
        .send(page_get(&doctor, &format!("/hcp/patients/{id}/record")))
        .await;
    assert_eq!(r.status, 403);
    assert!(r.text().contains("open a care episode first"));
    let r = t
        .send(page_post(
            &clerk,
            &format!("/hcp/patients/{id}/episode"),
            "kind=attendance",
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());

    // A deposit, then the summary: the doctor sees the diagnosis; the clerk demographics only.
    let r = t
        .send_json(
            Some(&doctor),
            Request::post(format!("/api/v1/recipients/{id}/records")),
            &serde_json::json!({"resourceType": "Condition", "id": "dx-1",
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J45", "display": "Asthma"}]},
                "subject": {"identifier": {"system": "https://ehrshare.example/fhir/NamingSystem/hkid", "value": "A1234563"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = t
        .send(page_get(&doctor, &format!("/hcp/patients/{id}/record")))
        .await;
    assert_eq!(r.status, 200);
    let html = r.text();
    no_markup(&html);
    assert!(html.contains("Asthma"), "{html}");
    assert!(html.contains("id=\"domain-diagnosis\""));
    assert!(html.contains("Records your role may see: 1"));
    // One record in detail: the doctor may; the clerk (demographics only) finds nothing.
    let rid = html
        .split("data-record=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let detail = format!("/hcp/patients/{id}/records/{rid}");
    let r = t.send(page_get(&doctor, &detail)).await;
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("<h1>Asthma</h1>") && r.text().contains("J45"),
        "{}",
        r.text()
    );
    assert_eq!(t.send(page_get(&clerk, &detail)).await.status, 404);
    // The portal's own forms for the doctor's domains.
    for (kind, fields, shown) in [
        (
            "allergy",
            "substance=Penicillin&reaction=Rash",
            "Penicillin",
        ),
        (
            "diagnosis",
            "condition=Type+2+diabetes&note=",
            "Type 2 diabetes",
        ),
        (
            "medication",
            "medicine=Metformin+500+mg+tablet&dosage=twice+a+day",
            "Metformin 500 mg tablet",
        ),
    ] {
        let r = t
            .send(page_post(
                &doctor,
                &format!("/hcp/patients/{id}/deposit/{kind}"),
                fields,
            ))
            .await;
        assert_eq!(r.status, 303, "{kind}: {}", r.text());
        let html = t
            .send(page_get(&doctor, &format!("/hcp/patients/{id}/record")))
            .await
            .text();
        assert!(html.contains(shown), "{kind}: {html}");
    }
    let r = t
        .send(page_get(&clerk, &format!("/hcp/patients/{id}/record")))
        .await;
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(html.contains("id=\"domain-demographics\""), "{html}");
    assert!(
        html.contains("<dd>1980-03-02</dd>") && html.contains("<dd>陳大文</dd>"),
        "{html}"
    );
    no_markup(&html);
    assert!(!html.contains("id=\"domain-diagnosis\""));
    assert!(!html.contains("Asthma"));

    // The patient's page shows the care here, and the counter closes the episode.
    let html = t
        .send(page_get(&clerk, &format!("/hcp/patients/{id}")))
        .await
        .text();
    assert!(html.contains("Indefinite, given 2026-01-15"), "{html}");
    let close = html
        .split("action=\"/hcp/patients/")
        .find(|s| s.contains("/close\""))
        .and_then(|s| s.split('"').next())
        .map(|s| format!("/hcp/patients/{s}"))
        .unwrap_or_else(|| panic!("{html}"));
    let r = t.send(page_post(&clerk, &close, "")).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let html = t
        .send(page_get(&clerk, &format!("/hcp/patients/{id}?done=closed")))
        .await
        .text();
    assert!(html.contains("The care episode is closed"));
    assert!(!html.contains("/close\""), "{html}");
}

/// A clinic with a Chinese medicine practitioner, and a patient under its care with consent.
async fn cm_clinic() -> (TestApp, ehrshare_testkit::Agent, String) {
    use ehrshare_app::duty::Scope;
    let t = TestApp::spawn().await;
    let (hcp, _) = t.active_provider("Clinic C", "c").await;
    let scope = Scope::Hcp(hcp.parse().unwrap());
    let cmp = t
        .agent(scope, "cmp.c", "chinese-medicine-practitioner", false)
        .await;
    let office = t.office().await;
    let r = t
        .send_json(
            Some(&office),
            Request::post("/api/v1/recipients"),
            &serde_json::json!({"channel": "in-person", "name_en": "WONG Siu Ming",
                    "date_of_birth": "1970-05-06", "sex": "female",
                    "document": {"type": "hkid", "number": "A123456(3)"},
                    "phone": "9123 4567", "language": "zh-HK", "notify_channel": "sms"}),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let key = t.last_message("+85291234567", "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .send(page_post(
            &cmp,
            &format!("/hcp/patients/{id}/consent"),
            &format!("access_key={key}"),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = t
        .send(page_post(
            &cmp,
            &format!("/hcp/patients/{id}/episode"),
            "kind=attendance",
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    (t, cmp, id)
}

#[tokio::test]
async fn a_cm_prescription_form_keeps_what_was_typed_and_deposits_once() {
    let (t, cmp, id) = cm_clinic().await;
    let path = format!("/hcp/patients/{id}/cm-prescription");
    let blank = t
        .send(page_get(&cmp, &format!("{path}?lang=zh-HK")))
        .await
        .text();
    assert!(
        blank.contains("<option value=\"山藥\""),
        "the herbs are offered"
    );
    let source = blank
        .split("name=\"source_id\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    // Problems next to their fields, in the page's language, and nothing typed lost.
    let bad = format!(
        "source_id={source}&form=granules&doses=&herb_0=%E6%B7%AE%E5%B1%B1&grams_0=15&herb_1=%E5%8C%97%E8%8A%AA&grams_1=abc&instructions=%E6%AF%8F%E6%97%A5%E4%B8%80%E5%8A%91"
    );
    let r = t
        .send(page_post(&cmp, &format!("{path}?lang=zh-HK"), &bad))
        .await;
    assert_eq!(r.status, 422);
    let html = r.text();
    assert!(html.contains("id=\"doses-problem\">請填寫帖數"), "{html}");
    assert!(html.contains("id=\"row-problem-1\">請填寫克數"), "{html}");
    assert!(!html.contains("row-problem-0"));
    assert!(html.contains("value=\"淮山\"") && html.contains("value=\"abc\""));
    assert!(html.contains("value=\"granules\" checked"));
    assert!(html.contains(">每日一劑</textarea>"));
    assert!(
        html.contains(&format!("value=\"{source}\"")),
        "the same form"
    );

    let good = format!(
        "source_id={source}&form=decoction-pieces&doses=5&herb_0=%E6%B7%AE%E5%B1%B1&grams_0=15&herb_1=%E5%8C%97%E8%8A%AA&grams_1=9.5&instructions="
    );
    for _ in 0..2 {
        let r = t.send(page_post(&cmp, &path, &good)).await;
        assert_eq!(r.status, 303, "{}", r.text());
        assert_eq!(r.header("location"), format!("/hcp/patients/{id}/record"));
    }
    let html = t
        .send(page_get(&cmp, &format!("/hcp/patients/{id}/record")))
        .await
        .text();
    assert!(
        html.contains("山藥 (淮山) 15 g, 黃芪 (北芪) 9.5 g × 5"),
        "{html}"
    );
    assert!(
        html.contains("Records your role may see: 1"),
        "sent twice, stored once"
    );
}

#[tokio::test]
async fn a_user_administrator_opens_suspends_and_terminates_an_account_in_the_portal() {
    use ehrshare_app::duty::Scope;
    let t = TestApp::spawn().await;
    let (hcp, ua) = t.active_provider("Clinic U", "u").await;
    let doctor = t
        .agent(Scope::Hcp(hcp.parse().unwrap()), "dr.u", "doctor", false)
        .await;
    // Only user administrators: anyone else finds nothing here.
    let r = t.send(page_get(&doctor, "/hcp/users")).await;
    assert_eq!(r.status, 404);
    let home = t.send(page_get(&ua, "/hcp")).await.text();
    assert!(home.contains("href=\"/hcp/users\""));

    // A refusal keeps what was typed and says what is wrong, next to nothing else lost.
    let r = t
        .send(page_post(
            &ua,
            "/hcp/users",
            "user_name=rn.u&name_en=LAM+Mei&role=nurse&prof_reg_no=RN123456&mobile=12&language=en&kind=passport&issuer=GB&number=P1234567",
        ))
        .await;
    assert_eq!(r.status, 422);
    let html = r.text();
    assert!(html.contains("The mobile number is not valid."), "{html}");
    assert!(html.contains("value=\"LAM Mei\"") && html.contains("value=\"RN123456\""));
    let r = t
        .send(page_post(
            &ua,
            "/hcp/users",
            "user_name=rn.u&name_en=LAM+Mei&role=nurse&prof_reg_no=RN123456&mobile=6000+2222&language=en&kind=passport&issuer=GB&number=P1234567",
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), "/hcp/users?done=create");
    t.last_message("+85260002222", "initial-password").await;
    let html = t.send(page_get(&ua, "/hcp/users?done=create")).await.text();
    assert!(html.contains("The account is open"));
    let row = |html: &str| {
        html.split("id=\"user-rn.u\"")
            .nth(1)
            .and_then(|s| s.split("</tr>").next())
            .unwrap()
            .to_owned()
    };
    assert!(row(&html).contains("Pending first login"), "{html}");
    let id = row(&html)
        .split("/hcp/users/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_owned();
    let act = format!("/hcp/users/{id}/action");
    for (action, status) in [("suspend", "Suspended"), ("terminate", "Terminated")] {
        let r = t
            .send(page_post(
                &ua,
                &act,
                &format!("action={action}&reason=left"),
            ))
            .await;
        assert_eq!(r.status, 303, "{action}: {}", r.text());
        let html = t
            .send(page_get(&ua, &format!("/hcp/users?done={action}")))
            .await
            .text();
        assert!(row(&html).contains(status), "{action}: {html}");
    }
    // Terminated is final: no action offered, and a forged one is refused with a message.
    let html = t.send(page_get(&ua, "/hcp/users")).await.text();
    assert!(!row(&html).contains("<form"));
    let r = t.send(page_post(&ua, &act, "action=reinstate")).await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn cm_diagnosis_and_treatment_forms_store_preferred_terms_and_say_what_is_missing() {
    let (t, cmp, id) = cm_clinic().await;
    let form = t
        .send(page_get(
            &cmp,
            &format!("/hcp/patients/{id}/deposit/cm-diagnosis"),
        ))
        .await
        .text();
    assert!(
        form.contains("<datalist id=\"cm-diseases\">") && form.contains("<option value=\"感冒\"")
    );
    let path = format!("/hcp/patients/{id}/deposit/cm-diagnosis");
    // The syndrome missing: said next to it, the disease as typed kept.
    let r = t
        .send(page_post(
            &cmp,
            &format!("{path}?lang=zh-HK"),
            "disease=%E5%82%B7%E9%A2%A8&syndrome=",
        ))
        .await;
    assert_eq!(r.status, 422);
    let html = r.text();
    assert!(
        html.contains("id=\"syndrome-problem\">請填寫此欄。"),
        "{html}"
    );
    assert!(!html.contains("disease-problem"));
    assert!(html.contains("value=\"傷風\""));
    // 傷風 is a synonym of 感冒; the syndrome by its English name.
    let r = t
        .send(page_post(
            &cmp,
            &path,
            "disease=%E5%82%B7%E9%A2%A8&syndrome=Wind-cold+fettering+the+exterior",
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = t
        .send(page_post(
            &cmp,
            &format!("/hcp/patients/{id}/deposit/cm-treatment"),
            "treatment=acupuncture&acupoints=%E8%99%8E%E5%8F%A3%2C+ST36",
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let html = t
        .send(page_get(&cmp, &format!("/hcp/patients/{id}/record")))
        .await
        .text();
    assert!(html.contains("感冒 · 風寒束表"), "{html}");
    assert!(html.contains("acupuncture: 合谷, 足三里"), "{html}");
    // An unknown kind of form: 404.
    let r = t
        .send(page_get(&cmp, &format!("/hcp/patients/{id}/deposit/x-ray")))
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn registration_staff_register_a_patient_at_the_counter() {
    use ehrshare_app::duty::Scope;
    let t = TestApp::spawn().await;
    let (hcp, ua) = t.active_provider("Clinic R", "r").await;
    let clerk = t
        .agent(
            Scope::Hcp(hcp.parse().unwrap()),
            "clerk.r",
            "registration-staff",
            false,
        )
        .await;
    let fields = |dob: &str| {
        format!(
            "name_en=CHEUNG+Wai+Man&name_zh=%E5%BC%B5%E5%81%89%E6%96%87&date_of_birth={dob}&sex=male\
             &kind=hkid&issuer=&number=A123456(3)&phone=9123+4567&language=en"
        )
    };
    let r = t
        .send(page_post(&clerk, "/hcp/patients/register", &fields("")))
        .await;
    assert_eq!(r.status, 422);
    let html = r.text();
    assert!(html.contains("Give the date of birth."), "{html}");
    assert!(html.contains("value=\"CHEUNG Wai Man\"") && html.contains("value=\"張偉文\""));
    let r = t
        .send(page_post(
            &clerk,
            "/hcp/patients/register",
            &fields("1985-07-08"),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let to = r.header("location").to_owned();
    assert!(to.ends_with("?done=registered"), "{to}");
    let html = t.send(page_get(&clerk, &to)).await.text();
    assert!(html.contains("CHEUNG Wai Man") && html.contains("access key has been sent"));
    t.last_message("+85291234567", "access-key").await;
    // Once only per document; a user administrator registers nobody.
    let r = t
        .send(page_post(
            &clerk,
            "/hcp/patients/register",
            &fields("1985-07-08"),
        ))
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.text()
            .contains("Someone is already registered with this document")
    );
    let r = t
        .send(page_post(
            &ua,
            "/hcp/patients/register",
            &fields("1985-07-08"),
        ))
        .await;
    assert_eq!(r.status, 404);
}

/// The newest audit entry of `action` (a page showing a refusal audits its own look-up after).
async fn last_audit(t: &TestApp, action: &str) -> ehrshare_core::audit::NewAuditEntry {
    let db = t.db.connect().await;
    let n = db.audit_size().await.unwrap();
    db.audit_entries(n.saturating_sub(5), 5)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find(|e| e.entry.action == action)
        .unwrap_or_else(|| panic!("no {action} among the last entries"))
        .entry
}

/// The hidden fields of a page's form posting to `action`, as a form body.
fn hidden_fields_of(html: &str, action: &str) -> String {
    let form = html
        .split(&format!("action=\"{action}\""))
        .nth(1)
        .and_then(|s| s.split("</form>").next())
        .unwrap_or_else(|| panic!("no form to {action}: {html}"));
    form.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|s| {
            let (name, rest) = s.split_once('"')?;
            let value = rest.split("value=\"").nth(1)?.split('"').next()?;
            (name != "csrf_token").then(|| format!("{name}={}", urlencode(value)))
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn consent_by_smart_id_card_with_the_demo_reader_is_checked_like_any_reading() {
    use ehrshare_app::duty::Scope;
    let t = TestApp::spawn().await;
    let (hcp, _) = t.active_provider("Clinic P", "p").await;
    let scope = Scope::Hcp(hcp.parse().unwrap());
    let clerk = t.agent(scope, "clerk.p", "registration-staff", false).await;
    let office = t.office().await;
    let mut ids = Vec::new();
    for (name, hkid, phone) in [
        ("CHAN Tai Man", "A123456(3)", "9123 4567"),
        ("LEE Ka Yan", "B123456(6)", "9222 3333"),
    ] {
        let r = t
            .send_json(
                Some(&office),
                Request::post("/api/v1/recipients"),
                &serde_json::json!({"channel": "in-person", "name_en": name,
                    "date_of_birth": "1980-03-02", "sex": "female",
                    "document": {"type": "hkid", "number": hkid},
                    "phone": phone, "language": "en", "notify_channel": "sms"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        ids.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    let id = &ids[0];
    let card = format!("/hcp/patients/{id}/card");
    let read = format!("/hcp/patients/{id}/card/read");
    let consent = format!("/hcp/patients/{id}/consent/card");

    // No reader at this provider: the page says so and nothing signs.
    let r = t.send(page_get(&clerk, &card)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), "no-store");
    assert!(r.text().contains("id=\"no-reader\""), "{}", r.text());
    assert!(!r.text().contains("/card/read"));
    let r = t.send(page_post(&clerk, &read, "hkid=A123456(3)")).await;
    assert_eq!(r.status, 404);

    // With the demo's reader: a number with a wrong check digit is no card.
    let loader = ehrshare_app::caller::Caller {
        actor: ehrshare_core::audit::Actor {
            role: Some("demo-loader".to_owned()),
            ..ehrshare_core::audit::Actor::system()
        },
        request_id: None,
        client_addr: None,
    };
    t.app
        .install_demo_reader(&loader, hcp.parse().unwrap())
        .await
        .unwrap();
    let r = t
        .send(page_get(&clerk, &format!("{card}?lang=zh-HK")))
        .await;
    assert!(r.text().contains("示範讀卡器"), "{}", r.text());
    let r = t.send(page_post(&clerk, &read, "hkid=A123456(4)")).await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("The HKID number is not valid"));
    assert!(r.text().contains("value=\"A123456(4)\""), "kept as typed");

    // Another person's card on this patient's page: refused, audited, nothing stored.
    let r = t.send(page_post(&clerk, &read, "hkid=b123456+6")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("B123456(6)"));
    let strangers = hidden_fields_of(&r.text(), &consent);
    let r = t
        .send(page_post(
            &clerk,
            &consent,
            &format!("{strangers}&kind=indefinite"),
        ))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("is not this patient"), "{}", r.text());
    // A valid number of nobody registered is no more this patient's card.
    let r = t.send(page_post(&clerk, &read, "hkid=A100000(7)")).await;
    let nobodys = hidden_fields_of(&r.text(), &consent);
    let r = t
        .send(page_post(
            &clerk,
            &consent,
            &format!("{nobodys}&kind=indefinite"),
        ))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("is not this patient"), "{}", r.text());
    let last = last_audit(&t, "consent.card").await;
    assert_eq!(last.denial_reason.as_deref(), Some("card-not-this-patient"));
    for who in &ids {
        let html = t
            .send(page_get(&clerk, &format!("/hcp/patients/{who}")))
            .await
            .text();
        assert!(html.contains("None in force"), "{html}");
    }

    // A reading altered after signing (the other patient's number put in) is refused.
    let r = t.send(page_post(&clerk, &read, "hkid=A123456(3)")).await;
    let fields = hidden_fields_of(&r.text(), &consent);
    let forged = fields.replace("hkid=A1234563", "hkid=B1234566");
    assert_ne!(forged, fields);
    let other = format!("/hcp/patients/{}/consent/card", ids[1]);
    let r = t
        .send(page_post(
            &clerk,
            &other,
            &format!("{forged}&kind=indefinite"),
        ))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("could not be accepted"), "{}", r.text());

    // The patient's own card gives the consent, once; the same reading again is refused.
    let r = t
        .send(page_post(
            &clerk,
            &consent,
            &format!("{fields}&kind=one-year"),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        r.header("location"),
        format!("/hcp/patients/{id}?done=consent")
    );
    let html = t
        .send(page_get(&clerk, &format!("/hcp/patients/{id}")))
        .await
        .text();
    assert!(html.contains("One year, given 2026-01-15"), "{html}");
    let r = t
        .send(page_post(
            &clerk,
            &consent,
            &format!("{fields}&kind=one-year"),
        ))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.text().contains("could not be accepted"));
    let last = last_audit(&t, "consent.card").await;
    assert_eq!(last.denial_reason.as_deref(), Some("replayed-assertion"));

    // A reading relayed more than two minutes after it was made is stale.
    let r = t.send(page_post(&clerk, &read, "hkid=A123456(3)")).await;
    let fields = hidden_fields_of(&r.text(), &consent);
    t.clock.advance(time::Duration::minutes(3));
    let r = t
        .send(page_post(
            &clerk,
            &consent,
            &format!("{fields}&kind=indefinite"),
        ))
        .await;
    assert_eq!(r.status, 422);
    let last = last_audit(&t, "consent.card").await;
    assert_eq!(last.denial_reason.as_deref(), Some("stale-assertion"));
}

#[tokio::test]
async fn no_portal_page_changes_anything_on_get() {
    use ehrshare_app::duty::Scope;
    let t = TestApp::spawn().await;
    let (hcp, admin) = t.active_provider("Clinic P", "p").await;
    let scope = Scope::Hcp(hcp.parse().unwrap());
    let clerk = t.agent(scope, "clerk.p", "registration-staff", false).await;
    let id = uuid::Uuid::now_v7();
    let other = uuid::Uuid::now_v7();
    let db = t.db.connect().await;
    let entries = db.audit_size().await.unwrap();
    // Every address that changes something answers GET with 405 and does nothing.
    for path in [
        "/hcp/logout".to_owned(),
        format!("/hcp/patients/{id}/consent"),
        format!("/hcp/patients/{id}/card/read"),
        format!("/hcp/patients/{id}/consent/card"),
        format!("/hcp/patients/{id}/episode"),
        format!("/hcp/patients/{id}/episodes/{other}/close"),
        format!("/hcp/patients/{id}/unlock"),
        format!("/hcp/patients/{id}/unlock/confirm"),
        format!("/hcp/alerts/{other}/review"),
        format!("/hcp/users/{other}/action"),
        "/hcp/token/confirm".to_owned(),
    ] {
        for who in [&clerk, &admin] {
            let r = t.send(page_get(who, &path)).await;
            assert_eq!(r.status, 405, "GET {path}: {}", r.text());
        }
    }
    assert_eq!(
        db.audit_size().await.unwrap(),
        entries,
        "a GET left a trace"
    );
    // The sessions survived the GET of the logout address.
    assert_eq!(t.send(page_get(&clerk, "/hcp")).await.status, 200);
    assert_eq!(t.send(page_get(&admin, "/hcp/users")).await.status, 200);
}
