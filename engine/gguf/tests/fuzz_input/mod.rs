//! Inputs for the GGUF reader's fuzz targets: two valid base files written with [`GgufWriter`]
//! (every metadata value type, five tensor types, default and 64-byte alignment) with the offset of
//! every field the writer laid out, proptest strategies for mutations of them (bit flips, bytes,
//! interesting u32/u64 values at random or field offsets, truncation, insertion, deletion), and
//! plausible body tokens after a valid header.
//!
//! Shared by `tests/gguf_fuzz.rs` (the reader's properties) and orcd-engine's
//! `tests/inspect_fuzz.rs` (the `inspect` renderings of accepted files), which includes this file
//! by path.

use orcd_gguf::gguf::{GgmlType, GgufValue, GgufWriter, Layout, ValueType};
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------------------------------------
// Base files.

pub fn base_writer(aligned: bool) -> GgufWriter {
    let mut w = if aligned { GgufWriter::new().alignment(64).version(2) } else { GgufWriter::new() };
    w.set("general.architecture", GgufValue::String("llama".into()));
    w.set("general.name", GgufValue::String("fuzz ☃".into()));
    w.set("llama.block_count", GgufValue::U32(1));
    w.set("t.u8", GgufValue::U8(7));
    w.set("t.i16", GgufValue::I16(-3));
    w.set("t.f32", GgufValue::F32(0.5));
    w.set("t.bool", GgufValue::Bool(true));
    w.set("t.u64", GgufValue::U64(1 << 40));
    w.set("t.i64", GgufValue::I64(-1));
    w.set("t.f64", GgufValue::F64(2.5));
    w.set("t.i8", GgufValue::I8(-8));
    w.set("t.u16", GgufValue::U16(16));
    w.set("t.i32", GgufValue::I32(-32));
    w.set("t.u32", GgufValue::U32(32));
    let strs = ["a", "bc", "日本", ""].iter().map(|s| GgufValue::String(s.to_string())).collect();
    w.set("t.strings", GgufValue::Array(ValueType::String, strs));
    w.set("t.bools", GgufValue::Array(ValueType::Bool, vec![GgufValue::Bool(false), GgufValue::Bool(true)]));
    w.set("t.empty", GgufValue::Array(ValueType::U32, vec![]));
    let inner = GgufValue::Array(ValueType::I32, vec![GgufValue::I32(1), GgufValue::I32(2)]);
    let nested =
        GgufValue::Array(ValueType::Array, vec![inner.clone(), GgufValue::Array(ValueType::Array, vec![inner])]);
    w.set("t.nested", nested);
    let bytes = |n: usize, k: u8| (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(k)).collect::<Vec<u8>>();
    w.add_f32("f32", &[4, 2], &[1.0, -2.0, 3.5, 0.0, 1e-3, 7.0, -0.25, 2.0]).unwrap();
    // F16 data: small positive halves (0x3c00 = 1.0 with mantissa noise).
    let f16: Vec<u8> = (0..8u16).flat_map(|i| (0x3c00 | i).to_le_bytes()).collect();
    w.add_tensor("f16", GgmlType::F16, &[8], f16).unwrap();
    w.add_tensor("q8_0", GgmlType::Q8_0, &[32, 1, 2], bytes(68, 1)).unwrap();
    w.add_tensor("q4_0", GgmlType::Q4_0, &[32, 1, 1, 1], bytes(18, 2)).unwrap();
    w.add_tensor("q4_k", GgmlType::Q4_K, &[256], bytes(144, 3)).unwrap();
    w
}

pub struct Base {
    pub bytes: Vec<u8>,
    /// Offsets of every field the writer recorded: counts, kv keys/types/values/array counts,
    /// tensor names/n_dims/dims/types/offsets, data starts.
    pub fields: Vec<usize>,
}

fn field_offsets(l: &Layout) -> Vec<usize> {
    let mut f = vec![0, 4, l.n_tensors_at as usize, l.n_tensors_at as usize + 8];
    for kv in &l.kvs {
        f.extend([kv.start, kv.start + 8, kv.type_at, kv.value_at, kv.value_at + 4, kv.end].map(|x| x as usize));
    }
    for t in &l.tensor_infos {
        f.extend(
            [t.start, t.start + 8, t.n_dims_at, t.n_dims_at + 4, t.n_dims_at + 12, t.type_at, t.offset_at, t.end]
                .map(|x| x as usize),
        );
    }
    f.push(l.data_start as usize);
    f.extend(l.tensor_data.iter().map(|&x| x as usize));
    f
}

