//! The GGUF writer (version 3, little-endian), used by the fixture generator and by tests.
//!
//! It records a [`Layout`] of where every field landed so that the malformed-file corpus can
//! corrupt one precise field of an otherwise valid file.

use super::{GgmlType, GgufError, GgufValue, ValueType, DEFAULT_ALIGNMENT, MAGIC};

/// Where each part of a written file lies (absolute byte offsets).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    /// Offset of `n_tensors` (u64); `n_kv` follows at +8.
    pub n_tensors_at: u64,
    /// Per metadata entry: (start of key length, start of type id, start of value, end).
    pub kvs: Vec<KvLayout>,
    /// Per tensor info: start, start of n_dims, start of type id, start of offset, end.
    pub tensor_infos: Vec<TensorInfoLayout>,
    /// Start of the data section.
    pub data_start: u64,
    /// Absolute start of each tensor's data.
    pub tensor_data: Vec<u64>,
    pub file_len: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KvLayout {
    pub start: u64,
    pub type_at: u64,
    pub value_at: u64,
    pub end: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TensorInfoLayout {
    pub start: u64,
    pub n_dims_at: u64,
    pub type_at: u64,
    pub offset_at: u64,
    pub end: u64,
}

/// Builds a GGUF file in memory.
#[derive(Debug, Clone)]
pub struct GgufWriter {
    version: u32,
    alignment: u64,
    kvs: Vec<(String, GgufValue)>,
    tensors: Vec<(String, GgmlType, Vec<u64>, Vec<u8>)>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// Append a length-prefixed string.
pub fn encode_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Append a value's encoding (without its type id, as inside a kv after the type).
pub fn encode_value(out: &mut Vec<u8>, v: &GgufValue) {
    match v {
        GgufValue::U8(x) => out.push(*x),
        GgufValue::I8(x) => out.push(*x as u8),
        GgufValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::Bool(x) => out.push(*x as u8),
        GgufValue::String(s) => encode_string(out, s),
        GgufValue::Array(t, items) => {
            out.extend_from_slice(&t.id().to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for it in items {
                encode_value(out, it);
            }
        }
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        GgufWriter { version: 3, alignment: DEFAULT_ALIGNMENT, kvs: Vec::new(), tensors: Vec::new() }
    }

    /// Write version 2 instead of 3 (same layout for little-endian files).
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Use a non-default alignment; records `general.alignment` (u32) in the metadata. An
    /// alignment of 0 (invalid, for malformed fixtures) is recorded as given and laid out as 1.
    pub fn alignment(mut self, alignment: u32) -> Self {
        self.alignment = alignment.max(1) as u64;
        self.set("general.alignment", GgufValue::U32(alignment));
        self
    }

    /// Add or replace a metadata entry (order of first insertion is kept).
    pub fn set(&mut self, key: &str, value: GgufValue) -> &mut Self {
        if let Some(kv) = self.kvs.iter_mut().find(|kv| kv.0 == key) {
            kv.1 = value;
        } else {
            self.kvs.push((key.to_string(), value));
        }
        self
    }

    /// Add a tensor. `dims` in GGUF order (ne0 first); `data` must hold exactly the type's bytes.
    pub fn add_tensor(
        &mut self,
        name: &str,
        ty: GgmlType,
        dims: &[u64],
        data: Vec<u8>,
    ) -> Result<&mut Self, GgufError> {
        let n: u64 = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).unwrap_or(u64::MAX);
        let need = ty.bytes_for(n);
        if need != Some(data.len() as u64) {
            return Err(GgufError::BadDims {
                offset: 0,
                tensor: name.into(),
                reason: format!("{} data bytes given, {ty} {dims:?} needs {need:?}", data.len()),
            });
        }
        self.tensors.push((name.to_string(), ty, dims.to_vec(), data));
        Ok(self)
    }

    /// Add an f32 tensor from values.
    pub fn add_f32(&mut self, name: &str, dims: &[u64], values: &[f32]) -> Result<&mut Self, GgufError> {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add_tensor(name, GgmlType::F32, dims, data)
    }

    /// Serialise, returning the bytes and where everything went.
    pub fn to_bytes(&self) -> (Vec<u8>, Layout) {
        let mut out = Vec::new();
        let mut layout = Layout::default();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        layout.n_tensors_at = out.len() as u64;
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for (k, v) in &self.kvs {
            let start = out.len() as u64;
            encode_string(&mut out, k);
            let type_at = out.len() as u64;
            out.extend_from_slice(&v.value_type().id().to_le_bytes());
            let value_at = out.len() as u64;
            encode_value(&mut out, v);
            layout.kvs.push(KvLayout { start, type_at, value_at, end: out.len() as u64 });
        }
        let a = self.alignment;
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for (name, ty, dims, data) in &self.tensors {
            let start = out.len() as u64;
            encode_string(&mut out, name);
            let n_dims_at = out.len() as u64;
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            let type_at = out.len() as u64;
            out.extend_from_slice(&ty.id().to_le_bytes());
            let offset_at = out.len() as u64;
            out.extend_from_slice(&offset.to_le_bytes());
            layout.tensor_infos.push(TensorInfoLayout { start, n_dims_at, type_at, offset_at, end: out.len() as u64 });
            offsets.push(offset);
            offset = (offset + data.len() as u64).div_ceil(a) * a;
        }
        let data_start = (out.len() as u64).div_ceil(a) * a;
        out.resize(data_start as usize, 0);
        layout.data_start = data_start;
        for ((_, _, _, data), off) in self.tensors.iter().zip(&offsets) {
            out.resize((data_start + off) as usize, 0);
            layout.tensor_data.push(out.len() as u64);
            out.extend_from_slice(data);
        }
        if !self.tensors.is_empty() {
            let end = (out.len() as u64).div_ceil(a) * a;
            out.resize(end as usize, 0);
        }
        layout.file_len = out.len() as u64;
        (out, layout)
    }
}

/// Convenience: a string array value.
pub fn string_array<S: AsRef<str>>(items: &[S]) -> GgufValue {
    GgufValue::Array(ValueType::String, items.iter().map(|s| GgufValue::String(s.as_ref().to_string())).collect())
}

#[cfg(test)]
mod tests {
    use super::super::GgufFile;
    use super::*;

    fn every_value_type() -> Vec<(String, GgufValue)> {
        vec![
            ("t.u8".into(), GgufValue::U8(200)),
            ("t.i8".into(), GgufValue::I8(-5)),
            ("t.u16".into(), GgufValue::U16(65535)),
            ("t.i16".into(), GgufValue::I16(-32768)),
            ("t.u32".into(), GgufValue::U32(4_000_000_000)),
            ("t.i32".into(), GgufValue::I32(-7)),
            ("t.f32".into(), GgufValue::F32(1.5e-7)),
            ("t.bool".into(), GgufValue::Bool(true)),
            ("t.string".into(), GgufValue::String("héllo ☃".into())),
            ("t.u64".into(), GgufValue::U64(u64::MAX)),
            ("t.i64".into(), GgufValue::I64(i64::MIN)),
            ("t.f64".into(), GgufValue::F64(-0.1)),
            ("t.empty".into(), GgufValue::Array(ValueType::F32, vec![])),
            (
                "t.nested".into(),
                GgufValue::Array(
                    ValueType::Array,
                    vec![
                        GgufValue::Array(ValueType::I32, vec![GgufValue::I32(1), GgufValue::I32(2)]),
                        GgufValue::Array(ValueType::String, vec![GgufValue::String("x".into())]),
                    ],
                ),
            ),
        ]
    }

    #[test]
    fn round_trip_every_value_type_and_tensors() -> Result<(), GgufError> {
        for version in [2, 3] {
            for alignment in [None, Some(64u32), Some(1)] {
                let mut w = GgufWriter::new().version(version);
                if let Some(a) = alignment {
                    w = w.alignment(a);
                }
                for (k, v) in every_value_type() {
                    w.set(&k, v);
                }
                w.add_f32("a", &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
                w.add_tensor("b", GgmlType::Q8_0, &[64], vec![7u8; 68])?;
                w.add_tensor("c", GgmlType::F16, &[1, 1, 1, 5], vec![1u8; 10])?;
                let (bytes, layout) = w.to_bytes();
                let f = GgufFile::from_bytes(bytes.clone())?;
                assert_eq!(f.version, version);
                let expect_align = alignment.unwrap_or(32) as u64;
                assert_eq!(f.alignment, expect_align);
                assert_eq!(f.data_offset, layout.data_start);
                let mut expected = every_value_type();
                if let Some(a) = alignment {
                    expected.insert(0, ("general.alignment".into(), GgufValue::U32(a)));
                }
                assert_eq!(f.metadata(), &expected[..]);
                let names: Vec<_> = f.tensors().iter().map(|t| t.name.as_str()).collect();
                assert_eq!(names, ["a", "b", "c"]);
                let a = f.tensor("a")?;
                assert_eq!(a.dims, vec![3, 2]);
                assert_eq!(a.numpy_shape(), vec![2, 3]);
                assert_eq!(f.tensor_data(a).len(), 24);
                assert_eq!(f.tensor_data(f.tensor("b")?), &[7u8; 68][..]);
                for (t, at) in f.tensors().iter().zip(&layout.tensor_data) {
                    assert_eq!(f.data_offset + t.offset, *at);
                    assert_eq!(at % expect_align, 0);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn writer_rejects_wrong_data_length() {
        let mut w = GgufWriter::new();
        assert!(w.add_tensor("x", GgmlType::Q4_0, &[32], vec![0; 17]).is_err());
        assert!(w.add_tensor("x", GgmlType::Q4_0, &[16], vec![0; 9]).is_err());
    }
}
