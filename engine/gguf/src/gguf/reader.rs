//! The GGUF reader. See the module invariants in `gguf/mod.rs`.

use std::collections::HashMap;
use std::path::Path;

use super::{GgmlType, GgufError, GgufValue, ValueType, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};

type Result<T> = std::result::Result<T, GgufError>;

/// Limits applied while parsing, on top of the checks against the file size. Defaults are far
/// above anything a real model carries (vocab arrays of 262,144 strings, templates of tens of KB).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_tensors: u64,
    pub max_kv: u64,
    /// Bytes in one string value or key.
    pub max_string: u64,
    /// Bytes in a tensor name (ggml's GGML_MAX_NAME is 64 including the NUL).
    pub max_tensor_name: u64,
    /// Elements in one array.
    pub max_array: u64,
    /// Elements in all arrays together (bounds memory: each element is one `GgufValue`).
    pub max_array_total: u64,
    /// Nesting depth of arrays of arrays.
    pub max_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tensors: 1 << 20,
            max_kv: 1 << 16,
            max_string: 256 << 20,
            max_tensor_name: 63,
            max_array: 1 << 24,
            max_array_total: 1 << 25,
            max_depth: 4,
        }
    }
}

/// One tensor's description. `dims` are in GGUF order: `dims[0]` is ne0, the contiguous axis.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub ty: GgmlType,
    pub dims: Vec<u64>,
    /// Offset of the data, relative to the start of the data section.
    pub offset: u64,
    pub n_elements: u64,
    pub n_bytes: u64,
    /// Byte offset of this tensor info in the file (for error messages).
    pub info_offset: u64,
}

impl TensorInfo {
    /// Shape in numpy order (GGUF dims reversed).
    pub fn numpy_shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

enum Storage {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mmap(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// An opened, fully validated GGUF file.
pub struct GgufFile {
    storage: Storage,
    pub version: u32,
    pub alignment: u64,
    /// Absolute byte offset of the data section.
    pub data_offset: u64,
    metadata: Vec<(String, GgufValue)>,
    index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("n_kv", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .finish()
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: u64,
    limits: &'a Limits,
    array_total: u64,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        self.buf.len() as u64 - self.pos
    }

    fn take(&mut self, n: u64, field: &dyn Fn() -> String) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(GgufError::Truncated { offset: self.pos, field: field(), need: n, have: self.remaining() });
        }
        let start = self.pos as usize;
        self.pos += n;
        Ok(&self.buf[start..start + n as usize])
    }

    fn arr<const N: usize>(&mut self, field: &dyn Fn() -> String) -> Result<[u8; N]> {
        let s = self.take(N as u64, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, field: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr(field)?))
    }

