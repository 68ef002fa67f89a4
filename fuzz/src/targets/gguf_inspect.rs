//! Fuzz target: the GGUF reader and `worker-orcd inspect` on arbitrary bytes.
//!
//! Covers `GgufFile::from_bytes` (header, every metadata value type, nested arrays, tensor infos,
//! alignment, offsets, every check against the bytes that remain and `gguf::Limits`), the typed
//! getters, `tensor_data` of every accepted tensor, and both `inspect` renderings (text and JSON)
//! of an accepted file. Properties: no panic (libFuzzer reports one as a crash), bounded memory
//! (`-rss_limit_mb`/`-malloc_limit_mb`), an error message on one line, and an accepted file whose
//! tensors lie inside it.

use orcd_gguf::gguf::GgufFile;

pub fn run(data: &[u8]) {
    let len = data.len() as u64;
    let f = match GgufFile::from_bytes(data.to_vec()) {
        Ok(f) => f,
        Err(e) => {
            let msg = e.to_string();
            assert!(!e.kind().is_empty());
            assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
            return;
        }
    };
    assert_eq!(f.file_len(), len);
    for (k, _) in f.metadata() {
        assert!(f.get(k).is_some());
        // The typed getters of every key: each is Ok or a typed error, never a panic.
        let _ = (f.get_u64(k), f.get_u32(k), f.get_f32(k), f.get_str(k), f.get_bool(k), f.get_array(k));
    }
    let _ = f.architecture();
    for t in f.tensors() {
        let bytes = f.tensor_data(t);
        assert_eq!(bytes.len() as u64, t.n_bytes);
        assert!(f.data_offset + t.offset + t.n_bytes <= len);
        let _ = t.numpy_shape();
    }
    let path = std::path::Path::new("fuzz.gguf");
    let text = worker_orcd::cli::inspect_text(&f, path);
    assert!(!text.is_empty());
    let json = worker_orcd::cli::inspect_json(&f, path);
    assert!(json.is_object());
    // The JSON must serialise and parse back (non-finite floats are strings there).
    let s = json.to_string();
    assert!(serde_json::from_str::<serde_json::Value>(&s).is_ok(), "inspect --json wrote invalid JSON");
}
