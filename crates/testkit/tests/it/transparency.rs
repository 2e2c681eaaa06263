//! The audit log's transparency (issue 27, item 5): a recipient's inclusion proof verifies,
//! with a verifier written here (RFC 9162, ring's Ed25519: nothing of the server's code),
//! against a signed head fetched from the public endpoint; the heads are consistent with each
//! other; a forged head fails; an entry no head covers yet says when one will.

use data_encoding::BASE64URL_NOPAD;
use ring::signature::{ED25519, UnparsedPublicKey};
use serde_json::Value;
use sha2::Digest;

use crate::world::world;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn node(left: &[u8], right: &[u8]) -> Vec<u8> {
    let mut n = vec![1u8];
    n.extend(left);
    n.extend(right);
    sha2::Sha256::digest(&n).to_vec()
}

/// RFC 9162 2.1.3.2: the root an inclusion proof leads to.
fn inclusion_root(leaf: Vec<u8>, index: u64, size: u64, path: &[Vec<u8>]) -> Option<Vec<u8>> {
    if index >= size {
        return None;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = leaf;
    for p in path {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some(r)
}

/// RFC 9162 2.1.4.2: whether a consistency proof shows the tree of `second` extends `first`.
fn consistent(
    first: u64,
    second: u64,
    first_root: &[u8],
    second_root: &[u8],
    path: &[Vec<u8>],
) -> bool {
    if first == second {
        return path.is_empty() && first_root == second_root;
    }
    let mut path: Vec<Vec<u8>> = path.to_vec();
    if first.is_power_of_two() {
        path.insert(0, first_root.to_vec());
    }
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some(first_hash) = path.first().cloned() else {
        return false;
    };
    let (mut fr, mut sr) = (first_hash.clone(), first_hash);
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node(c, &fr);
            sr = node(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && fr == first_root && sr == second_root
}

/// Whether a head's signature holds under the published key.
fn signed(key: &[u8], head: &Value) -> bool {
    let message = format!(
        "ehrshare audit checkpoint v1\ninstance {}\nsize {}\nroot {}\ntime {}\n",
        head["instance"].as_str().unwrap(),
        head["size"],
        head["root"].as_str().unwrap(),
        head["time"].as_str().unwrap()
    );
    UnparsedPublicKey::new(&ED25519, key)
        .verify(
            message.as_bytes(),
            &unhex(head["signature"].as_str().unwrap()),
        )
        .is_ok()
}

#[tokio::test]
async fn an_entrys_proof_verifies_against_a_published_signed_head_and_the_heads_are_consistent() {
    let w = world().await;
    let patient = w.patient().await;
    // An entry about the patient: their own read of their record.
    let r = w
        .get(
            &patient,
            &format!("/api/v1/me/recipients/{}/record", w.recipient),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seq = w.last_entry().await.seq;
    let proof = format!(
        "/api/v1/me/recipients/{}/access-log/{seq}/proof",
        w.recipient
    );

    // No signed head covers it yet: said so, with when.
    let r = w.get(&patient, &proof).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "not-yet-checkpointed");
    assert!(
        r.json()["title"].as_str().unwrap().contains("by 20"),
        "{}",
        r.text()
    );

    w.t.app.write_checkpoint().await.unwrap();
    let heads = w.t.get("/api/v1/audit/heads").await;
    assert_eq!(heads.status, 200, "{}", heads.text());
    let heads = heads.json();
    let key = BASE64URL_NOPAD
        .decode(heads["key"]["x"].as_str().unwrap().as_bytes())
        .unwrap();
    let first = heads["heads"].as_array().unwrap().last().unwrap().clone();
    assert!(signed(&key, &first), "{first}");
    assert!(first["size"].as_u64().unwrap() > seq);

    // The proof leads to that signed root.
    let r = w.get(&patient, &proof).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let p = r.json();
    assert_eq!(p["head"]["root"], first["root"]);
    assert_eq!(p["tree_size"], first["size"]);
    let mut leaf = vec![0u8];
    leaf.extend(unhex(p["canonical"].as_str().unwrap()));
    let leaf = sha2::Sha256::digest(&leaf).to_vec();
    let path: Vec<Vec<u8>> = p["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| unhex(h.as_str().unwrap()))
        .collect();
    let root = inclusion_root(leaf.clone(), seq, first["size"].as_u64().unwrap(), &path).unwrap();
    assert_eq!(root, unhex(first["root"].as_str().unwrap()));

    // A forged head fails: another root, or another size, under the same signature.
    let mut forged = first.clone();
    forged["root"] = Value::from("00".repeat(32));
    assert!(!signed(&key, &forged));
    let mut forged = first.clone();
    forged["size"] = Value::from(first["size"].as_u64().unwrap() + 1);
    assert!(!signed(&key, &forged));

    // More entries, a second head: consistent with the first, and the entry still proven
    // in the first by naming it.
    for _ in 0..3 {
        w.get(
            &patient,
            &format!("/api/v1/me/recipients/{}/record", w.recipient),
        )
        .await;
    }
    w.t.app.write_checkpoint().await.unwrap();
    let heads = w.t.get("/api/v1/audit/heads").await.json();
    let second = heads["heads"].as_array().unwrap().last().unwrap().clone();
    assert!(signed(&key, &second));
    let (a, b) = (
        first["size"].as_u64().unwrap(),
        second["size"].as_u64().unwrap(),
    );
    assert!(b > a);
    let r =
        w.t.get(&format!("/api/v1/audit/consistency?from={a}&to={b}"))
            .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cpath: Vec<Vec<u8>> = r.json()["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| unhex(h.as_str().unwrap()))
        .collect();
    let (ra, rb) = (
        unhex(first["root"].as_str().unwrap()),
        unhex(second["root"].as_str().unwrap()),
    );
    assert!(consistent(a, b, &ra, &rb, &cpath));
    assert!(!consistent(a, b, &rb, &ra, &cpath), "the verifier can fail");
    let r = w.get(&patient, &format!("{proof}?tree_size={a}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["root"], first["root"]);
    let r = w
        .get(&patient, &format!("{proof}?tree_size={}", a + 1))
        .await;
    assert_eq!(r.status, 404, "not a published head");

    // A line appended to the file by hand, not signed by the audit key, is never served.
    {
        use std::io::Write;
        let mut forged = second.clone();
        forged["size"] = Value::from(b + 1);
        let line = serde_json::json!({"instance": forged["instance"], "size": b + 1,
            "root": "00".repeat(32), "time": forged["time"], "key_id": forged["key_id"],
            "signature": second["signature"]});
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(w.t.checkpoint_file().path())
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
    w.get(
        &patient,
        &format!("/api/v1/me/recipients/{}/record", w.recipient),
    )
    .await;
    let heads = w.t.get("/api/v1/audit/heads").await.json();
    assert!(
        heads["heads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["size"].as_u64() != Some(b + 1)),
        "{heads}"
    );

    // Heads page by size; bad sizes are named.
    let after =
        w.t.get(&format!("/api/v1/audit/heads?after={a}"))
            .await
            .json();
    assert!(
        after["heads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["size"].as_u64().unwrap() > a)
    );
    let r =
        w.t.get(&format!("/api/v1/audit/consistency?from={b}&to={a}"))
            .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r =
        w.t.get(&format!(
            "/api/v1/audit/consistency?from={a}&to={}",
            b + 1_000_000
        ))
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["field"], "/to");
    let r = w.t.get("/api/v1/audit/consistency?from=1").await;
    assert_eq!(r.status, 400, "{}", r.text());
}
