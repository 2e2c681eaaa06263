//! Accounts, login, sessions, CSRF and user administration (SPEC 4.2), through the HTTP API.

use axum::body::Body;
use axum::http::Request;
use ehrshare_app::duty::Scope;
use ehrshare_core::audit::Outcome;
use ehrshare_testkit::accounts::test_document_json;
use ehrshare_testkit::{Agent, SignedBy, TEST_PASSWORD, TestApp, TestResponse, session_cookie};
use serde_json::{Value, json};

async fn entries(t: &TestApp, action: &str) -> Vec<ehrshare_core::audit::AuditEntry> {
    t.db.connect()
        .await
        .audit_entries(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.entry.action == action)
        .collect()
}

/// A doctor's account opened by `ua` at `hcp`; returns the account id and the first password.
async fn open_account(
    t: &TestApp,
    ua: &Agent,
    hcp: &str,
    user: &str,
    role: &str,
) -> (String, String) {
    let mobile = "6000 1234";
    let mut body = json!({"user_name": user, "name_en": format!("CHAN {user}"), "role": role,
                          "mobile": mobile, "language": "en", "document": test_document_json(user)});
    if role == "doctor" {
        body["prof_reg_no"] = json!("M 12345");
    }
    let r = t
        .send_json(
            Some(ua),
            Request::post(format!("/api/v1/providers/{hcp}/accounts")),
            &body,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let first = t.last_message("+85260001234", "initial-password").await;
    assert_eq!(first["user"], user);
    (
        r.json()["id"].as_str().unwrap().to_owned(),
        first["password"].as_str().unwrap().to_owned(),
    )
}

async fn get(t: &TestApp, agent: &Agent, path: &str) -> TestResponse {
    t.send_json(Some(agent), Request::get(path), &Value::Null)
        .await
}

fn failure_body(r: &TestResponse) -> (u16, Value) {
    let mut body = r.json();
    body.as_object_mut().unwrap().remove("request_id");
    (r.status.as_u16(), body)
}

#[tokio::test]
async fn a_first_login_reaches_nothing_before_the_password_change_and_enrolment() {
    let t = TestApp::spawn().await;
    let (hcp, ua) = t.active_provider("First Clinic", "first").await;
    let (_, first) = open_account(&t, &ua, &hcp, "dr.chan", "doctor").await;

    let r = t.log_in("dr.chan", &first, None).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["stage"], "must-change-password");
    assert_eq!(r.json()["account"]["status"], "pending");
    let agent = Agent {
        cookie: session_cookie(&r),
        csrf: r.json()["csrf_token"].as_str().unwrap().to_owned(),
        user_name: "dr.chan".into(),
        account: None,
    };
    // Nothing else is reachable: not the account list, not token enrolment.
    let r = get(&t, &agent, &format!("/api/v1/providers/{hcp}/accounts")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "password-change-required");
    let r = t
        .send_json(
            Some(&agent),
            Request::post("/api/v1/session/token"),
            &Value::Null,
        )
        .await;
    assert_eq!(r.json()["code"], "password-change-required");

    // The policy: too short, common, reusing the first password.
    for (new, code) in [
        ("Ab1", "password-too-short"),
        ("Password123", "password-common"),
        (first.as_str(), "password-reused"),
    ] {
        let r = t
            .send_json(
                Some(&agent),
                Request::post("/api/v1/session/password"),
                &json!({"current_password": first, "new_password": new}),
            )
            .await;
        assert_eq!(r.status, 422, "{new}: {}", r.text());
        assert!(r.text().contains(code), "{new}: {}", r.text());
    }
    // A long passphrase (more than 64 characters, with non-ASCII) is accepted whole.
    let long = "正確的馬電池釘書機 correct horse battery staple 2026 and then some more words!";
    assert!(long.chars().count() > 64);
    let r = t
        .send_json(
            Some(&agent),
            Request::post("/api/v1/session/password"),
            &json!({"current_password": first, "new_password": long}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["stage"], "must-enrol-token");
    let r = get(&t, &agent, "/api/v1/session").await;
    assert_eq!(r.json()["stage"], "must-enrol-token");
    let r = get(&t, &agent, &format!("/api/v1/providers/{hcp}/accounts")).await;
    assert_eq!(r.json()["code"], "token-enrolment-required");

    // Enrolment: an otpauth URI and a QR code; a wrong code is refused.
    let r = t
        .send_json(
            Some(&agent),
            Request::post("/api/v1/session/token"),
            &Value::Null,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.json();
    assert!(
        e["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/ehrshare%3Adr.chan?secret=")
    );
    assert!(e["qr_svg"].as_str().unwrap().contains("<svg"));
    let secret = data_encoding::BASE32_NOPAD
        .decode(e["secret"].as_str().unwrap().as_bytes())
        .unwrap();
    let good = t.totp_code(&secret);
    let wrong = format!("{:06}", (good.parse::<u32>().unwrap() + 1) % 1_000_000);
    let r = t
        .send_json(
            Some(&agent),
            Request::post("/api/v1/session/token/confirm"),
            &json!({"code": wrong}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["code"], "wrong-token");
    let r = t
        .send_json(
            Some(&agent),
            Request::post("/api/v1/session/token/confirm"),
            &json!({"code": good}),
        )
        .await;
    assert_eq!(r.json()["stage"], "ready");
    let r = get(&t, &agent, "/api/v1/session").await;
    assert_eq!(r.json()["account"]["status"], "active");
    assert_eq!(r.json()["account"]["token_enrolled"], true);
    // The seed is sealed at rest: a copy of the database does not give the token away.
    let stored =
        t.db.connect()
            .await
            .account_by_user_name("dr.chan")
            .await
            .unwrap()
            .unwrap()
            .totp_secret
            .unwrap();
    assert_eq!(stored.len(), 1 + 12 + secret.len() + 16);
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_slice()));

    // From now on the token is required, and its code is accepted once.
    t.clock.advance(time::Duration::seconds(30));
    let r = t.log_in("dr.chan", long, None).await;
    assert_eq!(r.status, 401);
    let code = t.totp_code(&secret);
    let r = t.log_in("dr.chan", long, Some(&code)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["stage"], "ready");
    let replay = t.log_in("dr.chan", long, Some(&code)).await;
    assert_eq!(replay.status, 401, "the same code again in the same step");
    assert_eq!(replay.json()["code"], "login-failed");
    let last = entries(&t, "login").await.pop().unwrap();
    assert_eq!(last.entry.outcome, Outcome::Denied);
    assert_eq!(last.entry.denial_reason.as_deref(), Some("token-replayed"));
}

#[tokio::test]
async fn unknown_users_wrong_passwords_and_locked_accounts_look_the_same() {
    let t = TestApp::spawn().await;
    t.agent(Scope::Office, "office.admin", "system-administrator", false)
        .await;
    let unknown = t
        .log_in("no.such.user", "Whatever-2026", Some("123456"))
        .await;
    let wrong = t
        .log_in("office.admin", "Wrong-pass-2026", Some("123456"))
        .await;
    assert_eq!(failure_body(&unknown), failure_body(&wrong));
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.json()["code"], "login-failed");
    assert_eq!(unknown.header("content-type"), wrong.header("content-type"));

    // The true reasons are in the audit log, never in the answer.
    let reasons: Vec<Option<String>> = entries(&t, "login")
        .await
        .into_iter()
        .filter(|e| e.entry.outcome == Outcome::Denied)
        .map(|e| e.entry.denial_reason)
        .collect();
    assert_eq!(
        reasons,
        vec![
            Some("unknown-user".to_owned()),
            Some("wrong-password".to_owned())
        ]
    );
}

