//! The crate's one error type. Every fallible public function returns [`Result`].
//! Variants carry enough context (path, byte offset, field, tensor name) to act on the message.

use std::path::{Path, PathBuf};

use crate::gguf::GgufError;
use crate::quant::QuantError;

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
    Sampler(#[from] crate::sampler::SamplerError),
    #[error("{0}")]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    #[error("npy: {0}")]
    Npy(String),
    #[error("{context}: {source}")]
    Context { context: String, source: Box<Error> },
    #[error("{0}")]
    Invalid(String),
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
