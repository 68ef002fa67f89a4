//! Fuzz target for `worker-orcd inspect`'s renderings (proptest): every file the GGUF reader
//! accepts — mutations of valid files, plausible bodies after a valid header — renders as text and
//! as JSON without panicking (DESIGN §2: untrusted input never panics).
//!
//! The inputs are orcd-gguf's fuzz inputs (`engine/gguf/tests/fuzz_input/`, included by path), so
//! the reader's own fuzz target (`engine/gguf/tests/gguf_fuzz.rs`) and this one see the same files.
//!
//! Cases per property: 2000 by default, `PROPTEST_CASES=N` to change; `PROPTEST_RNG_SEED=S` to
//! replay a run (the seed is random otherwise).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use orcd_engine::gguf::GgufFile;
use proptest::prelude::*;
use worker_orcd::cli::{inspect_json, inspect_text};

#[path = "../../gguf/tests/fuzz_input/mod.rs"]
mod fuzz_input;
use fuzz_input::{apply, base, body_token, mutation, Base};

/// Render `bytes` if the reader accepts them; returns whether it did.
fn render(bytes: Vec<u8>) -> bool {
    let Ok(f) = GgufFile::from_bytes(bytes) else { return false };
    let path = std::path::Path::new("fuzz.gguf");
    let text = inspect_text(&f, path);
    let json = inspect_json(&f, path);
    assert!(!text.is_empty());
    assert!(json.is_object(), "{json}");
    true
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    ProptestConfig { cases, failure_persistence: None, max_shrink_iters: 4096, ..ProptestConfig::default() }
}

thread_local! {
    static BASES: [Base; 2] = [base(false), base(true)];
}

proptest! {
    #![proptest_config(config())]

    /// Mutations of a valid file (see `fuzz_input::mutation`).
    #[test]
    fn inspect_mutated_valid_file(aligned in any::<bool>(), muts in prop::collection::vec(mutation(), 1..6)) {
        let bytes = BASES.with(|b| apply(&b[aligned as usize], &muts));
        render(bytes);
    }

    /// A valid header with small counts, then a body of plausible tokens.
    #[test]
    fn inspect_random_body_after_header(
        version in 2u32..4,
        n_tensors in 0u64..4,
        n_kv in 0u64..6,
        tokens in prop::collection::vec(body_token(), 0..80),
    ) {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend(version.to_le_bytes());
        bytes.extend(n_tensors.to_le_bytes());
        bytes.extend(n_kv.to_le_bytes());
        for t in tokens {
            bytes.extend(t);
        }
        render(bytes);
    }
}

/// Every single-bit flip of the base files (exhaustive): the accepted ones render.
#[test]
fn inspect_every_bit_flip() {
    let mut accepted = 0usize;
    for aligned in [false, true] {
        let b = base(aligned);
        assert!(render(b.bytes.clone()), "base file (aligned: {aligned}) rejected");
        for at in 0..b.bytes.len() {
            for bit in 0..8 {
                let mut bytes = b.bytes.clone();
                bytes[at] ^= 1 << bit;
                accepted += render(bytes) as usize;
            }
        }
    }
    assert!(accepted > 0);
}
