//! The crate's one error type. Every fallible public function returns [`Result`].
//! Variants carry enough context (path, byte offset, field, tensor name) to act on the message.
//! Each lower crate's error converts into it (`#[from]`), unchanged in its message, so `?` works
//! on their results.

use std::path::{Path, PathBuf};

use crate::chat::ChatError;
use crate::gguf::GgufError;
use crate::npy::NpyError;
use crate::quant::QuantError;
use crate::sampler::SamplerError;
use crate::tokenizer::TokenizerError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Gguf(#[from] GgufError),
    #[error("{0}")]
    Quant(#[from] QuantError),
    #[error("{0}")]
    Sampler(#[from] SamplerError),
    #[error("{0}")]
    Tokenizer(#[from] TokenizerError),
    #[error("{0}")]
    Chat(#[from] ChatError),
    #[error("{0}")]
    Npy(#[from] NpyError),
    #[error("{context}: {source}")]
    Context { context: String, source: Box<Error> },
    #[error("{0}")]
    Invalid(String),
    /// A device backend cannot hold what a model needs (checked before any large allocation).
    #[error("INSUFFICIENT_VRAM: {what} needs {needed} bytes, {free} bytes free on {device}")]
    InsufficientVram { what: String, needed: u64, free: u64, device: String },
    /// A device call failed (launch, copy, allocation): the process stays usable.
    #[error("{backend}: {op}: {message}")]
    Device { backend: &'static str, op: String, message: String },
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io { path: path.to_path_buf(), source }
    }

    /// Wrap with a description of what was being done.
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context { context: context.into(), source: Box::new(self) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each lower crate's error converts with `?` and keeps its message.
    #[test]
    fn lower_errors_convert_unchanged() {
        fn through<E: Into<Error> + std::fmt::Display>(e: E) -> (String, String) {
            let msg = e.to_string();
            (msg, e.into().to_string())
        }
        let cases = [
            through(GgufError::TensorNotFound { name: "w".into() }),
            through(QuantError::Unsupported { ty: crate::gguf::GgmlType::Q4_K, op: "quantize" }),
            through(SamplerError::EmptyCandidates),
            through(TokenizerError::TokenOutOfRange { id: 9, vocab_size: 3 }),
            through(ChatError::NoTemplate),
            through(NpyError::Format("bad magic".into())),
        ];
        for (lower, engine) in &cases {
            assert_eq!(lower, engine);
        }
        assert_eq!(cases[2].1, "sampler: empty candidate set");
        let e: Error = crate::chat::ChatError::NoTemplate.context("--chat with m.gguf").into();
        assert_eq!(e.to_string(), "--chat with m.gguf: the model has no tokenizer.chat_template");
    }
}
