//! The patient portal's pages (`/me`, issue 27): log in with a document, a password and a
//! one-time code; see whom one acts for; read one's record; see who can see it and revoke a
//! consent, in force for the provider's next request. Staff sessions reach no `/me` page and
//! patients' sessions no `/hcp` page.

use axum::body::Body;
use axum::http::Request;
use ehrshare_testkit::{Agent, page_get, page_post, session_cookie};
use serde_json::json;

use crate::world::{condition, world};

fn form(path: &str, fields: &str) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(fields.to_owned()))
        .unwrap()
}

fn hidden(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn a_patient_logs_in_reads_the_record_and_revokes_a_consent_in_pages() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    assert_eq!(w.episode().await.status, 201);
    assert_eq!(w.deposit(condition("dx-page")).await.status, 201);
    // Set up the login (the activation is the app's; the pages log in).
    let r = w
        .t
        .send_json(
            None,
            Request::post("/api/v1/me/activate"),
            &json!({"document": {"number": "A123456(3)"}, "access_key": w.key, "password": "Patient-2026"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());

    // Both languages.
    let r = w.t.get("/me/login?lang=zh-HK").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("以身份證明文件登入"), "{}", r.text());
    // A wrong password: one message whatever the reason; nothing sent.
    let r =
        w.t.send(form(
            "/me/login?lang=en",
            "doc_type=hkid&issuer=&number=A123456%283%29&password=wrong",
        ))
        .await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("is not right"), "{}", r.text());
    assert!(r.text().contains("A123456(3)"), "the number is shown back");
    assert!(!r.text().contains("wrong"), "never the password");
    // Someone logged in as staff in the same browser: the form carries that session's CSRF
    // token, so logging in as a patient is not refused as a cross-site post.
    let r = w.t.send(page_get(&w.doctor, "/me/login")).await;
    assert!(r.text().contains(&w.doctor.csrf), "{}", r.text());
    let r =
        w.t.send(page_post(
            &w.doctor,
            "/me/login",
            "doc_type=hkid&issuer=&number=A123456%283%29&password=Patient-2026",
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let r =
        w.t.send(form(
            "/me/login?lang=en",
            "doc_type=hkid&issuer=&number=A123456%283%29&password=Patient-2026",
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let challenge = hidden(&r.text(), "challenge");
    let code = w.t.last_message("+85291234567", "login-code").await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let r =
        w.t.send(form(
            "/me/login/code",
            &format!("challenge={challenge}&code=000000"),
        ))
        .await;
    assert_eq!(r.status, 401, "a wrong code");
    let r =
        w.t.send(form(
            "/me/login/code",
            &format!("challenge={challenge}&code={code}"),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), "/me");
    let cookie = session_cookie(&r);
    let home =
        w.t.send(page_get(
            &Agent {
                cookie: cookie.clone(),
                csrf: String::new(),
                user_name: "patient".into(),
                account: None,
            },
            "/me?lang=en",
        ))
        .await;
    assert_eq!(home.status, 200, "{}", home.text());
    let patient = Agent {
        cookie,
        csrf: hidden(&home.text(), "csrf_token"),
        user_name: "patient".into(),
        account: None,
    };
    assert!(home.text().contains(&format!("/me/{}/record", w.recipient)));

    // The record, by domain, in the patient's language.
    let r =
        w.t.send(page_get(
            &patient,
            &format!("/me/{}/record?lang=zh-HK", w.recipient),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Asthma"));
    assert!(
        r.text().contains("Clinic A診所"),
        "the provider, in Chinese"
    );
    assert_eq!(w.last_entry().await.entry.reason.as_deref(), Some("self"));

    // Who can see it; a revoke needs its confirmation, then holds at once.
    let sharing = format!("/me/{}/sharing?lang=en", w.recipient);
    let r = w.t.send(page_get(&patient, &sharing)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Clinic A"));
    assert!(
        r.text().contains("by access key at the counter"),
        "{}",
        r.text()
    );
    assert!(
        r.text()
            .contains("None of your restricted records is unlocked")
    );
    let revoke = format!("/me/{}/consents/{}/revoke", w.recipient, w.hcp);
    let r = w.t.send(page_post(&patient, &revoke, "")).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        w.summary(&w.doctor).await.status,
        200,
        "not without confirming"
    );
    let r = w.t.send(page_post(&patient, &revoke, "confirm=yes")).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r = w.summary(&w.doctor).await;
    assert_eq!(r.json()["code"], "consent-required");
    let r =
        w.t.send(page_get(&patient, &format!("{sharing}&revoked=1")))
            .await;
    assert!(
        r.text().contains("No provider has your sharing consent"),
        "{}",
        r.text()
    );

    // Consent again by the clinic's QR code: read, shown, confirmed, with its receipt.
    let payload = w.t.get("/api/v1/directory?q=Clinic%20A").await.json()["items"][0]["locations"]
        [0]["qr_payload"]
        .as_str()
        .unwrap()
        .to_owned();
    let scan = format!("/me/{}/scan", w.recipient);
    let r =
        w.t.send(page_get(&patient, &format!("{scan}?lang=en")))
            .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("permissions-policy").contains("camera=(self)"));
    let enc = |s: &str| serde_urlencoded::to_string([("payload", s)]).unwrap();
    let r =
        w.t.send(page_post(
            &patient,
            &format!("{scan}?lang=en"),
            &enc("ehrshare:location:nonsense"),
        ))
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text().contains("not an eHealth clinic code"),
        "{}",
        r.text()
    );
    let r =
        w.t.send(page_post(
            &patient,
            &format!("{scan}?lang=en"),
            &enc(&payload),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("Clinic A") && r.text().contains("1 Test Street"),
        "{}",
        r.text()
    );
    assert_eq!(
        w.summary(&w.doctor).await.status,
        403,
        "not before confirming"
    );
    let r =
        w.t.send(page_post(
            &patient,
            &format!("{scan}/confirm?lang=en"),
            &format!("{}&kind=indefinite", enc(&payload)),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        r.text().contains("ehrshare.consent-receipt.1"),
        "{}",
        r.text()
    );
    assert_eq!(w.summary(&w.doctor).await.status, 200, "in force at once");

    // Restricted control: a whole domain from the page, hidden from the doctor at once;
    // lifted, shown again.
    let restrictions = format!("/me/{}/restrictions", w.recipient);
    let r =
        w.t.send(page_post(&patient, &restrictions, "domain=diagnosis"))
            .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(!w.summary(&w.doctor).await.text().contains("J45"));
    let r =
        w.t.send(page_get(&patient, &format!("{restrictions}?lang=en")))
            .await;
    assert!(r.text().contains("Never unlocked"), "{}", r.text());
    let lift = {
        let html = r.text();
        let at = html.find("/lift").unwrap();
        html[html[..at].rfind("action=\"").unwrap() + 8..at + 5].to_owned()
    };
    let r = w.t.send(page_post(&patient, &lift, "")).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(w.summary(&w.doctor).await.text().contains("J45"));

    // The access key: when issued; a new one sent (and not twice a minute).
    let key = format!("/me/{}/access-key", w.recipient);
    let r =
        w.t.send(page_get(&patient, &format!("{key}?lang=en")))
            .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Usable"), "{}", r.text());
    assert!(!r.text().contains(&w.key), "never the key itself");
    w.t.clock.advance(time::Duration::seconds(61));
    let r = w.t.send(page_post(&patient, &key, "")).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r =
        w.t.send(page_post(&patient, &format!("{key}?lang=en"), ""))
            .await;
    assert_eq!(r.status, 429);
    assert!(r.text().contains("less than a minute ago"), "{}", r.text());
    assert_ne!(
        w.t.last_message("+85291234567", "access-key").await["key"],
        w.key.as_str()
    );

    // Notification settings: a channel with nothing on file is refused by name.
    let settings = format!("/me/{}/settings", w.recipient);
    let r =
        w.t.send(page_get(&patient, &format!("{settings}?lang=en")))
            .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("always told"), "{}", r.text());
    let r =
        w.t.send(page_post(
            &patient,
            &format!("{settings}?lang=en"),
            "channel=email&language=en",
        ))
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text().contains("needs an e-mail or postal address"),
        "{}",
        r.text()
    );
    let r =
        w.t.send(page_post(
            &patient,
            &settings,
            "channel=app&language=en&refuses=yes",
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    // The change is told in the inbox, now the channel: read, and marked read.
    let inbox = format!("/me/{}/inbox", w.recipient);
    let r =
        w.t.send(page_get(&patient, &format!("{inbox}?lang=en")))
            .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("notification settings changed"),
        "{}",
        r.text()
    );
    let message = {
        let html = r.text();
        let at = html.find("/inbox/").unwrap() + 7;
        html[at..at + 36].to_owned()
    };
    let r =
        w.t.send(page_post(&patient, &format!("{inbox}/{message}/read"), ""))
            .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r =
        w.t.send(page_get(&patient, &format!("{inbox}?lang=en")))
            .await;
    assert!(!r.text().contains("Mark as read"), "{}", r.text());

    // Who looked: the doctor's reads, named, with the provider; the patient's own as such.
    let r =
        w.t.send(page_get(
            &patient,
            &format!("/me/{}/access-log?lang=en", w.recipient),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let html = r.text();
    assert!(html.contains("Viewed the record summary"), "{html}");
    assert!(html.contains("Clinic A"), "{html}");
    assert!(html.contains("your own reading"), "{html}");
    assert!(html.contains("/proof"), "{html}");

    // Consent again from the directory, on the sharing page: found by part of the name, given.
    let r = w.t.send(page_post(&patient, &revoke, "confirm=yes")).await;
    assert_eq!(r.status, 303);
    assert_eq!(w.summary(&w.doctor).await.status, 403);
    let r =
        w.t.send(page_get(&patient, &format!("{sharing}&q=clinic%20a")))
            .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text()
            .contains(&format!("name=\"hcp\" value=\"{}\"", w.hcp)),
        "{}",
        r.text()
    );
    let r =
        w.t.send(page_post(
            &patient,
            &format!("/me/{}/consents", w.recipient),
            &format!("hcp={}&kind=indefinite", w.hcp),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        r.header("location"),
        format!("/me/{}/sharing?given=1", w.recipient)
    );
    assert_eq!(w.summary(&w.doctor).await.status, 200);

    // Another person's pages: 404; a staff session: to the patient login; a patient's
    // session: no provider page.
    for page in ["record", "sharing", "access-log"] {
        let stranger = format!("/me/{}/{page}", uuid::Uuid::now_v7());
        assert_eq!(
            w.t.send(page_get(&patient, &stranger)).await.status,
            404,
            "{page}"
        );
    }
    let r = w.t.send(page_get(&w.doctor, "/me")).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), "/me/login");
    let r =
        w.t.send(page_get(&w.doctor, &format!("/me/{}/record", w.recipient)))
            .await;
    assert_eq!(r.status, 303);
    let r = w.t.send(page_get(&patient, "/hcp")).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), "/hcp/login");
    // Logged out: the pages are gone.
    assert_eq!(
        w.t.send(page_post(&patient, "/me/logout", "")).await.status,
        303
    );
    assert_eq!(w.t.send(page_get(&patient, "/me")).await.status, 303);
}

#[tokio::test]
async fn a_patient_registers_activates_resets_the_password_and_changes_the_phone_in_pages() {
    let w = world().await;
    // Register, in both languages; a refusal keeps what was typed and says why.
    let r = w.t.get("/me/register?lang=zh-HK").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("登記醫健通"), "{}", r.text());
    assert!(
        !r.text().contains("/auth/oidc/start"),
        "no iAM Smart button without an identity provider"
    );
    let number = "0123456789A"
        .chars()
        .map(|d| format!("K123456({d})"))
        .find(|id| ehrshare_core::identity::Hkid::parse(id).is_ok())
        .unwrap();
    let encoded = number.replace('(', "%28").replace(')', "%29");
    let fields = format!(
        "who=self&name_en=CHEUNG+Mei&name_zh=%E5%BC%B5%E7%BE%8E&date_of_birth=2015-03-03&sex=female\
         &kind=hkid&issuer=&number={encoded}&phone=9333+4444&email=&language=en&channel=sms"
    );
    let r = w.t.send(form("/me/register?lang=en", &fields)).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("registered by a parent"), "{}", r.text());
    assert!(r.text().contains("CHEUNG Mei"), "kept");
    let fields = fields.replace("2015-03-03", "1995-03-03");
    let r = w.t.send(form("/me/register?lang=en", &fields)).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.text().contains("waits for verification"), "{}", r.text());
    w.t.last_message("+85293334444", "registration-received")
        .await;
    let id = crate::self_service::waiting_registration(&w, &number).await;
    let office = w.t.office().await;
    let r = w
        .post(
            &office,
            &format!("/api/v1/recipients/{id}/events"),
            json!({"event": "verify"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let key = w.t.last_message("+85293334444", "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    // Activate in a page; a second time is refused with a pointer to the reset.
    let r = w.t.get("/me/activate?lang=en").await;
    assert_eq!(r.status, 200);
    let activate =
        format!("doc_type=hkid&issuer=&number={encoded}&access_key={key}&password=Cheung-Mei-2026");
    let r = w.t.send(form("/me/activate", &activate)).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), "/me/login?done=activated");
    let r = w.t.send(form("/me/activate?lang=en", &activate)).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("Forgot your password"), "{}", r.text());

    // Forgot the password: the key, then the code and a new password.
    let r =
        w.t.send(form(
            "/me/forgot?lang=en",
            &format!("doc_type=hkid&issuer=&number={encoded}&access_key=99999999"),
        ))
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r =
        w.t.send(form(
            "/me/forgot?lang=en",
            &format!("doc_type=hkid&issuer=&number={encoded}&access_key={key}"),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let challenge = hidden(&r.text(), "challenge");
    let code = w.t.last_message("+85293334444", "password-code").await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let r =
        w.t.send(form(
            "/me/password",
            &format!("challenge={challenge}&code={code}&password=Cheung-New-2026"),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), "/me/login?done=password");
    let r = w.t.get("/me/login?done=password&lang=en").await;
    assert!(r.text().contains("new password is set"), "{}", r.text());

    // Log in with it; change the phone from the settings page, by a code sent to it.
    let r =
        w.t.send(form(
            "/me/login",
            &format!("doc_type=hkid&issuer=&number={encoded}&password=Cheung-New-2026"),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let challenge = hidden(&r.text(), "challenge");
    let code = w.t.last_message("+85293334444", "login-code").await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let r =
        w.t.send(form(
            "/me/login/code",
            &format!("challenge={challenge}&code={code}"),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = session_cookie(&r);
    let settings =
        w.t.send(page_get(
            &Agent {
                cookie: cookie.clone(),
                csrf: String::new(),
                user_name: "cheung".into(),
                account: None,
            },
            &format!("/me/{id}/settings?lang=en"),
        ))
        .await;
    assert_eq!(settings.status, 200, "{}", settings.text());
    let me = Agent {
        cookie,
        csrf: hidden(&settings.text(), "csrf_token"),
        user_name: "cheung".into(),
        account: None,
    };
    let r =
        w.t.send(page_post(
            &me,
            &format!("/me/{id}/contact"),
            "kind=phone&value=123",
        ))
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r =
        w.t.send(page_post(
            &me,
            &format!("/me/{id}/contact?lang=en"),
            "kind=phone&value=6555+1212",
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let challenge = hidden(&r.text(), "challenge");
    let code = w.t.last_message("+85265551212", "contact-code").await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let current =
        w.t.last_message("+85293334444", "contact-confirm-code")
            .await["code"]
            .as_str()
            .unwrap()
            .to_owned();
    let r =
        w.t.send(page_post(
            &me,
            &format!("/me/{id}/contact/verify"),
            &format!("challenge={challenge}&code={code}&current_code={current}"),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let r =
        w.t.send(page_get(
            &me,
            &format!("/me/{id}/settings?contact=1&lang=en"),
        ))
        .await;
    assert!(r.text().contains("+85265551212"), "{}", r.text());
    assert!(r.text().contains("the old one was told"), "{}", r.text());
    w.t.last_message("+85293334444", "contact-changed").await;
}

/// Every page and API of `/me` refuses staff sessions, and the patient's session reaches no
/// staff page or API; no `/me` page can be framed or cached, and none changes anything on a
/// cross-site post (issue 27's acceptance).
#[tokio::test]
async fn every_me_route_refuses_staff_and_every_staff_route_refuses_patients() {
    let w = world().await;
    let patient = w.patient().await;
    let r = w.recipient.clone();
    let seq = 1;
    // The API, from the OpenAPI document: every operation on a recipient under /api/v1/me.
    let doc = w.t.get("/api/v1/openapi.json").await.json();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/me/recipients/") {
            continue;
        }
        let url = path
            .replace("{id}", &r)
            .replace("{seq}", &seq.to_string())
            .replace("{record}", &uuid::Uuid::now_v7().to_string())
            .replace("{message}", &uuid::Uuid::now_v7().to_string())
            .replace("{consent}", &uuid::Uuid::now_v7().to_string())
            .replace("{hcp}", &uuid::Uuid::now_v7().to_string())
            .replace("{restriction}", &uuid::Uuid::now_v7().to_string());
        for method in item.as_object().unwrap().keys() {
            let before = w.audit_count().await;
            let res =
                w.t.send_json(
                    Some(&w.doctor),
                    Request::builder()
                        .method(method.to_uppercase().as_str())
                        .uri(&url),
                    &json!({}),
                )
                .await;
            assert!(
                matches!(res.status.as_u16(), 404 | 400 | 422),
                "{method} {url} with a staff session: {} {}",
                res.status,
                res.text()
            );
            assert_ne!(res.status, 200);
            if res.status == 404 {
                assert_eq!(
                    w.audit_count().await,
                    before,
                    "{method} {url}: nothing logged"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} operations");
    // The patient's session on staff APIs: nothing.
    for path in [
        format!("/api/v1/recipients/{r}/summary"),
        format!("/api/v1/recipients/{r}"),
        format!("/api/v1/providers/{}/alerts", w.hcp),
        "/api/v1/office/alerts".to_owned(),
        "/api/v1/office/print-queue".to_owned(),
    ] {
        let res = w.get(&patient, &path).await;
        assert!(
            matches!(res.status.as_u16(), 401 | 403 | 404),
            "{path}: {} {}",
            res.status,
            res.text()
        );
    }

    // The pages.
    let pages = [
        "/me".to_owned(),
        format!("/me/{r}/record"),
        format!("/me/{r}/sharing"),
        format!("/me/{r}/access-log"),
        format!("/me/{r}/scan"),
        format!("/me/{r}/access-key"),
        format!("/me/{r}/settings"),
        format!("/me/{r}/inbox"),
        format!("/me/{r}/restrictions"),
    ];
    for page in &pages {
        let res = w.t.send(page_get(&w.doctor, page)).await;
        assert_eq!(res.status, 303, "{page} with a staff session");
        assert_eq!(res.header("location"), "/me/login", "{page}");
        let res = w.t.send(page_get(&patient, page)).await;
        assert_eq!(res.status, 200, "{page}: {}", res.text());
        assert_eq!(res.header("cache-control"), "no-store", "{page}");
        assert!(
            res.header("content-security-policy")
                .contains("frame-ancestors 'none'"),
            "{page}"
        );
        assert_eq!(res.header("x-frame-options"), "DENY", "{page}");
    }
    for page in ["/hcp", "/hcp/patients", "/hcp/access-log", "/hcp/alerts"] {
        let res = w.t.send(page_get(&patient, page)).await;
        assert_eq!(res.status, 303, "{page} with a patient's session");
        assert!(res.header("location").starts_with("/hcp/login"), "{page}");
    }
    // A cross-site post changes nothing: without the session's token, and from another origin.
    let posts = [
        (format!("/me/{r}/settings"), "channel=email&language=en"),
        (format!("/me/{r}/restrictions"), "domain=allergy"),
        (format!("/me/{r}/access-key"), ""),
        (format!("/me/{r}/contact"), "kind=phone&value=6123+0000"),
        (
            format!("/me/{r}/consents"),
            "hcp=00000000-0000-0000-0000-000000000000",
        ),
        (format!("/me/{r}/access-log/1/report"), "words=x"),
        ("/me/password/code".to_owned(), ""),
        ("/me/logout".to_owned(), ""),
    ];
    let before = w.audit_count().await;
    for (path, fields) in &posts {
        let res =
            w.t.send(
                Request::post(path.as_str())
                    .header("cookie", &patient.cookie)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from(fields.to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(res.status, 403, "{path} without the token: {}", res.text());
        let res =
            w.t.send(
                Request::post(path.as_str())
                    .header("cookie", &patient.cookie)
                    .header("origin", "https://evil.example")
                    .header("sec-fetch-site", "cross-site")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from(format!("csrf_token={}&{fields}", patient.csrf)))
                    .unwrap(),
            )
            .await;
        assert_eq!(res.status, 403, "{path} from another site: {}", res.text());
    }
    assert_eq!(w.audit_count().await, before, "nothing happened");
    assert_eq!(
        w.get(&patient, "/api/v1/me").await.status,
        200,
        "still logged in"
    );
}
