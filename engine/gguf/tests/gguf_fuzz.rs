//! Fuzz target for the GGUF reader (proptest): random mutations of a valid file, random bodies
//! after a valid header, and pure random bytes after "GGUF" v3. Properties (DESIGN §2, §10):
//! - `GgufFile::from_bytes` returns `Ok` or `Err`, never panics, in bounded time;
//! - memory allocated while parsing stays within `64 × file size + 1 MiB` (counted by a global
//!   allocator on the parsing thread);
//! - an error has a stable kind and a one-line message;
//! - an accepted file is self-consistent: every tensor lies inside the file, aligned, within its
//!   dims' byte size, without overlap, and `tensor_data` returns exactly those bytes of the input;
//!   keys and tensor names are unique; dequantizing does not panic.
//!
//! The inputs (base files, mutations, body tokens) are in `fuzz_input/`; orcd-engine's
//! `tests/inspect_fuzz.rs` feeds the same inputs to the `inspect` renderings.
//!
//! Cases per property: 2000 by default, `PROPTEST_CASES=N` to change; `PROPTEST_RNG_SEED=S` to
//! replay a run (the seed is random otherwise).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use orcd_gguf::gguf::{GgufFile, GgufValue, GgufWriter, ValueType, MAX_DIMS};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

mod fuzz_input;
use fuzz_input::{apply, base, base_writer, body_token, mutation, Base};

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
