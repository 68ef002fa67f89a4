//! insta snapshots of our own renderings (regression guards, not truth): the `inspect` text dump
//! of the synthetic valid fixture, and the error message of every malformed-corpus file.
//! Review changes with `cargo insta review`.

use std::path::Path;

use orcd_engine::gguf::GgufFile;

#[test]
fn inspect_text_valid_seed1() {
    let (bytes, _) = orcd_fixtures::valid_fixture(1).to_bytes();
    let f = GgufFile::from_bytes(bytes).expect("the valid fixture opens");
    insta::assert_snapshot!("inspect_valid_seed1", worker_orcd::cli::inspect_text(&f, Path::new("valid-seed1.gguf")));
}

#[test]
fn inspect_json_valid_align64_seed1() {
    let (bytes, _) = orcd_fixtures::valid_fixture_aligned(1, 64).to_bytes();
    let f = GgufFile::from_bytes(bytes).expect("the valid fixture opens");
    let v = worker_orcd::cli::inspect_json(&f, Path::new("valid-align64-seed1.gguf"));
    insta::assert_snapshot!("inspect_json_valid_align64_seed1", serde_json::to_string_pretty(&v).expect("json"));
}

#[test]
fn malformed_corpus_error_messages() {
    let mut lines = Vec::new();
    for case in orcd_fixtures::corpus() {
        let line = match GgufFile::from_bytes(case.bytes) {
            Ok(_) => format!("{}: ACCEPTED", case.name),
            Err(e) => format!("{}: [{}] {e}", case.name, e.kind()),
        };
        lines.push(line);
    }
    insta::assert_snapshot!("malformed_error_messages", lines.join("\n"));
}
