//! orcd-tokenizer: text ⇄ token ids, and chat templates. Built on orcd-gguf (vocabularies come
//! from GGUF metadata) and nothing else of ours.
//!
//! Module map (see docs/ARCHITECTURE.md):
//! - [`tokenizer`]: tokenizers from GGUF metadata (llama.cpp's semantics), `tokenizer.json` (HF
//!   tokenizers' semantics) and `.tiktoken` rank files (tiktoken's); streaming detokenizer.
//! - [`chat`]: `tokenizer.chat_template` rendered with minijinja (transformers' semantics).
//!
//! Invariants:
//! - Each source is tokenized exactly as its reference does (llama.cpp, HF tokenizers, tiktoken):
//!   the ids are checked against recorded goldens, never against this crate itself.
//! - Nothing panics on input: out-of-range ids, texts the vocabulary cannot express, malformed or
//!   unsupported tokenizer files and failing templates are typed errors
//!   ([`tokenizer::TokenizerError`], [`chat::ChatError`]).

pub mod chat;
pub mod tokenizer;
