//! The fuzz targets' bodies, one module each; `fuzz_targets/<name>.rs` wraps each in
//! `fuzz_target!`, and `fuzz_targets/all.rs` picks one by `ORCD_FUZZ_TARGET` (one binary to ship
//! to the campaign machine).

pub mod chat_template;
pub mod dequant;
pub mod gguf_inspect;
pub mod server;
pub mod tok_gguf;
pub mod tok_json;
pub mod tok_text;
pub mod tok_tiktoken;

/// A target's body: one input, no result (a panic or an abort is the finding).
pub type Body = fn(&[u8]);

/// Every target, by name, with its body.
pub const ALL: &[(&str, Body)] = &[
    ("gguf_inspect", gguf_inspect::run),
    ("dequant", dequant::run),
    ("tok_gguf", tok_gguf::run),
    ("tok_json", tok_json::run),
    ("tok_tiktoken", tok_tiktoken::run),
    ("tok_text", tok_text::run),
    ("chat_template", chat_template::run),
    ("server", server::run),
];
