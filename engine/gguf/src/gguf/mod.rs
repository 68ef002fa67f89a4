//! GGUF: the reader (bounds-checked, mmap) and the writer.
//!
//! Invariants:
//! - Nothing read from a file is trusted: every count, length, offset and dims product is checked
//!   against the bytes that remain and against the limits in [`Limits`] *before* anything is
//!   allocated or read. Errors are [`GgufError`] values that name the byte offset and the field.
//! - Tensor data is never copied on open: [`GgufFile::tensor_data`] returns a slice of the map.
//! - Metadata keeps file order (the writer reproduces it), with an index for lookup.

mod reader;
mod types;
mod value;
mod writer;

pub use reader::{GgufFile, Limits, TensorInfo};
pub use types::GgmlType;
pub use value::{GgufValue, ValueType};
pub use writer::{encode_string, encode_value, string_array, GgufWriter, KvLayout, Layout, TensorInfoLayout};

/// Default `general.alignment` when the key is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The file magic, "GGUF" as bytes.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// ggml's limit on tensor dimensions.
pub const MAX_DIMS: u32 = 4;

/// Why a GGUF file was rejected, or a lookup in an accepted one (key, tensor, its f32 values)
/// failed. `kind()` gives a stable identifier for each variant (used by the malformed-file corpus
/// to state the expected failure).
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("truncated file: {field} at byte {offset} needs {need} bytes, {have} remain")]
    Truncated { offset: u64, field: String, need: u64, have: u64 },
    #[error("not a GGUF file: magic {found:02x?} at byte 0 (expected \"GGUF\")")]
    BadMagic { found: Vec<u8> },
    #[error("unsupported GGUF version {version} at byte 4 (supported: 2, 3)")]
    UnsupportedVersion { version: u32 },
    #[error("big-endian GGUF (version {version} byte-swapped) is not supported")]
    BigEndian { version: u32 },
    #[error("{field} at byte {offset} is {value}, over the limit of {limit}")]
    LimitExceeded { offset: u64, field: String, value: u64, limit: u64 },
    #[error("unknown metadata value type {type_id} for {field} at byte {offset}")]
    UnknownValueType { offset: u64, field: String, type_id: u32 },
    #[error("tensor {tensor:?} at byte {offset} has unknown ggml type id {type_id}")]
    UnknownTensorType { offset: u64, tensor: String, type_id: u32 },
    #[error("{field} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 { offset: u64, field: String },
    #[error("{field} at byte {offset}: bool byte is {value} (must be 0 or 1)")]
    InvalidBool { offset: u64, field: String, value: u8 },
    #[error("{field} at byte {offset}: arrays nested deeper than {limit}")]
    NestingTooDeep { offset: u64, field: String, limit: u32 },
    #[error("metadata key at byte {offset} is empty")]
    EmptyKey { offset: u64 },
    #[error("duplicate metadata key {key:?} at byte {offset}")]
    DuplicateKey { offset: u64, key: String },
    #[error("duplicate tensor name {name:?} at byte {offset}")]
    DuplicateTensor { offset: u64, name: String },
    #[error("general.alignment: {reason}")]
    BadAlignment { reason: String },
    #[error("tensor {tensor:?} at byte {offset}: {reason}")]
    BadDims { offset: u64, tensor: String, reason: String },
    #[error("tensor {tensor:?}: ne0 = {ne0} is not a multiple of the {ty} block size {block_size}")]
    BlockMisaligned { tensor: String, ty: GgmlType, ne0: u64, block_size: u64 },
    #[error("tensor {tensor:?}: data [{start}, {end}) lies outside the file's data section of {data_len} bytes")]
    TensorOutOfBounds { tensor: String, start: u64, end: u64, data_len: u64 },
    #[error("tensor {tensor:?}: data offset {offset} is not a multiple of the alignment {alignment}")]
    TensorMisaligned { tensor: String, offset: u64, alignment: u64 },
    #[error("tensors {a:?} and {b:?} overlap in the data section")]
    TensorOverlap { a: String, b: String },
    #[error("metadata key {key:?} not found")]
    MissingKey { key: String },
    #[error("metadata key {key:?} is {found}, expected {expected}")]
    WrongType { key: String, expected: String, found: String },
    #[error("tensor {name:?} not found")]
    TensorNotFound { name: String },
    #[error("tensor {name:?}: its {n_elements} f32 values do not fit in this machine's memory")]
    TensorTooLarge { name: String, n_elements: u64 },
    #[error("tensor {name:?}: {source}")]
    Dequantize { name: String, source: crate::quant::QuantError },
}

impl GgufError {
    /// Stable identifier of the error kind (snake case), e.g. `"truncated"`, `"bad_magic"`.
    pub fn kind(&self) -> &'static str {
        match self {
            GgufError::Io { .. } => "io",
            GgufError::Truncated { .. } => "truncated",
            GgufError::BadMagic { .. } => "bad_magic",
            GgufError::UnsupportedVersion { .. } => "unsupported_version",
            GgufError::BigEndian { .. } => "big_endian",
            GgufError::LimitExceeded { .. } => "limit_exceeded",
            GgufError::UnknownValueType { .. } => "unknown_value_type",
            GgufError::UnknownTensorType { .. } => "unknown_tensor_type",
            GgufError::InvalidUtf8 { .. } => "invalid_utf8",
            GgufError::InvalidBool { .. } => "invalid_bool",
            GgufError::NestingTooDeep { .. } => "nesting_too_deep",
            GgufError::EmptyKey { .. } => "empty_key",
            GgufError::DuplicateKey { .. } => "duplicate_key",
            GgufError::DuplicateTensor { .. } => "duplicate_tensor",
            GgufError::BadAlignment { .. } => "bad_alignment",
            GgufError::BadDims { .. } => "bad_dims",
            GgufError::BlockMisaligned { .. } => "block_misaligned",
            GgufError::TensorOutOfBounds { .. } => "tensor_out_of_bounds",
            GgufError::TensorMisaligned { .. } => "tensor_misaligned",
            GgufError::TensorOverlap { .. } => "tensor_overlap",
            GgufError::MissingKey { .. } => "missing_key",
            GgufError::WrongType { .. } => "wrong_type",
            GgufError::TensorNotFound { .. } => "tensor_not_found",
            GgufError::TensorTooLarge { .. } => "tensor_too_large",
            GgufError::Dequantize { .. } => "dequantize",
        }
    }
}