pub fn base(aligned: bool) -> Base {
    let (bytes, layout) = base_writer(aligned).to_bytes();
    Base { fields: field_offsets(&layout), bytes }
}

// ---------------------------------------------------------------------------------------------
// Mutations.

const INTERESTING_U64: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    5,
    8,
    9,
    12,
    13,
    31,
    32,
    33,
    63,
    64,
    255,
    256,
    4096,
    65535,
    65536,
    1 << 20,
    (1 << 20) + 1,
    1 << 24,
    u32::MAX as u64,
    1 << 32,
    1 << 62,
    1 << 63,
    i64::MAX as u64,
    u64::MAX - 31,
    u64::MAX - 1,
    u64::MAX,
];

const INTERESTING_U32: &[u32] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 41, 42, 64, 255, 0x8000_0000, u32::MAX];

#[derive(Debug, Clone)]
pub enum Pos {
    Random(Index),
    Field(Index),
}

#[derive(Debug, Clone)]
pub enum Mutation {
    FlipBit(Pos, u8),
    SetByte(Pos, u8),
    PutU32(Pos, u32),
    PutU64(Pos, u64),
    Truncate(Index),
    Insert(Pos, Vec<u8>),
    Delete(Pos, usize),
}

fn pos() -> impl Strategy<Value = Pos> {
    prop_oneof![any::<Index>().prop_map(Pos::Random), any::<Index>().prop_map(Pos::Field)]
}

fn u64_value() -> impl Strategy<Value = u64> {
    prop_oneof![3 => prop::sample::select(INTERESTING_U64), 1 => any::<u64>()]
}

fn u32_value() -> impl Strategy<Value = u32> {
    prop_oneof![3 => prop::sample::select(INTERESTING_U32), 1 => any::<u32>()]
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => (pos(), 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        2 => (pos(), any::<u8>()).prop_map(|(p, b)| Mutation::SetByte(p, b)),
        3 => (pos(), u32_value()).prop_map(|(p, v)| Mutation::PutU32(p, v)),
        4 => (pos(), u64_value()).prop_map(|(p, v)| Mutation::PutU64(p, v)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (pos(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(p, b)| Mutation::Insert(p, b)),
        1 => (pos(), 1usize..16).prop_map(|(p, n)| Mutation::Delete(p, n)),
    ]
}

fn resolve(p: &Pos, b: &Base, len: usize) -> usize {
    match p {
        Pos::Random(i) => i.index(len.max(1)),
        Pos::Field(i) => b.fields[i.index(b.fields.len())],
    }
}

fn put(bytes: &mut [u8], at: usize, v: &[u8]) {
    for (k, x) in v.iter().enumerate() {
        if let Some(slot) = bytes.get_mut(at + k) {
            *slot = *x;
        }
    }
}

pub fn apply(b: &Base, muts: &[Mutation]) -> Vec<u8> {
    let mut bytes = b.bytes.clone();
    for m in muts {
        let len = bytes.len();
        match m {
            Mutation::FlipBit(p, bit) => {
                let at = resolve(p, b, len);
                if let Some(x) = bytes.get_mut(at) {
                    *x ^= 1 << bit;
                }
            }
            Mutation::SetByte(p, v) => put(&mut bytes, resolve(p, b, len), &[*v]),
            Mutation::PutU32(p, v) => put(&mut bytes, resolve(p, b, len), &v.to_le_bytes()),
            Mutation::PutU64(p, v) => put(&mut bytes, resolve(p, b, len), &v.to_le_bytes()),
            Mutation::Truncate(i) => bytes.truncate(i.index(len + 1)),
            Mutation::Insert(p, v) => {
                let at = resolve(p, b, len).min(len);
                bytes.splice(at..at, v.iter().copied());
            }
            Mutation::Delete(p, n) => {
                let at = resolve(p, b, len).min(len);
                bytes.drain(at..(at + n).min(len));
            }
        }
    }
    bytes
}

pub fn body_token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<u8>().prop_map(|b| vec![b]),
        (0u32..16).prop_map(|v| v.to_le_bytes().to_vec()),
        u32_value().prop_map(|v| v.to_le_bytes().to_vec()),
        (0u64..40).prop_map(|v| v.to_le_bytes().to_vec()),
        u64_value().prop_map(|v| v.to_le_bytes().to_vec()),
        prop::sample::select(&["general.alignment", "a", "", "t", "é", "\u{1F980}"][..]).prop_map(|s| {
            let mut v = (s.len() as u64).to_le_bytes().to_vec();
            v.extend(s.as_bytes());
            v
        }),
        prop::collection::vec(any::<u8>(), 1..40),
    ]
}