    fn u64(&mut self, field: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr(field)?))
    }

    /// A length-prefixed string (u64 length).
    fn string(&mut self, limit: u64, field: &dyn Fn() -> String) -> Result<String> {
        let at = self.pos;
        let len = self.u64(&|| format!("{} (length)", field()))?;
        if len > limit {
            return Err(GgufError::LimitExceeded {
                offset: at,
                field: format!("{} (length)", field()),
                value: len,
                limit,
            });
        }
        let bytes = self.take(len, field)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(GgufError::InvalidUtf8 { offset: at + 8, field: field() }),
        }
    }

    fn value(&mut self, ty: ValueType, depth: u32, field: &dyn Fn() -> String) -> Result<GgufValue> {
        Ok(match ty {
            ValueType::U8 => GgufValue::U8(self.arr::<1>(field)?[0]),
            ValueType::I8 => GgufValue::I8(self.arr::<1>(field)?[0] as i8),
            ValueType::U16 => GgufValue::U16(u16::from_le_bytes(self.arr(field)?)),
            ValueType::I16 => GgufValue::I16(i16::from_le_bytes(self.arr(field)?)),
            ValueType::U32 => GgufValue::U32(u32::from_le_bytes(self.arr(field)?)),
            ValueType::I32 => GgufValue::I32(i32::from_le_bytes(self.arr(field)?)),
            ValueType::F32 => GgufValue::F32(f32::from_le_bytes(self.arr(field)?)),
            ValueType::U64 => GgufValue::U64(u64::from_le_bytes(self.arr(field)?)),
            ValueType::I64 => GgufValue::I64(i64::from_le_bytes(self.arr(field)?)),
            ValueType::F64 => GgufValue::F64(f64::from_le_bytes(self.arr(field)?)),
            ValueType::Bool => {
                let at = self.pos;
                match self.arr::<1>(field)?[0] {
                    0 => GgufValue::Bool(false),
                    1 => GgufValue::Bool(true),
                    value => return Err(GgufError::InvalidBool { offset: at, field: field(), value }),
                }
            }
            ValueType::String => GgufValue::String(self.string(self.limits.max_string, field)?),
            ValueType::Array => {
                let at = self.pos;
                if depth >= self.limits.max_depth {
                    return Err(GgufError::NestingTooDeep { offset: at, field: field(), limit: self.limits.max_depth });
                }
                let type_id = self.u32(&|| format!("{} (array element type)", field()))?;
                let elem = ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
                    offset: at,
                    field: format!("{} (array element type)", field()),
                    type_id,
                })?;
                let count_at = self.pos;
                let count = self.u64(&|| format!("{} (array length)", field()))?;
                // Bound the allocation by what the file can hold and by the limits.
                let fits = self.remaining() / elem.min_size();
                let limit = self.limits.max_array.min(self.limits.max_array_total - self.array_total);
                if count > limit {
                    return Err(GgufError::LimitExceeded {
                        offset: count_at,
                        field: format!("{} (array length)", field()),
                        value: count,
                        limit,
                    });
                }
                if count > fits {
                    return Err(GgufError::Truncated {
                        offset: self.pos,
                        field: format!("{} ({count} elements of {})", field(), elem.name()),
                        need: count.saturating_mul(elem.min_size()),
                        have: self.remaining(),
                    });
                }
                self.array_total += count;
                let mut items = Vec::with_capacity(count as usize);
                for i in 0..count {
                    items.push(self.value(elem, depth + 1, &|| format!("{}[{i}]", field()))?);
                }
                GgufValue::Array(elem, items)
            }
        })
    }
}

fn align_up(x: u64, a: u64) -> Option<u64> {
    x.checked_add(a - 1).map(|v| v / a * a)
}