#[tokio::test]
async fn the_delay_grows_and_the_account_locks_before_one_hundred_failures() {
    let t = TestApp::spawn().await;
    let seed = *b"test-totp-seed-12345";
    t.agent(Scope::Office, "office.admin", "system-administrator", false)
        .await;
    let db = t.db.connect().await;
    let mut failures = 0;
    let mut waits = Vec::new();
    let mut locked = None;
    while failures < 100 {
        let r = t
            .log_in("office.admin", "Wrong-pass-2026", Some("000000"))
            .await;
        match r.status.as_u16() {
            401 => failures += 1,
            429 => {
                assert_eq!(r.json()["code"], "login-throttled");
                let secs: i64 = r.header("retry-after").parse().unwrap();
                waits.push(secs);
                t.clock.advance(time::Duration::seconds(secs));
                continue;
            }
            other => panic!("{other}: {}", r.text()),
        }
        let f = db.login_failures("user:office.admin").await.unwrap();
        if f.locked_until.is_some() {
            locked = Some(failures);
            break;
        }
    }
    assert!(
        waits.windows(2).all(|w| w[0] <= w[1])
            && waits.len() >= 3
            && waits[0] < waits[waits.len() - 1],
        "the delay grows: {waits:?}"
    );
    let locked = locked.expect("locked before 100 consecutive failures");
    assert!(locked < 100, "{locked}");
    // Locked: even the right password and code are refused, with the same answer.
    t.clock.advance(time::Duration::seconds(60));
    let r = t
        .log_in("office.admin", TEST_PASSWORD, Some(&t.totp_code(&seed)))
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["code"], "login-failed");
    let last = entries(&t, "login").await.pop().unwrap();
    assert_eq!(last.entry.denial_reason.as_deref(), Some("locked"));
    // The lock ends with time.
    t.clock.advance(time::Duration::minutes(31));
    let r = t
        .log_in("office.admin", TEST_PASSWORD, Some(&t.totp_code(&seed)))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn a_session_planted_before_login_is_not_the_one_after() {
    let t = TestApp::spawn().await;
    let planted = "__Host-ehrshare-session=attacker-chosen-session-id";
    t.agent(Scope::Office, "office.admin", "system-administrator", false)
        .await;
    t.clock.advance(time::Duration::seconds(30));
    let seed = *b"test-totp-seed-12345";
    let r = t
        .send(
            Request::post("/api/v1/session")
                .header("content-type", "application/json")
                .header("cookie", planted)
                .body(Body::from(
                    json!({"user_name": "office.admin", "password": TEST_PASSWORD,
                           "totp": t.totp_code(&seed)})
                    .to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let set = r.header("set-cookie").to_owned();
    assert!(set.starts_with("__Host-ehrshare-session="), "{set}");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attribute), "{attribute}: {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    let fresh = session_cookie(&r);
    assert_ne!(fresh, planted);
    // The planted id is still nobody's session.
    let r = t
        .send(
            Request::get("/api/v1/session")
                .header("cookie", planted)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn suspension_ends_open_sessions_and_logout_ends_the_cookie() {
    let t = TestApp::spawn().await;
    let (hcp, ua) = t.active_provider("Suspend Clinic", "susp").await;
    let doctor = t
        .agent(Scope::Hcp(hcp.parse().unwrap()), "dr.lee", "doctor", false)
        .await;
    let r = get(&t, &doctor, "/api/v1/session").await;
    assert_eq!(r.status, 200);
    let id = doctor.account.unwrap();

    let r = t
        .send_json(
            Some(&ua),
            Request::post(format!("/api/v1/providers/{hcp}/accounts/{id}/actions")),
            &json!({"action": "suspend", "reason": "left the clinic"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "suspended");
    let r = get(&t, &doctor, "/api/v1/session").await;
    assert_eq!(r.status, 401, "the open session died with the suspension");
    // And the suspended account cannot log in again (the same answer as any failure).
    let seed = *b"test-totp-seed-12345";
    t.clock.advance(time::Duration::seconds(30));
    let r = t
        .log_in("dr.lee", TEST_PASSWORD, Some(&t.totp_code(&seed)))
        .await;
    assert_eq!(r.json()["code"], "login-failed");

    // Logout: the cookie, replayed afterwards, is dead.
    let r = t
        .send_json(Some(&ua), Request::delete("/api/v1/session"), &Value::Null)
        .await;
    assert_eq!(r.status, 204);
    assert!(r.header("set-cookie").contains("Max-Age=0"));
    let r = get(&t, &ua, "/api/v1/session").await;
    assert_eq!(r.status, 401);
    assert_eq!(entries(&t, "logout").await.len(), 1);
    assert_eq!(entries(&t, "account.suspend").await.len(), 1);
}

#[tokio::test]
async fn sessions_end_when_idle_and_after_twelve_hours() {
    let t = TestApp::spawn().await;
    let agent = t
        .agent(Scope::Office, "office.admin", "system-administrator", false)
        .await;
    t.clock.advance(time::Duration::minutes(14));
    assert_eq!(get(&t, &agent, "/api/v1/session").await.status, 200);
    t.clock.advance(time::Duration::minutes(15));
    assert_eq!(get(&t, &agent, "/api/v1/session").await.status, 401, "idle");

    let agent = t
        .login_agent("office.admin", b"test-totp-seed-12345", None)
        .await;
    for _ in 0..((12 * 60) / 10 - 1) {
        t.clock.advance(time::Duration::minutes(10));
        assert_eq!(get(&t, &agent, "/api/v1/session").await.status, 200);
    }
    t.clock.advance(time::Duration::minutes(10));
    assert_eq!(
        get(&t, &agent, "/api/v1/session").await.status,
        401,
        "absolute"
    );
}

#[tokio::test]
async fn a_cross_site_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let t = TestApp::spawn().await;
    let (hcp, ua) = t.active_provider("Csrf Clinic", "csrf").await;
    let body = json!({"user_name": "victim.made", "name_en": "MADE", "role": "nurse",
                      "prof_reg_no": "RN123456", "mobile": "6000 9999",
                      "document": test_document_json("victim.made")});
    let path = format!("/api/v1/providers/{hcp}/accounts");
    // A forged form post from another site: the browser sends the cookie, not the token.
    let r = t
        .send(
            Request::post(&path)
                .header("cookie", &ua.cookie)
                .header("origin", "https://evil.example")
                .header("sec-fetch-site", "cross-site")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "csrf-cross-site");
    // Same site but without the token (or with another session's), also refused.
    for token in [None, Some("not-the-token")] {
        let mut req = Request::post(&path)
            .header("cookie", &ua.cookie)
            .header("content-type", "application/json");
        if let Some(tok) = token {
            req = req.header("x-csrf-token", tok);
        }
        let r = t
            .send(req.body(Body::from(body.to_string())).unwrap())
            .await;
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(r.json()["code"], "csrf-token-invalid");
    }
    let list = get(&t, &ua, &path).await.json();
    assert!(
        !list
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["user_name"] == "victim.made"),
        "nothing was created"
    );
    // With the token (and our own origin) it works.
    let r = t
        .send(
            Request::post(&path)
                .signed_by(&ua)
                .header("origin", "http://127.0.0.1:8080")
                .header("sec-fetch-site", "same-origin")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn user_administrators_manage_only_their_own_providers_accounts() {
    let t = TestApp::spawn().await;
    let (a, ua_a) = t.active_provider("Clinic A", "a").await;
    let (b, ua_b) = t.active_provider("Clinic B", "b").await;
    let (b_doctor, _) = open_account(&t, &ua_b, &b, "dr.b", "doctor").await;

    // HCP B's account, asked by HCP A's administrator: as if it did not exist.
    for path in [
        format!("/api/v1/providers/{b}/accounts/{b_doctor}"),
        format!("/api/v1/providers/{a}/accounts/{b_doctor}"),
        format!("/api/v1/providers/{b}/accounts"),
    ] {
        let r = get(&t, &ua_a, &path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
    let r = t
        .send_json(
            Some(&ua_a),
            Request::post(format!("/api/v1/providers/{b}/accounts/{b_doctor}/actions")),
            &json!({"action": "suspend"}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = get(
        &t,
        &ua_b,
        &format!("/api/v1/providers/{b}/accounts/{b_doctor}"),
    )
    .await;
    assert_eq!(r.json()["status"], "pending", "untouched");

    // Roles come from the professions list; numbers must fit the profession.
    let path = format!("/api/v1/providers/{a}/accounts");
    let create = |body: Value| {
        let (t, ua_a, path) = (&t, &ua_a, path.clone());
        async move { t.send_json(Some(ua_a), Request::post(path), &body).await }
    };
    let r = create(
        json!({"user_name": "x.wizard", "name_en": "X", "role": "wizard", "mobile": "6000 1111"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["code"], "invalid-role");
    let r = create(
        json!({"user_name": "x.chiro", "name_en": "X", "role": "chiropractor",
                          "prof_reg_no": "CH1234", "mobile": "6000 1111"}),
    )
    .await;
    assert_eq!(r.json()["code"], "invalid-role", "disabled by default");
    let r = create(
        json!({"user_name": "x.doctor", "name_en": "X", "role": "doctor",
                          "prof_reg_no": "D12345", "mobile": "6000 1111"}),
    )
    .await;
    assert_eq!(r.json()["code"], "invalid-registration-number");
    // An administrator never chooses a password.
    let r = create(json!({"user_name": "x.nurse", "name_en": "X", "role": "nurse",
                          "prof_reg_no": "RN123456", "mobile": "6000 1111", "password": "Chosen-2026"}))
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let list = get(&t, &ua_a, &format!("/api/v1/providers/{a}/accounts"))
        .await
        .json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["user_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["ua.a"], "nothing was created");
    // The list shows the last login.
    assert!(list[0]["last_login_at"].is_string());

    // A role change is audited; a doctor (not an administrator) sees no accounts at all.
    let (nurse_id, _) = open_account(&t, &ua_a, &a, "nurse.a", "registration-staff").await;
    let r = t
        .send_json(
            Some(&ua_a),
            Request::put(format!("/api/v1/providers/{a}/accounts/{nurse_id}/role")),
            &json!({"role": "nurse", "prof_reg_no": "RN654321"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["role"], "nurse");
    assert_eq!(entries(&t, "account.change-role").await.len(), 1);
    let doctor = t
        .agent(Scope::Hcp(a.parse().unwrap()), "dr.a", "doctor", false)
        .await;
    assert_eq!(
        get(&t, &doctor, &format!("/api/v1/providers/{a}/accounts"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_reset_forces_a_new_password_and_token_and_an_unlock_lifts_the_lock() {
    let t = TestApp::spawn().await;
    let (hcp, ua) = t.active_provider("Reset Clinic", "reset").await;
    let (id, first) = open_account(&t, &ua, &hcp, "dr.reset", "doctor").await;
    let (agent, _) = t.first_login("dr.reset", &first).await;
    let r = t
        .send_json(
            Some(&ua),
            Request::post(format!("/api/v1/providers/{hcp}/accounts/{id}/actions")),
            &json!({"action": "reset"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["token_enrolled"], false);
    assert_eq!(get(&t, &agent, "/api/v1/session").await.status, 401);
    let second = t.last_message("+85260001234", "password-reset").await["password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, first);
    let r = t.log_in("dr.reset", TEST_PASSWORD, None).await;
    assert_eq!(r.status, 401, "the old password is gone");
    let r = t.log_in("dr.reset", &second, None).await;
    assert_eq!(r.json()["stage"], "must-change-password");

    // Lock the name, then the administrator unlocks it.
    for _ in 0..30 {
        let r = t.log_in("dr.reset", "Wrong-pass-2026", None).await;
        if r.status == 429 {
            let secs: i64 = r.header("retry-after").parse().unwrap();
            t.clock.advance(time::Duration::seconds(secs));
        }
    }
    let db = t.db.connect().await;
    assert!(
        db.login_failures("user:dr.reset")
            .await
            .unwrap()
            .locked_until
            .is_some()
    );
    assert_eq!(t.log_in("dr.reset", &second, None).await.status, 401);
    let r = t
        .send_json(
            Some(&ua),
            Request::post(format!("/api/v1/providers/{hcp}/accounts/{id}/actions")),
            &json!({"action": "unlock"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = t.log_in("dr.reset", &second, None).await;
    assert_eq!(r.status, 201, "unlocked: {}", r.text());
    assert_eq!(entries(&t, "account.unlock").await.len(), 1);
}

#[tokio::test]
async fn office_system_administrators_open_office_accounts() {
    let t = TestApp::spawn().await;
    let admin = t
        .agent(Scope::Office, "office.admin", "system-administrator", false)
        .await;
    let r = t
        .send_json(
            Some(&admin),
            Request::post("/api/v1/office/accounts"),
            &json!({"user_name": "officer.wong", "name_en": "WONG", "role": "privacy-officer",
                    "mobile": "6111 2222", "document": test_document_json("officer.wong")}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["realm"], "office");
    let r = t
        .send_json(
            Some(&admin),
            Request::post("/api/v1/office/accounts"),
            &json!({"user_name": "officer.doc", "name_en": "X", "role": "doctor", "mobile": "6111 2222"}),
        )
        .await;
    assert_eq!(r.json()["code"], "invalid-role");
    // A registration officer may not.
    let officer = t.office().await;
    let r = get(&t, &officer, "/api/v1/office/accounts").await;
    assert_eq!(r.status, 404);
    // The new officer's first login works like everyone's.
    let first = t.last_message("+85261112222", "initial-password").await["password"]
        .as_str()
        .unwrap()
        .to_owned();
    t.first_login("officer.wong", &first).await;
}

#[tokio::test]
async fn a_password_near_its_age_limit_is_reminded_and_an_expired_one_must_change() {
    let t = TestApp::spawn().await;
    let seed = *b"test-totp-seed-12345";
    t.agent(Scope::Office, "office.admin", "system-administrator", false)
        .await;
    t.clock.advance(time::Duration::days(80));
    let r = t
        .log_in("office.admin", TEST_PASSWORD, Some(&t.totp_code(&seed)))
        .await;
    assert_eq!(r.json()["stage"], "ready");
    assert!(r.json()["password_expires_at"].is_string(), "{}", r.text());
    t.clock.advance(time::Duration::days(11));
    let r = t
        .log_in("office.admin", TEST_PASSWORD, Some(&t.totp_code(&seed)))
        .await;
    assert_eq!(r.json()["stage"], "must-change-password");
}

#[tokio::test]
async fn one_address_trying_many_user_names_is_slowed_then_locked() {
    let t = TestApp::spawn().await;
    let seed = *b"test-totp-seed-12345";
    t.agent(Scope::Office, "office.admin", "system-administrator", false)
        .await;
    let attacker: std::net::SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let colleague: std::net::SocketAddr = "198.51.100.9:40000".parse().unwrap();
    let login_from = |addr: std::net::SocketAddr, user: String, password: &str, code: String| {
        let body = json!({"user_name": user, "password": password, "totp": code}).to_string();
        Request::post("/api/v1/session")
            .header("content-type", "application/json")
            .extension(axum::extract::ConnectInfo(addr))
            .body(Body::from(body))
            .unwrap()
    };
    let mut failures = 0;
    let mut waited = false;
    for n in 0..200 {
        let r = t
            .send(login_from(
                attacker,
                format!("guess.{n}"),
                "Guess-2026",
                "000000".into(),
            ))
            .await;
        match r.status.as_u16() {
            401 => failures += 1,
            429 => {
                waited = true;
                let secs: i64 = r.header("retry-after").parse().unwrap();
                t.clock.advance(time::Duration::seconds(secs));
            }
            other => panic!("{other}"),
        }
        let locked =
            t.db.connect()
                .await
                .login_failures("addr:203.0.113.7")
                .await
                .unwrap()
                .locked_until
                .is_some();
        if locked {
            break;
        }
    }
    assert!(waited, "the address was slowed before it was locked");
    assert!(failures < 100, "locked after {failures} failures");
    // From the locked address even the right credentials fail; from another they work.
    t.clock.advance(time::Duration::seconds(60));
    let r = t
        .send(login_from(
            attacker,
            "office.admin".into(),
            TEST_PASSWORD,
            t.totp_code(&seed),
        ))
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = t
        .send(login_from(
            colleague,
            "office.admin".into(),
            TEST_PASSWORD,
            t.totp_code(&seed),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn the_access_profiles_in_force_are_shown_with_their_version() {
    let t = TestApp::spawn().await;
    assert_eq!(t.get("/api/v1/access-profiles").await.status, 401);
    let office = t.office().await;
    let r = get(&t, &office, "/api/v1/access-profiles").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["version"], "spec-3.6");
    assert_eq!(body["roles"]["registration-staff"], json!(["demographics"]));
    assert_eq!(body["roles"]["user-administrator"], json!([]));
    assert!(
        !body["roles"]["pharmacist"]
            .as_array()
            .unwrap()
            .contains(&json!("clinical-note"))
    );
}

/// The id of the account named `user` in a provider's list.
async fn account_id(t: &TestApp, ua: &Agent, hcp: &str, user: &str) -> String {
    let list = get(t, ua, &format!("/api/v1/providers/{hcp}/accounts"))
        .await
        .json();
    list.as_array()
        .unwrap()
        .iter()
        .find(|a| a["user_name"] == user)
        .unwrap_or_else(|| panic!("no {user} in {list}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn nobody_grants_themselves_a_role_and_every_grant_is_told_and_alerted() {
    let t = TestApp::spawn().await;
    let (a, ua) = t.active_provider("Duty Clinic", "duty").await;
    let (b, ua_b) = t.active_provider("Other Clinic", "other").await;
    let accounts = format!("/api/v1/providers/{a}/accounts");
    let me = account_id(&t, &ua, &a, "ua.duty").await;
    let audited = entries(&t, "account.change-role").await.len();

    // The administrator makes itself a doctor: refused, audited, nothing changed, and the
    // session still reads no clinical data.
    let r = t
        .send_json(
            Some(&ua),
            Request::put(format!("{accounts}/{me}/role")),
            &json!({"role": "doctor", "prof_reg_no": "M77777", "user_admin": true}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "own-account");
    let denied = entries(&t, "account.change-role").await;
    assert_eq!(denied.len(), audited + 1);
    assert_eq!(denied.last().unwrap().entry.outcome, Outcome::Denied);
    assert_eq!(
        denied.last().unwrap().entry.denial_reason.as_deref(),
        Some("own-account")
    );
    let session = get(&t, &ua, "/api/v1/session").await.json();
    assert_eq!(
        session["account"]["role"], "user-administrator",
        "{session}"
    );
    for action in ["suspend", "reset", "terminate"] {
        let r = t
            .send_json(
                Some(&ua),
                Request::post(format!("{accounts}/{me}/actions")),
                &json!({"action": action}),
            )
            .await;
        assert_eq!(r.status, 403, "{action}: {}", r.text());
        assert_eq!(r.json()["code"], "own-account");
    }

    // Nor a second account bearing its own document (at its provider or elsewhere).
    let r = t
        .send_json(
            Some(&ua),
            Request::post(&accounts),
            &json!({"user_name": "alter.ego", "name_en": "ALTER", "role": "doctor",
                    "prof_reg_no": "M77777", "mobile": "6000 7777",
                    "document": test_document_json("ua.duty")}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "own-document");
    // Without a document, a clinical account cannot be opened.
    let r = t
        .send_json(
            Some(&ua),
            Request::post(&accounts),
            &json!({"user_name": "no.doc", "name_en": "NO DOC", "role": "doctor",
                    "prof_reg_no": "M77777", "mobile": "6000 7777"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["field"], "/document");
    let list = get(&t, &ua, &accounts).await.json().to_string();
    assert!(
        !list.contains("alter.ego") && !list.contains("no.doc"),
        "{list}"
    );

    // A second administrator; then every grant is told to the holder and the other
    // administrators, and raises an alert.
    let (_, first) = open_account(&t, &ua, &a, "ua.second", "user-administrator").await;
    t.first_login("ua.second", &first).await;
    let alerts_before =
        t.db.connect()
            .await
            .alerts(a.parse().unwrap())
            .await
            .unwrap()
            .len();
    let (doctor_id, _) = open_account(&t, &ua, &a, "dr.duty", "doctor").await;
    let told = t.last_message("+85260001234", "account-granted").await;
    assert_eq!(told["user"], "dr.duty");
    assert_eq!(told["role"], "doctor");
    assert_eq!(told["by"], "ua.duty");
    let alerts =
        t.db.connect()
            .await
            .alerts(a.parse().unwrap())
            .await
            .unwrap();
    assert_eq!(alerts.len(), alerts_before + 1);
    assert!(
        alerts.iter().any(|x| x.rule == "account-granted"
            && x.detail.as_deref().unwrap_or("").contains("dr.duty")),
        "{alerts:?}"
    );
    let r = t
        .send_json(
            Some(&ua),
            Request::put(format!("{accounts}/{doctor_id}/role")),
            &json!({"role": "doctor", "prof_reg_no": "M 12345", "user_admin": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        t.db.connect()
            .await
            .alerts(a.parse().unwrap())
            .await
            .unwrap()
            .len(),
        alerts_before + 2
    );

    // A registration number stays with one person: another document is refused, the same
    // person at another provider is not.
    let r = t
        .send_json(
            Some(&ua),
            Request::post(&accounts),
            &json!({"user_name": "dr.copy", "name_en": "COPY", "role": "doctor",
                    "prof_reg_no": "M 12345", "mobile": "6000 7777",
                    "document": test_document_json("dr.copy")}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "registration-number-taken");
    let r = t
        .send_json(
            Some(&ua_b),
            Request::post(format!("/api/v1/providers/{b}/accounts")),
            &json!({"user_name": "dr.duty.b", "name_en": "CHAN dr.duty", "role": "doctor",
                    "prof_reg_no": "M 12345", "mobile": "6000 1234",
                    "document": test_document_json("dr.duty")}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    // The office opens only a provider's administrator while none is active, and changes no
    // roles there.
    let office = t.office().await;
    let r = t
        .send_json(
            Some(&office),
            Request::post(&accounts),
            &json!({"user_name": "office.doctor", "name_en": "X", "role": "doctor",
                    "prof_reg_no": "M 55555", "mobile": "6000 5555",
                    "document": test_document_json("office.doctor")}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "office-first-administrator-only");
    let admin_b = json!({"user_name": "ua.spare", "name_en": "SPARE", "role": "user-administrator",
                         "mobile": "6000 5556", "document": test_document_json("ua.spare")});
    let path_b = format!("/api/v1/providers/{b}/accounts");
    let r = t
        .send_json(Some(&office), Request::post(&path_b), &admin_b)
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "office-first-administrator-only");
    let r = t
        .send_json(
            Some(&office),
            Request::put(format!("{accounts}/{doctor_id}/role")),
            &json!({"role": "registration-staff"}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // Provider B's only administrator suspended (by the office): a replacement, alerted.
    let ua_b_id = account_id(&t, &ua_b, &b, "ua.other").await;
    let r = t
        .send_json(
            Some(&office),
            Request::post(format!("{path_b}/{ua_b_id}/actions")),
            &json!({"action": "suspend", "reason": "left without notice"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = t
        .send_json(Some(&office), Request::post(&path_b), &admin_b)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let alerts_b =
        t.db.connect()
            .await
            .alerts(b.parse().unwrap())
            .await
            .unwrap();
    assert!(
        alerts_b.iter().any(|x| x.rule == "administrator-replaced"),
        "{alerts_b:?}"
    );
}
