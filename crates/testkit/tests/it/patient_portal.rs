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
    let id =
        w.t.last_message("+85293334444", "registration-received")
            .await["reference"]
            .as_str()
            .unwrap()
            .to_owned();
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
