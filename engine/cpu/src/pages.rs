//! Weight buffers on transparent huge pages.
//!
//! Decode streams every weight once a token. With 4 KiB pages a 4.6 MB matrix spans ~1,100
//! pages: a TLB walk every 4 KiB, and the hardware prefetchers stop at each page boundary. The
//! same bytes in 2 MiB pages stream near the machine's read bandwidth (Qwen2.5-0.5B-shape Q8_0,
//! AMD Zen 4 VM, 2 threads: decode 45.4 → 54.0 tok/s, docs/perf/NOTES.md stop 25). Linux backs
//! anonymous memory with huge pages only where asked (`madvise` mode, the common default), so
//! weights are copied into anonymous mappings advised `MADV_HUGEPAGE`: shared chunks of
//! [`CHUNK`] bytes, each weight a 64-byte-aligned range of one (small matrices too: a model's
//! k/v projections are ~100 KB each), or a mapping of its own when larger than half a chunk.
//!
//! Invariants: a `WeightBytes` holds exactly the bytes it was made from; a chunk's range is
//! written once, under the allocator's lock, before its `WeightBytes` exists, and never again
//! (readers only read); a chunk lives while any of its weights does (and, the one being filled,
//! until the next is opened). Where mapping fails the
//! bytes go to the heap; the advice is a hint (never an error).

use std::ops::Deref;
use std::sync::{Arc, Mutex};

/// Huge page size on x86-64 Linux (mappings are aligned to it).
const HUGE: usize = 2 << 20;
/// Bytes of a shared chunk.
const CHUNK: usize = 64 << 20;
/// Alignment of a weight in a chunk (a cache line).
const ALIGN: usize = 64;

/// Bytes of a weight: a range of a huge-page-advised mapping, or a `Vec` where mapping failed.
pub struct WeightBytes(Repr);

enum Repr {
    Heap(Vec<u8>),
    /// `len` bytes from offset `at` of `chunk`.
    Mapped {
        chunk: Arc<Chunk>,
        at: usize,
        len: usize,
    },
}

/// An anonymous mapping; `base` is its first 2 MiB-aligned offset.
struct Chunk {
    map: memmap2::MmapRaw,
    base: usize,
    size: usize,
}

impl Chunk {
    /// A mapping with `size` usable bytes from a 2 MiB boundary, advised for huge pages before
    /// anything touches it (its pages then fault in as huge pages).
    fn new(size: usize) -> Option<Chunk> {
        let map: memmap2::MmapRaw = memmap2::MmapOptions::new().len(size.checked_add(HUGE)?).map_anon().ok()?.into();
        let base = (map.as_ptr() as usize).next_multiple_of(HUGE) - map.as_ptr() as usize;
        #[cfg(target_os = "linux")]
        {
            // A hint: refused (no THP in this kernel) it changes nothing but speed.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        Some(Chunk { map, base, size })
    }
}

/// The chunk being filled and its first free offset (from `base`).
static OPEN: Mutex<Option<(Arc<Chunk>, usize)>> = Mutex::new(None);

impl WeightBytes {
    /// A copy of `bytes`.
    pub fn from_slice(bytes: &[u8]) -> Self {
        let len = bytes.len();
        if len == 0 {
            return Self::default();
        }
        let place = |chunk: &Arc<Chunk>, at: usize| {
            // SAFETY: `at..at + len` lies inside the mapping (checked by the callers) and is
            // handed out once: nothing else reads or writes it (the module invariant).
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), chunk.map.as_mut_ptr().add(chunk.base + at), len) };
            WeightBytes(Repr::Mapped { chunk: Arc::clone(chunk), at, len })
        };
        if len > CHUNK / 2 {
            return match Chunk::new(len) {
                Some(c) => place(&Arc::new(c), 0),
                None => WeightBytes(Repr::Heap(bytes.to_vec())),
            };
        }
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        if open.as_ref().is_none_or(|(c, next)| next + len > c.size) {
            *open = Chunk::new(CHUNK).map(|c| (Arc::new(c), 0));
        }
        match open.as_mut() {
            Some((chunk, next)) => {
                let at = *next;
                *next = (at + len).next_multiple_of(ALIGN);
                place(chunk, at)
            }
            None => WeightBytes(Repr::Heap(bytes.to_vec())),
        }
    }

    /// Whether the bytes live in a huge-page-advised mapping (not a promise the kernel gave
    /// huge pages: it may not have had them free).
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Repr::Mapped { .. })
    }
}

impl Default for WeightBytes {
    fn default() -> Self {
        WeightBytes(Repr::Heap(Vec::new()))
    }
}

impl From<Vec<u8>> for WeightBytes {
    /// The vector's bytes, copied into a mapping.
    fn from(v: Vec<u8>) -> Self {
        Self::from_slice(&v)
    }
}

impl Deref for WeightBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Heap(v) => v,
            // SAFETY: the range was written before this value existed and is never written
            // again (the module invariant); the chunk outlives the borrow (held by `self`).
            Repr::Mapped { chunk, at, len } => unsafe {
                std::slice::from_raw_parts(chunk.map.as_ptr().add(chunk.base + at), *len)
            },
        }
    }
}

impl Clone for WeightBytes {
    /// The bytes are never written after they are placed: a mapped clone shares them.
    fn clone(&self) -> Self {
        match &self.0 {
            Repr::Heap(v) => WeightBytes(Repr::Heap(v.clone())),
            Repr::Mapped { chunk, at, len } => {
                WeightBytes(Repr::Mapped { chunk: Arc::clone(chunk), at: *at, len: *len })
            }
        }
    }
}

impl std::fmt::Debug for WeightBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WeightBytes({} bytes{})", self.len(), if self.is_mapped() { ", huge-page mapping" } else { "" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_exactly_its_bytes_small_and_large() {
        // Sizes that share a chunk, fill one past its end, and take a mapping of their own.
        let sizes = [0usize, 1, 4095, 100_000, HUGE + 1, CHUNK / 2 - 7, CHUNK / 2 + 1, 3 * HUGE];
        let made: Vec<(Vec<u8>, WeightBytes)> = sizes
            .iter()
            .map(|&n| {
                let v: Vec<u8> = (0..n).map(|i| (i * 31 + n) as u8).collect();
                let w = WeightBytes::from(v.clone());
                (v, w)
            })
            .collect();
        // Checked after every allocation: none overwrote another.
        for (v, w) in &made {
            assert_eq!(&w[..], &v[..], "{} bytes", v.len());
            assert_eq!(w.is_mapped(), !v.is_empty(), "{} bytes", v.len());
            assert!(v.is_empty() || (w.as_ptr() as usize).is_multiple_of(ALIGN), "{} bytes: aligned", v.len());
            let c = w.clone();
            assert_eq!(&c[..], &v[..], "clone of {} bytes", v.len());
        }
    }
}
