//! Fuzz target: the GGUF reader and `worker-orcd inspect` on arbitrary bytes.
//!
//! Covers `GgufFile::from_bytes` (header, every metadata value type, nested arrays, tensor infos,
//! alignment, offsets, every check against the bytes that remain and `gguf::Limits`), the typed
//! getters, `tensor_data` of every accepted tensor, and both `inspect` renderings (text and JSON)
//! of an accepted file. Properties: no panic (libFuzzer reports one as a crash), bounded memory
//! (`-rss_limit_mb`/`-malloc_limit_mb`), an error message on one line, and an accepted file whose
//! tensors lie inside it.
//!
//! The body is `orcd_fuzz::targets::gguf_inspect::run` (shared with the `all` binary).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orcd_fuzz::targets::gguf_inspect::run(data));
