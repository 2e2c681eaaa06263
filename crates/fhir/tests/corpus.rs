//! The corpus of invalid resources (issue 23, item 7; `tests/corpus/invalid/expected.tsv`):
//! each is refused with the path of its one problem, and each valid base passes. The HTTP
//! test in `ehrshare-testkit` deposits the same files on both backends.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use ehrshare_core::terminology::Terminology;
use ehrshare_fhir::{json, resource};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn text(path: &std::path::Path) -> Vec<u8> {
    std::fs::read_to_string(path)
        .unwrap()
        .replace("RECIPIENT_HKID", "A1234563")
        .replace("RECIPIENT", "1")
        .into_bytes()
}

fn problems(bytes: &[u8]) -> Vec<resource::Problem> {
    match json::parse(bytes) {
        Err(p) => p,
        Ok(v) => resource::check(&v, &Terminology::shipped())
            .err()
            .unwrap_or_default(),
    }
}

#[test]
fn every_valid_base_passes() {
    for entry in std::fs::read_dir(corpus().join("valid")).unwrap() {
        let path = entry.unwrap().path();
        let found = problems(&text(&path));
        assert!(found.is_empty(), "{}: {found:?}", path.display());
    }
}

#[test]
fn every_invalid_resource_is_refused_with_its_path() {
    let expected = std::fs::read_to_string(corpus().join("invalid/expected.tsv")).unwrap();
    let mut wrong = Vec::new();
    let mut count = 0;
    for line in expected.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, path) = (cols[0], cols[2]);
        count += 1;
        let found = problems(&text(&corpus().join("invalid").join(file)));
        if !found.iter().any(|p| p.path == path) {
            wrong.push(format!("{file}: expected {path}, got {found:?}"));
        }
    }
    assert!(count >= 40, "at least 40 invalid resources: {count}");
    assert!(
        wrong.is_empty(),
        "{} of {count}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