impl GgufFile {
    /// Open and validate a file (memory-mapped).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_limits(path, &Limits::default())
    }

    pub fn open_with_limits(path: &Path, limits: &Limits) -> Result<Self> {
        let io = |source| GgufError::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            // Devices and pipes report no size and may never end: refuse them outright.
            return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")));
        }
        let len = meta.len();
        let storage = if len < 4096 {
            // Tiny files (and empty ones, which cannot be mapped) are read — at most `len` bytes
            // from the handle already open, so a file that grows meanwhile is not read further.
            use std::io::Read;
            let mut buf = Vec::with_capacity(len as usize);
            file.take(len).read_to_end(&mut buf).map_err(io)?;
            Storage::Owned(buf)
        } else {
            // SAFETY: the map is read-only; a file truncated by another process while mapped would
            // fault, as with every mmap-based reader (llama.cpp, gguf-py). We never write through it.
            Storage::Mmap(unsafe { memmap2::Mmap::map(&file) }.map_err(io)?)
        };
        Self::parse(storage, limits)
    }

    /// Parse a file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::parse(Storage::Owned(bytes), &Limits::default())
    }

    pub fn from_bytes_with_limits(bytes: Vec<u8>, limits: &Limits) -> Result<Self> {
        Self::parse(Storage::Owned(bytes), limits)
    }

    fn parse(storage: Storage, limits: &Limits) -> Result<Self> {
        let buf = storage.bytes();
        let file_len = buf.len() as u64;
        let mut c = Cursor { buf, pos: 0, limits, array_total: 0 };

        let magic = c.take(4, &|| "header.magic".into())?;
        if magic != MAGIC {
            return Err(GgufError::BadMagic { found: magic.to_vec() });
        }
        let version = c.u32(&|| "header.version".into())?;
        match version {
            2 | 3 => {}
            v if matches!(v.swap_bytes(), 2 | 3) => return Err(GgufError::BigEndian { version: v.swap_bytes() }),
            v => return Err(GgufError::UnsupportedVersion { version: v }),
        }
        let at = c.pos;
        let n_tensors = c.u64(&|| "header.n_tensors".into())?;
        let n_kv = c.u64(&|| "header.n_kv".into())?;
        if n_tensors > limits.max_tensors {
            return Err(GgufError::LimitExceeded {
                offset: at,
                field: "header.n_tensors".into(),
                value: n_tensors,
                limit: limits.max_tensors,
            });
        }
        if n_kv > limits.max_kv {
            return Err(GgufError::LimitExceeded {
                offset: at + 8,
                field: "header.n_kv".into(),
                value: n_kv,
                limit: limits.max_kv,
            });
        }
        // Smallest encodings: kv = key length 8 + type 4 + value 1; tensor info = name length 8 +
        // n_dims 4 + one dim 8 + type 4 + offset 8.
        let need = n_kv.saturating_mul(13).saturating_add(n_tensors.saturating_mul(32));
        if need > c.remaining() {
            return Err(GgufError::Truncated {
                offset: c.pos,
                field: format!("{n_kv} metadata entries and {n_tensors} tensor infos"),
                need,
                have: c.remaining(),
            });
        }

        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut index = HashMap::with_capacity(n_kv as usize);
        for i in 0..n_kv {
            let kv_at = c.pos;
            let key = c.string(limits.max_string.min(65535), &|| format!("kv[{i}].key"))?;
            if key.is_empty() {
                return Err(GgufError::EmptyKey { offset: kv_at });
            }
            let type_at = c.pos;
            let type_id = c.u32(&|| format!("kv[{i}] {key:?} type"))?;
            let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
                offset: type_at,
                field: format!("kv[{i}] {key:?}"),
                type_id,
            })?;
            let value = c.value(ty, 0, &|| format!("kv[{i}] {key:?}"))?;
            if index.insert(key.clone(), metadata.len()).is_some() {
                return Err(GgufError::DuplicateKey { offset: kv_at, key });
            }
            metadata.push((key, value));
        }

        let alignment = match index.get("general.alignment").map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
            Some(GgufValue::U32(a)) if *a != 0 && a.is_power_of_two() => *a as u64,
            Some(GgufValue::U32(a)) => {
                return Err(GgufError::BadAlignment { reason: format!("{a} is not a non-zero power of two") })
            }
            Some(v) => {
                return Err(GgufError::BadAlignment { reason: format!("type is {}, expected u32", v.type_name()) })
            }
        };

        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors as usize);
        let mut tensor_index = HashMap::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let info_offset = c.pos;
            let name = c.string(limits.max_tensor_name, &|| format!("tensor_info[{i}].name"))?;
            let f = |what: &str| format!("tensor_info[{i}] {name:?} {what}");
            let nd_at = c.pos;
            let n_dims = c.u32(&|| f("n_dims"))?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(GgufError::BadDims {
                    offset: nd_at,
                    tensor: name,
                    reason: format!("n_dims = {n_dims}, must be 1..={MAX_DIMS}"),
                });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            let mut n_elements: u64 = 1;
            for d in 0..n_dims {
                let dim_at = c.pos;
                let ne = c.u64(&|| f(&format!("dims[{d}]")))?;
                if ne == 0 {
                    return Err(GgufError::BadDims { offset: dim_at, tensor: name, reason: format!("dims[{d}] is 0") });
                }
                n_elements = match n_elements.checked_mul(ne).filter(|&n| n <= i64::MAX as u64) {
                    Some(n) => n,
                    None => {
                        return Err(GgufError::BadDims {
                            offset: dim_at,
                            tensor: name,
                            reason: format!("the product of dims overflows int64 at dims[{d}] = {ne}"),
                        })
                    }
                };
                dims.push(ne);
            }
            let type_at = c.pos;
            let type_id = c.u32(&|| f("type"))?;
            let ty = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType {
                offset: type_at,
                tensor: name.clone(),
                type_id,
            })?;
            let bs = ty.block_size() as u64;
            if dims[0] % bs != 0 {
                return Err(GgufError::BlockMisaligned { tensor: name, ty, ne0: dims[0], block_size: bs });
            }
            let n_bytes = match ty.bytes_for(n_elements) {
                Some(n) => n,
                None => {
                    return Err(GgufError::BadDims {
                        offset: nd_at,
                        tensor: name,
                        reason: "byte size overflows".into(),
                    })
                }
            };
            let offset = c.u64(&|| f("offset"))?;
            if offset % alignment != 0 {
                return Err(GgufError::TensorMisaligned { tensor: name, offset, alignment });
            }
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return Err(GgufError::DuplicateTensor { offset: info_offset, name });
            }
            tensors.push(TensorInfo { name, ty, dims, offset, n_elements, n_bytes, info_offset });
        }

        let data_offset = align_up(c.pos, alignment).unwrap_or(u64::MAX);
        let data_len = file_len.saturating_sub(data_offset);
        for t in &tensors {
            let end = t.offset.checked_add(t.n_bytes);
            if end.is_none_or(|e| e > data_len) {
                return Err(GgufError::TensorOutOfBounds {
                    tensor: t.name.clone(),
                    start: t.offset,
                    end: end.unwrap_or(u64::MAX),
                    data_len,
                });
            }
        }
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by_key(|&i| tensors[i].offset);
        for w in order.windows(2) {
            let (a, b) = (&tensors[w[0]], &tensors[w[1]]);
            if a.offset + a.n_bytes > b.offset {
                return Err(GgufError::TensorOverlap { a: a.name.clone(), b: b.name.clone() });
            }
        }

        Ok(GgufFile { storage, version, alignment, data_offset, metadata, index, tensors, tensor_index })
    }

    /// Metadata in file order.
    pub fn metadata(&self) -> &[(String, GgufValue)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn require(&self, key: &str) -> Result<&GgufValue> {
        self.get(key).ok_or_else(|| GgufError::MissingKey { key: key.into() })
    }

    fn wrong(&self, key: &str, expected: &str, v: &GgufValue) -> GgufError {
        GgufError::WrongType { key: key.into(), expected: expected.into(), found: v.type_name() }
    }

    /// An unsigned integer of any width.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.as_u64().ok_or_else(|| self.wrong(key, "unsigned integer", v))
    }

    pub fn get_u32(&self, key: &str) -> Result<u32> {
        let v = self.require(key)?;
        v.as_u64().and_then(|x| u32::try_from(x).ok()).ok_or_else(|| self.wrong(key, "u32", v))
    }

    pub fn get_f32(&self, key: &str) -> Result<f32> {
        let v = self.require(key)?;
        v.as_f64().map(|x| x as f32).ok_or_else(|| self.wrong(key, "float", v))
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| self.wrong(key, "string", v))
    }

    pub fn get_bool(&self, key: &str) -> Result<bool> {
        let v = self.require(key)?;
        v.as_bool().ok_or_else(|| self.wrong(key, "bool", v))
    }

    pub fn get_array(&self, key: &str) -> Result<&[GgufValue]> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| self.wrong(key, "array", v))
    }

    /// `general.architecture`, if present.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(GgufValue::as_str)
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor_index
            .get(name)
            .map(|&i| &self.tensors[i])
            .ok_or_else(|| GgufError::TensorNotFound { name: name.into() })
    }

    /// The raw bytes of a tensor (bounds were checked at open).
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let start = (self.data_offset + t.offset) as usize;
        &self.storage.bytes()[start..start + t.n_bytes as usize]
    }

    /// Total file size in bytes.
    pub fn file_len(&self) -> u64 {
        self.storage.bytes().len() as u64
    }

    /// The tensor dequantized to f32 (row-major in GGUF order: ne0 fastest).
    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>> {
        let t = self.tensor(name)?;
        let too_large = || GgufError::TensorTooLarge { name: name.into(), n_elements: t.n_elements };
        let n = usize::try_from(t.n_elements).map_err(|_| too_large())?;
        let mut out = Vec::new();
        out.try_reserve_exact(n).map_err(|_| too_large())?;
        out.resize(n, 0.0);
        crate::quant::dequantize(t.ty, self.tensor_data(t), &mut out)
            .map_err(|source| GgufError::Dequantize { name: name.into(), source })?;
        Ok(out)
    }
}
