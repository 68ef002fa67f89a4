//! GGUF (stub being replaced by the reader)
mod types;
pub use types::GgmlType;

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("x")]
    X,
}
