//! The harness must be able to fail: each suite runner, given a golden that was tampered with,
//! reports a failure (and names what differs). Guards against runners that pass everything.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use orcd_conformance::case::{run_case, Backend, CaseKind, Outcome};
use orcd_conformance::discover::load_case_file;
use orcd_conformance::paths;

fn load(rel: &str) -> orcd_conformance::Case {
    let p = paths::goldens_dir().join(rel);
    load_case_file(&p).expect("case file parses").expect("is a case")
}

fn fail_message(case: &orcd_conformance::Case) -> String {
    match run_case(case, Backend::Cpu).outcome {
        Outcome::Fail { message } => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn gguf_inspect_fails_on_a_tampered_value() {
    let mut case = load("gguf/inspect/valid-seed1.yaml");
    assert!(matches!(case.kind, CaseKind::GgufInspect(_)), "not an inspect case");
    assert!(matches!(run_case(&case, Backend::Cpu).outcome, Outcome::Pass { .. }), "untampered case passes");
    let CaseKind::GgufInspect(c) = &mut case.kind else { unreachable!() };
    let kv = c.metadata.iter_mut().find(|kv| kv.key == "llama.block_count").expect("key");
    kv.value = Some(serde_norway::Value::from(2u64));
    let msg = fail_message(&case);
    assert!(msg.contains("llama.block_count"), "{msg}");
    assert!(msg.contains("rerun: cargo nextest run"), "{msg}");
}

#[test]
fn gguf_tensors_fails_on_a_tampered_hash() {
    let mut case = load("gguf/tensors/all-types.yaml");
    let CaseKind::GgufTensors(c) = &mut case.kind else { panic!("not a tensors case") };
    c.tensors[3].sha256 = "0".repeat(64);
    let name = c.tensors[3].name.clone();
    let msg = fail_message(&case);
    assert!(msg.contains(&name), "{msg}");
}

#[test]
fn quant_fails_on_a_flipped_expected_value() {
    let dir = paths::goldens_dir().join("quant");
    let first = std::fs::read_dir(&dir)
        .expect("goldens/quant exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .min()
        .expect("a quant case");
    let mut case = load_case_file(&first).expect("parses").expect("case");
    let CaseKind::Quant(q) = &mut case.kind else { panic!("not a quant case") };
    // Point the expectation at a copy with one value's last bit flipped (an absolute path replaces the folder).
    let expected = q.dir.join(&q.file.expected);
    let mut arr = orcd_engine::npy::read(&expected).expect("npy");
    let n = arr.data.len();
    arr.data[n - 4] ^= 1;
    let tmp = std::env::temp_dir().join(format!("orcd-tampered-{}.npy", std::process::id()));
    let mut buf = Vec::new();
    orcd_engine::npy::write_f32(&mut buf, &arr.shape, &arr.to_f32().expect("f32")).expect("write");
    std::fs::write(&tmp, buf).expect("write tmp");
    q.file.expected = tmp.display().to_string();
    let msg = fail_message(&case);
    let _ = std::fs::remove_file(&tmp);
    assert!(msg.contains("differ"), "{msg}");
}

#[test]
fn malformed_case_fails_when_the_file_is_valid() {
    let (bytes, _) = orcd_fixtures::valid_fixture(1).to_bytes();
    let o = orcd_conformance::suites::gguf::run_malformed(&bytes, "truncated");
    assert!(matches!(o, Outcome::Fail { .. }), "{o:?}");
}
