//! Fuzz target for the GGUF reader (proptest): random mutations of a valid file, random bodies
//! after a valid header, and pure random bytes after "GGUF" v3. Properties (DESIGN §2, §10):
//! - `GgufFile::from_bytes` returns `Ok` or `Err`, never panics, in bounded time;
//! - memory allocated while parsing stays within `64 × file size + 1 MiB` (counted by a global
//!   allocator on the parsing thread);
//! - an error has a stable kind and a one-line message;
//! - an accepted file is self-consistent: every tensor lies inside the file, aligned, within its
//!   dims' byte size, without overlap, and `tensor_data` returns exactly those bytes of the input;
//!   keys and tensor names are unique; dequantizing and `inspect` rendering do not panic.
//!
//! Cases per property: 2000 by default, `PROPTEST_CASES=N` to change; `PROPTEST_RNG_SEED=S` to
//! replay a run (the seed is random otherwise).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use orcd_engine::gguf::{GgmlType, GgufFile, GgufValue, GgufWriter, Layout, ValueType, MAX_DIMS};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------------------------
// Allocation accounting for the current thread.

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let v = live.get() + delta;
        live.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v)
            }
        });
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; the bookkeeping touches only
// const-initialised thread-locals (no allocation, no re-entrancy).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: AllocLayout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            track(l.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, l: AllocLayout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            track(l.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: AllocLayout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(p, l) };
        track(-(l.size() as isize));
    }

    unsafe fn realloc(&self, p: *mut u8, l: AllocLayout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let q = unsafe { System.realloc(p, l, new_size) };
        if !q.is_null() {
            track(new_size as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Run `f`, returning its result, the peak of bytes allocated (and not yet freed) on this thread
/// while it ran, and the time it took.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize, Duration) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let t0 = Instant::now();
    let r = f();
    let dt = t0.elapsed();
    let peak = PEAK.with(Cell::get) - base;
    (r, peak.max(0) as usize, dt)
}

// ---------------------------------------------------------------------------------------------
// Base files.

fn base_writer(aligned: bool) -> GgufWriter {
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

struct Base {
    bytes: Vec<u8>,
    /// Offsets of every field the writer recorded: counts, kv keys/types/values/array counts,
    /// tensor names/n_dims/dims/types/offsets, data starts.
    fields: Vec<usize>,
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

fn base(aligned: bool) -> Base {
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
enum Pos {
    Random(Index),
    Field(Index),
}

#[derive(Debug, Clone)]
enum Mutation {
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

fn mutation() -> impl Strategy<Value = Mutation> {
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

fn apply(b: &Base, muts: &[Mutation]) -> Vec<u8> {
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

// ---------------------------------------------------------------------------------------------
// The properties.

const MAX_PARSE_TIME: Duration = Duration::from_secs(2);

/// Parse `bytes`, check the no-panic / time / memory properties and, for an accepted file, its
/// consistency. Returns whether the file was accepted.
fn check(bytes: Vec<u8>) -> Result<bool, TestCaseError> {
    let copy = bytes.clone();
    let input = bytes.as_ptr_range();
    let (input_start, input_end) = (input.start as usize, input.end as usize);
    let len = bytes.len();
    let (r, peak, dt) = measured(move || GgufFile::from_bytes(bytes));
    prop_assert!(dt < MAX_PARSE_TIME, "parsing {len} bytes took {dt:?}");
    let bound = 64 * len + (1 << 20);
    prop_assert!(peak <= bound, "parsing {len} bytes allocated {peak} bytes (bound {bound})");
    let f = match r {
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(!e.kind().is_empty());
            prop_assert!(!msg.contains('\n') && !msg.contains('\r'), "multi-line error: {msg:?}");
            return Ok(false);
        }
        Ok(f) => f,
    };
    prop_assert!(f.version == 2 || f.version == 3);
    prop_assert!(f.alignment.is_power_of_two());
    prop_assert_eq!(f.data_offset % f.alignment, 0);
    prop_assert_eq!(f.file_len(), len as u64);

    let mut keys = HashSet::new();
    for (k, v) in f.metadata() {
        prop_assert!(keys.insert(k.clone()), "duplicate key {k:?} accepted");
        // Same entry (compared by address: a NaN value is not equal to itself).
        prop_assert!(f.get(k).is_some_and(|x| std::ptr::eq(x, v)), "lookup of {k:?}");
    }
    let mut names = HashSet::new();
    let mut spans = Vec::new();
    for t in f.tensors() {
        prop_assert!(names.insert(t.name.clone()), "duplicate tensor {:?} accepted", t.name);
        prop_assert!(t.name.len() <= 63);
        prop_assert!(!t.dims.is_empty() && t.dims.len() <= MAX_DIMS as usize, "{:?}", t.dims);
        prop_assert!(t.dims.iter().all(|&d| d > 0), "zero dim accepted: {:?}", t.dims);
        let n = t.dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        prop_assert_eq!(n, Some(t.n_elements));
        prop_assert!(t.n_elements <= i64::MAX as u64);
        prop_assert_eq!(t.dims[0] % t.ty.block_size() as u64, 0);
        prop_assert_eq!(t.ty.bytes_for(t.n_elements), Some(t.n_bytes));
        prop_assert_eq!(t.offset % f.alignment, 0);
        let start = f.data_offset.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.n_bytes));
        prop_assert!(end.is_some_and(|e| e <= len as u64), "tensor {:?} outside the file", t.name);
        let (start, end) = (start.unwrap_or(0) as usize, end.unwrap_or(0) as usize);
        let data = f.tensor_data(t);
        prop_assert_eq!(data.len() as u64, t.n_bytes);
        let p = data.as_ptr() as usize;
        prop_assert!(p >= input_start && p + data.len() <= input_end, "tensor_data outside the input buffer");
        prop_assert!(data == &copy[start..end], "tensor_data of {:?} is not the file's bytes", t.name);
        prop_assert_eq!(f.tensor(&t.name).ok(), Some(t));
        spans.push((start, end));
        // Dequantizing must not panic (it may refuse unsupported types).
        if t.n_elements <= 1 << 16 {
            if let Ok(v) = f.tensor_f32(&t.name) {
                prop_assert_eq!(v.len() as u64, t.n_elements);
            }
        }
    }
    spans.sort();
    for w in spans.windows(2) {
        prop_assert!(w[0].1 <= w[1].0, "overlapping tensors accepted: {spans:?}");
    }
    // The inspect renderings must not panic either.
    let path = std::path::Path::new("fuzz.gguf");
    let _ = orcd_engine::cli::inspect_text(&f, path);
    let _ = orcd_engine::cli::inspect_json(&f, path);
    Ok(true)
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    ProptestConfig { cases, failure_persistence: None, max_shrink_iters: 4096, ..ProptestConfig::default() }
}

thread_local! {
    static BASES: [Base; 2] = [base(false), base(true)];
}

proptest! {
    #![proptest_config(config())]

    /// Mutations of a valid file: bit flips, bytes, u32/u64 overwrites (interesting values) at
    /// random offsets or at field offsets from the writer's layout, truncation, insertion, deletion.
    #[test]
    fn mutated_valid_file(aligned in any::<bool>(), muts in prop::collection::vec(mutation(), 1..6)) {
        let bytes = BASES.with(|b| apply(&b[aligned as usize], &muts));
        check(bytes)?;
    }

    /// Pure random bytes after the GGUF v3 magic and version.
    #[test]
    fn random_bytes_after_magic(body in prop::collection::vec(any::<u8>(), 0..1024)) {
        let mut bytes = b"GGUF\x03\0\0\0".to_vec();
        bytes.extend(body);
        check(bytes)?;
    }

    /// A valid header with small counts, then a body of plausible tokens (small integers, short
    /// length-prefixed strings, type ids, random bytes), so that parsing gets past the counts.
    #[test]
    fn random_body_after_header(
        version in 2u32..4,
        n_tensors in 0u64..4,
        n_kv in 0u64..6,
        tokens in prop::collection::vec(body_token(), 0..80),
    ) {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend(version.to_le_bytes());
        bytes.extend(n_tensors.to_le_bytes());
        bytes.extend(n_kv.to_le_bytes());
        for t in tokens {
            bytes.extend(t);
        }
        check(bytes)?;
    }
}

fn body_token() -> impl Strategy<Value = Vec<u8>> {
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

// ---------------------------------------------------------------------------------------------
// Fixed checks that anchor the fuzz properties.

#[test]
fn base_files_are_accepted() {
    for aligned in [false, true] {
        let b = base(aligned);
        assert!(check(b.bytes.clone()).unwrap(), "base file (aligned: {aligned}) rejected");
        let f = GgufFile::from_bytes(b.bytes).unwrap();
        assert_eq!(f.tensors().len(), 5);
        assert_eq!(f.alignment, if aligned { 64 } else { 32 });
    }
}

/// Every prefix of the base files that cuts into the last tensor's data or before it is rejected
/// without panicking; prefixes that drop only the trailing padding are complete files.
#[test]
fn every_prefix_is_rejected() {
    for aligned in [false, true] {
        let b = base(aligned);
        let (_, layout) = base_writer(aligned).to_bytes();
        let data_end = layout.tensor_data.last().unwrap() + 144;
        for n in 0..b.bytes.len() {
            let accepted = check(b.bytes[..n].to_vec()).unwrap();
            assert_eq!(accepted, n as u64 >= data_end, "prefix of {n} bytes (data ends at {data_end})");
        }
    }
}

/// Every single-bit flip of the base files (exhaustive, not sampled).
#[test]
fn every_bit_flip() {
    let mut accepted = 0usize;
    let mut total = 0usize;
    for aligned in [false, true] {
        let b = base(aligned);
        for at in 0..b.bytes.len() {
            for bit in 0..8 {
                let mut bytes = b.bytes.clone();
                bytes[at] ^= 1 << bit;
                accepted += check(bytes).unwrap() as usize;
                total += 1;
            }
        }
    }
    eprintln!("{accepted} of {total} single-bit flips still parse (flips in values and tensor data)");
}

/// The memory bound holds at its worst case: a u8 array costs one file byte per element but one
/// `GgufValue` in memory. Documents the amplification factor.
#[test]
fn memory_amplification_of_a_large_u8_array() {
    let n = 1 << 20;
    let mut w = GgufWriter::new();
    w.set("big", GgufValue::Array(ValueType::U8, vec![GgufValue::U8(1); n]));
    let bytes = w.to_bytes().0;
    let len = bytes.len();
    let (r, peak, _) = measured(move || GgufFile::from_bytes(bytes));
    assert!(r.is_ok());
    eprintln!("u8 array of {n} elements: file {len} bytes, parse peak {peak} bytes ({:.1}x)", peak as f64 / len as f64);
    assert!(peak <= 64 * len + (1 << 20));
}
