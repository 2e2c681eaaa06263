//! Provider registration, lifecycle and the public directory.

use axum::body::Body;
use axum::http::Request;
use ehrshare_app::Settings;
use ehrshare_testkit::{SignedBy, TestApp, TestResponse};
use ehrshare_web::WebSettings;
use serde_json::{Value, json};

async fn app() -> TestApp {
    TestApp::with_settings(Settings::default(), WebSettings::default()).await
}

async fn office_post(t: &TestApp, path: &str, body: &Value) -> TestResponse {
    let office = t.office().await;
    t.send_json(Some(&office), Request::post(path), body).await
}

async fn office_get(t: &TestApp, path: &str) -> TestResponse {
    let office = t.office().await;
    t.send_json(Some(&office), Request::get(path), &Value::Null)
        .await
}

fn application(name_en: &str, name_zh: &str, hcp_type: &str, district: &str) -> Value {
    json!({
        "name_en": name_en,
        "name_zh": name_zh,
        "br_number": "12345678-000",
        "hcp_type": hcp_type,
        "sector": "private",
        "authorised_person": {"name": "WONG Siu Wai", "position": "Director", "phone": "9876 5432"},
        "contact_person": {"name": "LEE Ka Yan", "phone": "2345 6789", "email": "contact@example.org"},
        "locations": [{
            "name_en": format!("{name_en} (Main)"),
            "name_zh": format!("{name_zh}（總店）"),
            "room_floor": "Shop 3, G/F",
            "building": "Shatin Plaza",
            "street": "21 Sha Tin Centre Street",
            "district": district,
            "phone": "2693 1234"
        }],
        "staff": [
            {"name_en": "WONG Siu Wai", "name_zh": "黃小慧", "role": "user-administrator", "mobile": "9876 5432"},
            {"name_en": "HO Suk Fan", "name_zh": "何淑芬", "role": "chinese-medicine-practitioner",
             "prof_reg_no": "003456", "mobile": "9123 0001", "listed": true},
            {"name_en": "CHEUNG Kwok Wing", "role": "doctor", "prof_reg_no": "M 10234", "mobile": "9123 0002"}
        ]
    })
}

