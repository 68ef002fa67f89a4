//! The activation arena of the fast CPU backend: a tensor's buffer returns here when the tensor
//! is dropped, and the next op that needs a buffer takes the smallest free one that fits. The
//! decoder graph drops each intermediate as soon as the next op has read it, so a decode step
//! runs on the buffers the previous step left — once warm, a step allocates no activation (the
//! property a device backend needs for graph replay; tested in conformance/tests/kv_once.rs).
//!
//! Invariants: per thread (a forward runs on one thread; the thread team only fills buffers it is
//! handed); buffers keep no meaning between uses — [`take`] zeroes, [`copy_of`] overwrites,
//! [`take_for_overwrite`] leaves stale values for a caller that writes every element; the
//! free list is bounded ([`MAX_FREE`] buffers), so memory stays the working set of one forward.

use std::cell::{Cell, RefCell};

/// Free buffers kept per thread.
pub const MAX_FREE: usize = 64;

thread_local! {
    static FREE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
    static MISSES: Cell<u64> = const { Cell::new(0) };
}

/// A free buffer of capacity ≥ `n` (the smallest), emptied; or a new one (counted as a miss).
fn grab(n: usize) -> Vec<f32> {
    let mut v = grab_as_left(n);
    v.clear();
    v
}

/// [`grab`] with the buffer's contents as its last use left them.
fn grab_as_left(n: usize) -> Vec<f32> {
    let hit = FREE.with(|f| {
        let mut f = f.borrow_mut();
        let best =
            f.iter().enumerate().filter(|(_, v)| v.capacity() >= n).min_by_key(|(_, v)| v.capacity()).map(|(i, _)| i);
        best.map(|i| f.swap_remove(i))
    });
    match hit {
        Some(v) => v,
        None => {
            MISSES.with(|m| m.set(m.get() + 1));
            Vec::with_capacity(n)
        }
    }
}

/// `n` zeros.
pub fn take(n: usize) -> Vec<f32> {
    let mut v = grab(n);
    v.resize(n, 0.0);
    v
}

/// `n` values for a caller that writes every one of them (a matmul's output): a recycled buffer
/// keeps what its last use left there, and only elements past that are zeroed — no pass over
/// memory about to be written (a 128 × 4864 output is 2.5 MB, past L2; the zeroing was ~2% of
/// a Qwen2.5-0.5B-shape prefill on one thread).
pub fn take_for_overwrite(n: usize) -> Vec<f32> {
    let mut v = grab_as_left(n);
    v.truncate(n);
    v.resize(n, 0.0);
    v
}

/// A copy of `src`.
pub fn copy_of(src: &[f32]) -> Vec<f32> {
    let mut v = grab(src.len());
    v.extend_from_slice(src);
    v
}

/// `f` of every element of `src`.
pub fn map(src: &[f32], f: impl Fn(f32) -> f32) -> Vec<f32> {
    let mut v = grab(src.len());
    v.extend(src.iter().map(|&x| f(x)));
    v
}

/// `f` of every pair of `a` and `b` (same length, checked by the caller).
pub fn zip(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> Vec<f32> {
    let mut v = grab(a.len());
    v.extend(a.iter().zip(b).map(|(&x, &y)| f(x, y)));
    v
}

/// Return a buffer for reuse.
pub fn give(v: Vec<f32>) {
    if v.capacity() == 0 {
        return;
    }
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < MAX_FREE {
            f.push(v);
        }
    });
}

/// Buffers this thread had to allocate because none was free (since the thread started).
pub fn misses() -> u64 {
    MISSES.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_reused_and_comes_back_clean() {
        let mut v = take(100);
        v.iter_mut().for_each(|x| *x = 7.0);
        let p = v.as_ptr();
        give(v);
        let before = misses();
        let w = take(80);
        assert_eq!((w.as_ptr(), w.len(), misses()), (p, 80, before));
        assert!(w.iter().all(|&x| x == 0.0));
        give(w);
        let c = copy_of(&[1.0, 2.0]);
        assert_eq!((c.as_ptr(), &c[..]), (p, &[1.0, 2.0][..]));
        give(c);
        // For overwriting: the stale values stay (no zeroing pass), only a grown tail is zeroed.
        let mut s = take_for_overwrite(2);
        assert_eq!((s.as_ptr(), &s[..]), (p, &[1.0, 2.0][..]));
        s.iter_mut().for_each(|x| *x = 5.0);
        give(s);
        let s = take_for_overwrite(4);
        assert_eq!((s.as_ptr(), &s[..]), (p, &[5.0, 5.0, 0.0, 0.0][..]));
        give(s);
        let c = copy_of(&[1.0, 2.0]);
        // Too large for any free buffer: a new one, counted.
        let big = take(1000);
        assert_eq!(misses(), before + 1);
        give(big);
        give(c);
    }
}
