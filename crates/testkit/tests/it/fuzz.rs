//! Fuzzing the parsers through the public interface (issue 22): the JSON body parser, the
//! FHIR resource rules of a deposit and the HKID parser get generated input (proptest, on the
//! stable toolchain) and every input of the corpus kept beside these tests
//! (`tests/fuzz-corpus/`): whatever comes, the answer is a 4xx naming the problem or a
//! success, never a 5xx, and the server goes on serving. Failures proptest finds are kept in
//! `proptest-regressions/` and replayed first.

use axum::body::Body;
use axum::http::Request;
use ehrshare_app::duty::Scope;
use ehrshare_testkit::{Agent, SignedBy, TestApp};
use proptest::prelude::*;
use serde_json::{Value, json};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-corpus");

struct Fuzz {
    rt: tokio::runtime::Runtime,
    t: TestApp,
    office: Agent,
    doctor: Agent,
}

fn fuzz() -> Fuzz {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (t, office, doctor) = rt.block_on(async {
        let t = TestApp::spawn().await;
        let office = t.office().await;
        let (hcp, _) = t.active_provider("Fuzz Clinic", "fuzz").await;
        let doctor = t
            .agent(Scope::Hcp(hcp.parse().unwrap()), "dr.fuzz", "doctor", false)
            .await;
        (t, office, doctor)
    });
    Fuzz {
        rt,
        t,
        office,
        doctor,
    }
}

impl Fuzz {
    /// Sends `body` (any bytes) as JSON; the status.
    fn post(&self, agent: &Agent, path: &str, body: Vec<u8>) -> (u16, String) {
        self.rt.block_on(async {
            let r = self
                .t
                .send(
                    Request::post(path)
                        .header("content-type", "application/json")
                        .signed_by(agent)
                        .body(Body::from(body))
                        .unwrap(),
                )
                .await;
            (r.status.as_u16(), r.text())
        })
    }

    fn registration(&self, body: Vec<u8>) -> (u16, String) {
        self.post(&self.office, "/api/v1/recipients", body)
    }

    fn deposit(&self, body: Vec<u8>) -> (u16, String) {
        let path = format!("/api/v1/recipients/{}/records", uuid::Uuid::now_v7());
        self.post(&self.doctor, &path, body)
    }

    fn find(&self, number: &str) -> (u16, String) {
        let body = json!({"document": {"type": "hkid", "number": number}});
        self.post(
            &self.doctor,
            "/api/v1/recipients/find",
            body.to_string().into_bytes(),
        )
    }
}

fn no_5xx((status, text): (u16, String), what: &str) {
    assert!(status < 500, "{what}: {status} {text}");
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("Patient/A1234563"),
            Just("#m"),
            Just("2024-02-30"),
            Just("http://hl7.org/fhir/sid/icd-10"),
            Just("hkid"),
            Just("in-person"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    let keys = prop_oneof![
        Just("resourceType"),
        Just("id"),
        Just("subject"),
        Just("reference"),
        Just("code"),
        Just("coding"),
        Just("system"),
        Just("value"),
        Just("valueQuantity"),
        Just("extension"),
        Just("url"),
        Just("contained"),
        Just("status"),
        Just("document"),
        Just("number"),
        Just("name_en"),
        Just("channel"),
        Just("sdm"),
    ]
    .prop_map(str::to_owned);
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid-looking resource or registration with one member replaced by generated JSON.
fn mutated(base: Value) -> impl Strategy<Value = Value> {
    let fields: Vec<String> = base.as_object().unwrap().keys().cloned().collect();
    (proptest::sample::select(fields), json_value()).prop_map(move |(field, value)| {
        let mut b = base.clone();
        b[field] = value;
        b
    })
}

#[test]
fn the_corpus_gets_4xx_or_success_never_5xx() {
    let f = fuzz();
    let mut files: Vec<_> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut inputs = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        if name.ends_with(".json") {
            no_5xx(f.registration(bytes.clone()), &name);
            no_5xx(f.deposit(bytes), &name);
            inputs += 1;
        } else if name == "hkid.txt" {
            for line in String::from_utf8(bytes).unwrap().lines() {
                no_5xx(f.find(line), line);
                inputs += 1;
            }
        }
    }
    assert!(inputs >= 20, "the corpus is there: {inputs}");
    // Still serving.
    let health = f.rt.block_on(f.t.get("/healthz"));
    assert_eq!(health.status, 200);
}

/// Runs `strategy`'s cases against one application (a fresh one per case would cost more
/// than the cases).
fn run<S: Strategy>(strategy: S, case: impl Fn(&Fuzz, S::Value)) {
    let f = fuzz();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    });
    runner
        .run(&strategy, |value| {
            case(&f, value);
            Ok(())
        })
        .unwrap();
}

#[test]
fn any_bytes_as_a_json_body_get_4xx_or_success() {
    run(
        (proptest::collection::vec(any::<u8>(), 0..400), ".{0,200}"),
        |f, (bytes, text)| {
            no_5xx(f.registration(bytes.clone()), "bytes");
            no_5xx(f.deposit(bytes), "bytes");
            no_5xx(f.registration(text.clone().into_bytes()), &text);
            no_5xx(f.find(&text), &text);
        },
    );
}

#[test]
fn generated_json_gets_4xx_or_success() {
    run(
        (
            json_value(),
            mutated(json!({"resourceType": "Condition", "id": "c1",
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J45"}]},
                "subject": {"reference": "Patient/A1234563"}})),
            mutated(json!({"channel": "in-person", "name_en": "CHAN Tai Man",
                "date_of_birth": "1980-03-02", "sex": "male",
                "document": {"type": "hkid", "number": "A123456(3)"},
                "phone": "9123 4567", "language": "en", "notify_channel": "sms"})),
        ),
        |f, (value, resource, registration)| {
            no_5xx(
                f.deposit(value.to_string().into_bytes()),
                &value.to_string(),
            );
            no_5xx(
                f.deposit(resource.to_string().into_bytes()),
                &resource.to_string(),
            );
            no_5xx(
                f.registration(registration.to_string().into_bytes()),
                &registration.to_string(),
            );
        },
    );
}
