//! fhirpy and fhirclient, the common Python FHIR clients, against this server listening on a
//! real socket (issue 25, item 8): metadata, a patient by identity document, a read, creates,
//! Observations by code and by date, and paging through 120, each library's own calls
//! (`scripts/fhir_clients.py`). The libraries are in a venv `.ci/run` makes
//! (`scripts/fhir-externals clients`) and names in `EHRSHARE_FHIR_CLIENTS_PYTHON`; without it
//! the test says so and does nothing, as on a machine without network.

use ehrshare_app::Settings;
use ehrshare_web::WebSettings;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhirpy_and_fhirclient_read_search_create_and_page_unchanged() {
    let Ok(python) = std::env::var("EHRSHARE_FHIR_CLIENTS_PYTHON") else {
        eprintln!("EHRSHARE_FHIR_CLIENTS_PYTHON is not set: fhirpy and fhirclient not run");
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let web = WebSettings {
        public_base_url: format!("http://127.0.0.1:{port}"),
        ..WebSettings::default()
    };
    let w = world_with_web(Settings::default(), web).await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    assert_eq!(w.episode().await.status, 201);
    let token = doctors_token_from(&w, "user/*.cruds", "user/*.rs user/Observation.c").await;
    let server = tokio::spawn(axum::serve(listener, w.t.router()).into_future());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/fhir_clients.py");
    let recipient = w.recipient.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(script)
            .arg(format!("http://127.0.0.1:{port}/fhir"))
            .arg(&token)
            .arg(&recipient)
            .arg(format!("{SUBJECT}|A1234563"))
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    server.abort();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{said}");
    assert!(out.status.success(), "{said}");
    assert!(said.contains("ok: fhirclient: paged through 120"), "{said}");
    assert!(said.contains("ok: fhirpy: paged through 120"), "{said}");
}