/// Registers a provider and takes it through acceptance and set-up (its first user
/// administrator enrols).
async fn active_provider(t: &TestApp, body: &Value) -> String {
    let r = office_post(t, "/api/v1/providers", body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = office_post(
        t,
        &format!("/api/v1/providers/{id}/events"),
        &json!({"event": "accept"}),
    )
    .await;
    assert_eq!(r.status, 200, "accept: {}", r.text());
    t.set_up_provider(&id, &format!("ua-{}", &id[24..])).await;
    let r = office_get(t, &format!("/api/v1/providers/{id}")).await;
    assert_eq!(r.json()["status"], "active", "set up by enrolment");
    id
}

async fn directory(t: &TestApp, query: &str) -> Value {
    let r = t.get(&format!("/api/v1/directory{query}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name_en"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_application_goes_through_its_lifecycle() {
    let t = app().await;
    let r = office_post(
        &t,
        "/api/v1/providers",
        &application("Wai Kee Clinic", "偉記診所", "clinic", "sha-tin"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    assert_eq!(body["status"], "submitted");
    assert_eq!(body["br_number"], "12345678000");
    assert_eq!(body["locations"][0]["district_zh"], "沙田");
    assert!(
        body["locations"][0]["qr_payload"]
            .as_str()
            .unwrap()
            .starts_with("ehrshare:location:")
    );
    let id = body["id"].as_str().unwrap();

    // No accounts before acceptance; set-up is not an event the office sends.
    let r = office_post(
        &t,
        &format!("/api/v1/providers/{id}/accounts"),
        &json!({"user_name": "early.admin", "name_en": "EARLY", "role": "user-administrator",
                "mobile": "9123 4567", "document": ehrshare_testkit::accounts::test_document_json("early.admin")}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "provider-not-accepted");
    let r = office_post(
        &t,
        &format!("/api/v1/providers/{id}/events"),
        &json!({"event": "complete-set-up"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["code"], "set-up-by-enrolment");
    let r = office_post(
        &t,
        &format!("/api/v1/providers/{id}/events"),
        &json!({"event": "reject"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["code"], "reason-required");

    let r = office_post(
        &t,
        &format!("/api/v1/providers/{id}/events"),
        &json!({"event": "accept"}),
    )
    .await;
    assert_eq!(r.json()["status"], "accepted");
    // Every change is audited.
    let actions: Vec<String> =
        t.db.connect()
            .await
            .audit_entries(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.entry.action)
            .collect();
    // (The first entries are the test's office login.)
    let tail: Vec<&str> = actions
        .iter()
        .map(String::as_str)
        .filter(|a| a.starts_with("hcp."))
        .collect();
    assert_eq!(tail, vec!["hcp.apply", "hcp.accept"]);
}

#[tokio::test]
async fn an_accepted_application_without_set_up_lapses_on_day_61() {
    let t = app().await;
    let r = office_post(
        &t,
        "/api/v1/providers",
        &application("Slow Clinic", "慢診所", "clinic", "tai-po"),
    )
    .await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    office_post(
        &t,
        &format!("/api/v1/providers/{id}/events"),
        &json!({"event": "accept"}),
    )
    .await;

    t.clock.advance(time::Duration::days(60));
    assert_eq!(
        office_get(&t, &format!("/api/v1/providers/{id}"))
            .await
            .json()["status"],
        "accepted"
    );
    t.clock.advance(time::Duration::days(1));
    assert_eq!(
        office_get(&t, &format!("/api/v1/providers/{id}"))
            .await
            .json()["status"],
        "lapsed"
    );
    let r = office_post(
        &t,
        &format!("/api/v1/providers/{id}/accounts"),
        &json!({"user_name": "late.admin", "name_en": "LATE", "role": "user-administrator",
                "mobile": "9123 4567", "document": ehrshare_testkit::accounts::test_document_json("late.admin")}),
    )
    .await;
    assert_eq!(r.status, 409, "too late to set up: {}", r.text());
    assert_eq!(r.json()["code"], "provider-not-accepted");
}

#[tokio::test]
async fn the_directory_finds_a_cm_clinic_by_partial_chinese_name_and_district() {
    let t = app().await;
    active_provider(
        &t,
        &application(
            "Tung Wah Chinese Medicine Centre",
            "東華中醫診所",
            "cm-clinic",
            "sha-tin",
        ),
    )
    .await;
    active_provider(
        &t,
        &application(
            "Kowloon Family Clinic",
            "九龍家庭診所",
            "clinic",
            "kowloon-city",
        ),
    )
    .await;
    // Submitted only: not in the directory.
    office_post(
        &t,
        "/api/v1/providers",
        &application("Pending Herbal Clinic", "待批中醫", "cm-clinic", "sha-tin"),
    )
    .await;

    let page = directory(&t, "?q=%E4%B8%AD%E9%86%AB").await; // 中醫
    assert_eq!(names(&page), vec!["Tung Wah Chinese Medicine Centre"]);
    let page = directory(&t, "?district=sha-tin").await;
    assert_eq!(names(&page), vec!["Tung Wah Chinese Medicine Centre"]);
    let page = directory(&t, "?q=family&type=clinic").await;
    assert_eq!(names(&page), vec!["Kowloon Family Clinic"]);
    assert_eq!(
        page["items"][0]["locations"][0]["district_en"],
        "Kowloon City"
    );
    let page = directory(&t, "").await;
    assert_eq!(page["total"], 2);
    assert_eq!(
        directory(&t, "?per_page=1&page=2").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn search_input_is_data_not_sql_or_wildcards() {
    let t = app().await;
    active_provider(
        &t,
        &application("100% Care Clinic", "百分百診所", "clinic", "eastern"),
    )
    .await;
    active_provider(
        &t,
        &application("O'Brien Medical", "奧布萊恩醫務", "clinic", "eastern"),
    )
    .await;
    for (query, expected) in [
        ("?q=%25", vec!["100% Care Clinic"]), // a literal %, not "anything"
        ("?q=_", Vec::<&str>::new()),         // a literal _, not "any character"
        ("?q=O%27Brien", vec!["O'Brien Medical"]), // a quote
        ("?q=%27%3B%20DROP%20TABLE%20hcp%3B--", vec![]),
        ("?q=%5C", vec![]), // a backslash
    ] {
        assert_eq!(names(&directory(&t, query).await), expected, "{query}");
    }
    assert_eq!(directory(&t, "").await["total"], 2, "the table is intact");
}

#[tokio::test]
async fn a_suspended_provider_vanishes_from_the_directory() {
    let t = app().await;
    let id = active_provider(
        &t,
        &application("Harbour Clinic", "海港診所", "clinic", "wan-chai"),
    )
    .await;
    assert_eq!(directory(&t, "?q=harbour").await["total"], 1);
    let r = office_post(
        &t,
        &format!("/api/v1/providers/{id}/events"),
        &json!({"event": "suspend", "reason": "licence under review"}),
    )
    .await;
    assert_eq!(r.json()["status"], "suspended");
    assert_eq!(directory(&t, "?q=harbour").await["total"], 0);
    office_post(
        &t,
        &format!("/api/v1/providers/{id}/events"),
        &json!({"event": "reinstate"}),
    )
    .await;
    assert_eq!(directory(&t, "?q=harbour").await["total"], 1);

    // A withdrawal dated ahead keeps it listed until then.
    let effective = (time::macros::datetime!(2026-01-15 09:30 UTC) + time::Duration::days(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = office_post(
        &t,
        &format!("/api/v1/providers/{id}/events"),
        &json!({"event": "withdraw", "reason": "closing", "effective": effective}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(directory(&t, "?q=harbour").await["total"], 1);
    t.clock.advance(time::Duration::days(10));
    assert_eq!(directory(&t, "?q=harbour").await["total"], 0);
}

#[tokio::test]
async fn additional_locations_and_invalid_applications() {
    let t = app().await;
    let id = active_provider(
        &t,
        &application("Two Site Clinic", "雙址診所", "clinic", "islands"),
    )
    .await;
    let r = office_post(
        &t,
        &format!("/api/v1/providers/{id}/locations"),
        &json!({
            "name_en": "Two Site Clinic (Tung Chung)", "name_zh": "雙址診所（東涌）",
            "street": "1 Tat Tung Road", "district": "islands", "phone": "2109 8765"
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        office_get(&t, &format!("/api/v1/providers/{id}"))
            .await
            .json()["locations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let mut bad = application("Bad", "壞", "spa", "kowloon");
    bad["locations"][0]["phone"] = json!("123");
    let r = office_post(&t, "/api/v1/providers", &bad).await;
    assert_eq!(r.status, 422);
    let fields: Vec<String> = r.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fields,
        vec!["/hcp_type", "/locations/0/district", "/locations/0/phone"]
    );
    let r = office_post(
        &t,
        &format!("/api/v1/providers/{}/events", uuid::Uuid::now_v7()),
        &json!({"event": "accept"}),
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn the_directory_lists_professionals_who_agreed_and_finds_by_profession() {
    let t = app().await;
    let id = active_provider(
        &t,
        &application(
            "Tung Wah Chinese Medicine Centre",
            "東華中醫診所",
            "cm-clinic",
            "sha-tin",
        ),
    )
    .await;
    let mut other = application(
        "Kowloon Family Clinic",
        "九龍家庭診所",
        "clinic",
        "kowloon-city",
    );
    other["staff"][1] = json!({"name_en": "LEE Ka Yan", "role": "nurse", "prof_reg_no": "RN123456", "mobile": "9123 0003", "listed": true});
    active_provider(&t, &other).await;

    let page = directory(&t, "?profession=chinese-medicine-practitioner").await;
    assert_eq!(names(&page), vec!["Tung Wah Chinese Medicine Centre"]);
    let pros = page["items"][0]["professionals"].as_array().unwrap();
    assert_eq!(
        pros.len(),
        1,
        "the unlisted doctor and the administrator are not public: {pros:?}"
    );
    assert_eq!(pros[0]["name_zh"], "何淑芬");
    assert_eq!(pros[0]["profession_zh"], "中醫");
    assert!(
        !page.to_string().contains("9123 0001") && !page.to_string().contains("+85291230001"),
        "no phone numbers of staff"
    );
    assert_eq!(
        names(&directory(&t, "?profession=doctor").await),
        Vec::<String>::new(),
        "not listed"
    );
    assert_eq!(
        names(&directory(&t, "?profession=nurse").await),
        vec!["Kowloon Family Clinic"]
    );

    // The office sees all staff, with normalised registration numbers.
    let view = office_get(&t, &format!("/api/v1/providers/{id}"))
        .await
        .json();
    let regs: Vec<&str> = view["staff"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["prof_reg_no"].as_str())
        .collect();
    assert_eq!(regs, vec!["M10234", "003456"]);
}

#[tokio::test]
async fn an_application_names_a_user_administrator_and_valid_staff() {
    let t = app().await;
    let mut body = application("No Admin Clinic", "無管理診所", "clinic", "north");
    body["staff"] = json!([
        {"name_en": "CHAN Tai Man", "role": "doctor", "mobile": "9123 0004"},
        {"name_en": "LAU Siu Ming", "role": "janitor", "mobile": "9123 0005"}
    ]);
    let r = office_post(&t, "/api/v1/providers", &body).await;
    assert_eq!(r.status, 422);
    let fields: Vec<String> = r.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["field"].as_str().unwrap(),
                e["code"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        fields,
        vec![
            "/staff/0/prof_reg_no required",
            "/staff/1/role invalid-role",
            "/staff user-administrator-required",
        ]
    );
    // A draft may be saved without one.
    body["staff"] = json!([]);
    body["submit"] = json!(false);
    let r = office_post(&t, "/api/v1/providers", &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["status"], "draft");
}

async fn upload(t: &TestApp, id: &str, media_type: &str, content: Vec<u8>) -> TestResponse {
    t.send(
        Request::post(format!(
            "/api/v1/providers/{id}/documents?kind=business-registration&file_name=BR%20cert.pdf"
        ))
        .header("content-type", media_type)
        .signed_by(&t.office().await)
        .body(Body::from(content))
        .unwrap(),
    )
    .await
}

#[tokio::test]
async fn supporting_documents_are_kept_with_their_checksum() {
    let web = WebSettings {
        body_limit: 64 * 1024,
        ..WebSettings::default()
    };
    let t = TestApp::with_settings(Settings::default(), web).await;
    let r = office_post(
        &t,
        "/api/v1/providers",
        &application("Paper Clinic", "紙本診所", "clinic", "southern"),
    )
    .await;
    let id = r.json()["id"].as_str().unwrap().to_owned();

    let pdf = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer\n%%EOF\n".to_vec();
    let r = upload(&t, &id, "application/pdf", pdf.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let doc = r.json();
    // sha256 of the bytes above, computed independently.
    use sha2::Digest;
    let expected: String = sha2::Sha256::digest(&pdf)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(doc["sha256"], expected);
    assert_eq!(doc["size"], pdf.len());
    assert_eq!(doc["file_name"], "BR cert.pdf");

    let r = office_get(
        &t,
        &format!(
            "/api/v1/providers/{id}/documents/{}",
            doc["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, pdf);
    assert_eq!(r.header("content-type"), "application/pdf");
    assert!(r.header("content-disposition").starts_with("attachment;"));
    assert_eq!(
        office_get(&t, &format!("/api/v1/providers/{id}/documents"))
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Refused: a program posing as a PDF, an HTML page, a file over the limit.
    let r = upload(&t, &id, "application/pdf", b"MZ\x90\x00\x03".to_vec()).await;
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["code"], "unsupported-media-type");
    assert_eq!(
        upload(&t, &id, "text/html", b"<script>alert(1)</script>".to_vec())
            .await
            .status,
        415
    );
    let mut big = b"%PDF-".to_vec();
    big.resize(65 * 1024, b'x');
    let r = upload(&t, &id, "application/pdf", big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "payload-too-large");
    assert_eq!(
        office_get(&t, &format!("/api/v1/providers/{id}/documents"))
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing else stored"
    );
}
