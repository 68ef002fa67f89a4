//! The candidate list the sampler stages transform, as llama.cpp's `llama_token_data_array`:
//! `(id, logit, p)` triples plus a `sorted` flag (descending logit). Stages keep, drop, reorder or
//! re-weight candidates; `p` holds whatever the last stage that computed probabilities left there.
//!
//! Ranking: candidates are ordered by logit, descending, ties broken by ascending token id
//! ([`rank`]), a total order (`-0.0` ranks as `0.0`). Every sort and partial selection uses it, so
//! results do not depend on the sort algorithm, and "first index on ties" means "lowest id".

use std::cmp::Ordering;

use super::SamplerError;

/// One candidate token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub id: u32,
    pub logit: f32,
    /// Probability as last computed by a stage (softmax over the candidates at that time).
    pub p: f32,
}

/// The candidate list. `sorted` = descending by [`rank`]; `identity` = `items[i].id == i` for
/// every `i` (a whole vocabulary in id order, as built from a logit vector), which lets sparse
/// edits index directly.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidates {
    items: Vec<Candidate>,
    sorted: bool,
    identity: bool,
}

/// The candidates' total order: higher logit first; equal logits by ascending id.
pub fn rank(a: &Candidate, b: &Candidate) -> Ordering {
    // `+ 0.0` maps -0.0 to +0.0 so that IEEE-equal logits tie (and fall back to the id).
    (b.logit + 0.0).total_cmp(&(a.logit + 0.0)).then_with(|| a.id.cmp(&b.id))
}

impl Candidates {
    /// A whole vocabulary in id order from a logit vector (`p` = 0).
    pub fn from_logits(logits: &[f32]) -> Self {
        let items = logits.iter().enumerate().map(|(i, &logit)| Candidate { id: i as u32, logit, p: 0.0 }).collect();
        Candidates { items, sorted: false, identity: true }
    }

    /// [`Candidates::from_logits`] reusing an allocation (see [`Candidates::into_items`]).
    pub fn from_logits_in(mut buf: Vec<Candidate>, logits: &[f32]) -> Self {
        buf.clear();
        buf.extend(logits.iter().enumerate().map(|(i, &logit)| Candidate { id: i as u32, logit, p: 0.0 }));
        Candidates { items: buf, sorted: false, identity: true }
    }

    /// The list, giving back its allocation.
    pub fn into_items(self) -> Vec<Candidate> {
        self.items
    }

    /// Candidates as given, in this order, marked unsorted (as llama.cpp's test harness builds them).
    pub fn from_items(items: Vec<Candidate>) -> Self {
        let identity = items.iter().enumerate().all(|(i, c)| c.id as usize == i);
        Candidates { items, sorted: false, identity }
    }

    pub fn items(&self) -> &[Candidate] {
        &self.items
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the list is known to be in [`rank`] order.
    pub fn is_sorted(&self) -> bool {
        self.sorted
    }

    /// The probabilities in list order.
    pub fn probs(&self) -> Vec<f32> {
        self.items.iter().map(|c| c.p).collect()
    }

    /// The ids in list order.
    pub fn ids(&self) -> Vec<u32> {
        self.items.iter().map(|c| c.id).collect()
    }

    pub(crate) fn items_mut(&mut self) -> &mut [Candidate] {
        &mut self.items
    }

    pub(crate) fn is_identity(&self) -> bool {
        self.identity
    }

    /// Logits changed without changing their order (a monotone map such as division by a positive
    /// temperature keeps `sorted`; anything else must call [`Candidates::mark_unsorted`]).
    pub(crate) fn mark_unsorted(&mut self) {
        self.sorted = false;
    }

    /// Sort everything by [`rank`].
    pub(crate) fn sort_all(&mut self) {
        if !self.sorted {
            self.items.sort_unstable_by(rank);
            self.sorted = true;
            self.identity = false;
        }
    }

    /// Make the first `n` items the top `n` in rank order (the rest follow, unordered); `n` is
    /// clamped to the length. Does not change `sorted` unless everything ends up sorted.
    pub(crate) fn sort_prefix(&mut self, n: usize) {
        if self.sorted {
            return;
        }
        let n = n.min(self.items.len());
        if n == 0 {
            return;
        }
        self.identity = false;
        if n < self.items.len() {
            self.items.select_nth_unstable_by(n - 1, rank);
        }
        self.items[..n].sort_unstable_by(rank);
        if n + 1 >= self.items.len() {
            self.sorted = true;
        }
    }

    /// Grow a sorted prefix: `items[..from]` is sorted and outranks the rest; afterwards
    /// `items[..to]` is (a partial selection on the tail, then a sort of the new part).
    pub(crate) fn extend_sorted_prefix(&mut self, from: usize, to: usize) {
        if self.sorted {
            return;
        }
        let len = self.items.len();
        let (from, to) = (from.min(len), to.min(len));
        if to <= from {
            return;
        }
        let tail = &mut self.items[from..];
        if to < len {
            tail.select_nth_unstable_by(to - from - 1, rank);
        }
        tail[..to - from].sort_unstable_by(rank);
        self.identity = false;
        if to + 1 >= len {
            self.sorted = true;
        }
    }

    /// Move the items for which `in_prefix` holds to the front and sort them, when the caller knows
    /// that each of them outranks every other item. Returns their count, the sorted prefix length.
    pub(crate) fn partition_sorted_prefix(&mut self, in_prefix: impl Fn(&Candidate) -> bool) -> usize {
        if self.sorted {
            return self.items.len();
        }
        let mut j = 0;
        for i in 0..self.items.len() {
            if in_prefix(&self.items[i]) {
                self.items.swap(i, j);
                j += 1;
            }
        }
        self.items[..j].sort_unstable_by(rank);
        self.identity = false;
        if j + 1 >= self.items.len() {
            self.sorted = true;
        }
        j
    }

    /// Keep the top `k` items in rank order (`k` clamped to the length): a partial selection, not a
    /// full sort. The result is sorted.
    pub(crate) fn select_top(&mut self, k: usize) {
        self.sort_prefix(k);
        self.truncate(k);
        self.sorted = true;
    }

    /// Keep the first `n` items, which the caller has put in rank order: the result is sorted.
    pub(crate) fn truncate_sorted(&mut self, n: usize) {
        self.truncate(n);
        self.sorted = true;
        self.identity = false;
    }

    /// Keep the first `n` items (a sorted list stays sorted).
    pub(crate) fn truncate(&mut self, n: usize) {
        if n < self.items.len() {
            self.items.truncate(n);
            self.identity = false;
        }
    }

    /// Drop the first `n` items (a sorted list stays sorted).
    pub(crate) fn drop_front(&mut self, n: usize) {
        let n = n.min(self.items.len());
        if n > 0 {
            self.items.drain(..n);
            self.identity = false;
        }
    }

    /// Keep the items for which `keep` is true, in order.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&Candidate) -> bool) {
        let before = self.items.len();
        self.items.retain(keep);
        if self.items.len() != before {
            self.identity = false;
        }
    }

    /// Replace the list (its order is arbitrary: unsorted).
    pub(crate) fn replace_unsorted(&mut self, items: Vec<Candidate>) {
        self.items = items;
        self.sorted = false;
        self.identity = false;
    }

    /// Set directly from parts (sorted as stated by the caller).
    pub(crate) fn from_sorted_items(items: Vec<Candidate>) -> Self {
        Candidates { items, sorted: true, identity: false }
    }
}

/// Why a logit is unusable: NaN or +inf (the caller names where it was found).
pub(crate) fn is_bad_logit(x: f32) -> bool {
    x.is_nan() || x == f32::INFINITY
}

/// Over a block of logits: how many are usable (finite or -inf: `x < +inf` is false for NaN and
/// +inf) and how many lie above `thr`. Integer sums of comparisons, so that the loop vectorises.
#[inline(always)]
fn block_counts(block: &[f32], thr: f32) -> (u32, u32) {
    let (mut ok, mut above) = (0u32, 0u32);
    for &x in block {
        ok += (x < f32::INFINITY) as u32;
        above += (x > thr) as u32;
    }
    (ok, above)
}

const BLOCK: usize = 64;

fn first_bad_logit(logits: &[f32]) -> SamplerError {
    match logits.iter().enumerate().find(|(_, &x)| is_bad_logit(x)) {
        Some((index, &value)) => SamplerError::NonFiniteLogit { index, value },
        None => SamplerError::NonFiniteLogit { index: usize::MAX, value: f32::NAN },
    }
}

/// Run `$imp(args)` compiled for AVX2 when the CPU has it (x86-64), else the baseline build. The
/// two builds perform the same IEEE operations in the same order (Rust never contracts to FMA),
/// so results are bitwise identical; only the vector width differs.
macro_rules! dispatch_avx2 {
    ($avx2:ident, $imp:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2")]
            unsafe fn $avx2($($arg: $ty),*) -> $ret {
                $imp($($arg),*)
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of the
                // target-feature function; its body is safe code.
                return unsafe { $avx2($($arg),*) };
            }
        }
        $imp($($arg),*)
    }};
}
pub(crate) use dispatch_avx2;

/// Check a logit vector: every entry finite or -inf (a masked token), at least one finite.
pub(crate) fn validate_logits(logits: &[f32]) -> Result<(), SamplerError> {
    dispatch_avx2!(validate_avx2, validate_impl, (logits: &[f32]) -> Result<(), SamplerError>)
}

#[inline(always)]
fn validate_impl(logits: &[f32]) -> Result<(), SamplerError> {
    if logits.is_empty() {
        return Err(SamplerError::EmptyCandidates);
    }
    let (mut ok, mut finite) = (0usize, 0usize);
    for block in logits.chunks(BLOCK) {
        let (o, f) = block_counts(block, f32::NEG_INFINITY);
        ok += o as usize;
        finite += f as usize;
    }
    if ok != logits.len() {
        return Err(first_bad_logit(logits));
    }
    if finite == 0 {
        return Err(SamplerError::NoFiniteLogit { n: logits.len() });
    }
    Ok(())
}

/// The top `m` of `logits` (whole vocabulary, id = index) in [`rank`] order, validating the vector
/// in the same pass (as [`validate_logits`]), without building the whole candidate list: a buffer
/// of at most `2m` entries and a threshold (the m-th best logit kept so far). Scanning in id order
/// makes `logit > threshold` the exact admission test: a later token with a logit equal to the
/// threshold has a larger id, so it ranks below all of them. A block with no entry above the
/// threshold costs one vectorised count.
pub(crate) fn top_m_checked(logits: &[f32], m: usize) -> Result<Vec<Candidate>, SamplerError> {
    dispatch_avx2!(top_m_avx2, top_m_impl, (logits: &[f32], m: usize) -> Result<Vec<Candidate>, SamplerError>)
}

#[inline(always)]
fn top_m_impl(logits: &[f32], m: usize) -> Result<Vec<Candidate>, SamplerError> {
    let n = logits.len();
    if n == 0 {
        return Err(SamplerError::EmptyCandidates);
    }
    let want = m.min(n);
    let m = want.max(1); // the best entry tells whether any is finite
    let cap = (2 * m).min(n);
    // The buffer holds rank keys (one u64 compare instead of the float-then-id comparator).
    let mut buf: Vec<u64> = Vec::with_capacity(cap + 1);
    buf.extend(logits[..cap].iter().enumerate().map(|(i, &x)| rank_key(i as u32, x)));
    let compact = |buf: &mut Vec<u64>| -> f32 {
        if buf.len() > m {
            buf.select_nth_unstable_by(m - 1, |a, b| b.cmp(a));
            buf.truncate(m);
        }
        // The m-th best logit kept so far (from the smallest key). NaN never passes `x > thr`; a
        // NaN kept in the buffer fails the validation below.
        let worst = buf.iter().copied().min().unwrap_or(u64::MAX);
        logits[key_id(worst) as usize % n] + 0.0
    };
    let mut thr = compact(&mut buf);
    let mut ok = 0usize;
    for block in logits[..cap].chunks(BLOCK) {
        ok += block_counts(block, f32::INFINITY).0 as usize;
    }
    let mut base = cap;
    for block in logits[cap..].chunks(BLOCK) {
        let (o, above) = block_counts(block, thr);
        ok += o as usize;
        if above > 0 {
            for (j, &x) in block.iter().enumerate() {
                if x > thr {
                    buf.push(rank_key((base + j) as u32, x));
                    if buf.len() >= 2 * m {
                        thr = compact(&mut buf);
                    }
                }
            }
        }
        base += block.len();
    }
    if ok != n {
        return Err(first_bad_logit(logits));
    }
    if buf.len() > m {
        buf.select_nth_unstable_by(m - 1, |a, b| b.cmp(a));
        buf.truncate(m);
    }
    buf.sort_unstable_by(|a, b| b.cmp(a));
    let top: Vec<Candidate> = buf
        .iter()
        .take(want)
        .map(|&k| {
            let id = key_id(k);
            Candidate { id, logit: logits[id as usize], p: 0.0 }
        })
        .collect();
    // No NaN/+inf anywhere, so the best entry is the maximum: -inf means every entry is.
    if buf.first().is_none_or(|&k| logits[key_id(k) as usize] == f32::NEG_INFINITY) {
        return Err(SamplerError::NoFiniteLogit { n });
    }
    Ok(top)
}

/// A u64 whose order is [`rank`]'s, reversed (a larger key ranks first): the logit's bits made
/// monotone (after `-0.0 → 0.0`) in the high half, the complemented id in the low half.
#[inline(always)]
fn rank_key(id: u32, logit: f32) -> u64 {
    let b = (logit + 0.0).to_bits();
    let ord = if b & 0x8000_0000 != 0 { !b } else { b | 0x8000_0000 };
    ((ord as u64) << 32) | (!id) as u64
}

#[inline(always)]
fn key_id(key: u64) -> u32 {
    !(key as u32)
}

/// llama.cpp's softmax over the candidates (`llama_sampler_softmax_impl`): optionally sort, then
/// `p = expf(logit - max) / Σ` with the sum accumulated in f32 in list order; returns `max`. Errors, naming
/// `stage`, when the largest logit is NaN or +inf, when every logit is -inf, or when the list is
/// empty.
pub(crate) fn softmax(c: &mut Candidates, sort: bool, stage: &'static str) -> Result<f32, SamplerError> {
    if c.is_empty() {
        return Err(SamplerError::EmptyCandidates);
    }
    if sort {
        c.sort_all();
    }
    let max = max_logit(c, stage)?;
    let mut sum = 0.0f32;
    for it in c.items_mut() {
        let p = (it.logit - max).exp();
        it.p = p;
        sum += p;
    }
    if !sum.is_finite() {
        return Err(non_finite_after(c, stage));
    }
    for it in c.items_mut() {
        it.p /= sum;
    }
    Ok(max)
}

/// The largest logit (the first one if sorted), checked: NaN/+inf anywhere → error; all -inf →
/// [`SamplerError::NoFiniteLogit`].
pub(crate) fn max_logit(c: &Candidates, stage: &'static str) -> Result<f32, SamplerError> {
    let items = c.items();
    let Some(first) = items.first() else {
        return Err(SamplerError::EmptyCandidates);
    };
    let max = if c.is_sorted() {
        first.logit
    } else {
        items.iter().fold(f32::NEG_INFINITY, |m, x| if x.logit > m { x.logit } else { m })
    };
    if is_bad_logit(max) || items.iter().any(|x| x.logit.is_nan()) {
        return Err(non_finite_after(c, stage));
    }
    if max == f32::NEG_INFINITY {
        return Err(SamplerError::NoFiniteLogit { n: items.len() });
    }
    Ok(max)
}

pub(crate) fn non_finite_after(c: &Candidates, stage: &'static str) -> SamplerError {
    match c.items().iter().find(|x| is_bad_logit(x.logit)) {
        Some(x) => SamplerError::NonFiniteAfter { stage, token: x.id, value: x.logit },
        None => SamplerError::NonFiniteAfter { stage, token: u32::MAX, value: f32::NAN },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_top(logits: &[f32], m: usize) -> Vec<(u32, f32)> {
        let mut all = Candidates::from_logits(logits);
        all.sort_all();
        all.items().iter().take(m).map(|c| (c.id, c.logit)).collect()
    }

    #[test]
    fn top_m_matches_full_sort_with_ties_and_masks() {
        let mut logits: Vec<f32> = (0..5000).map(|i| ((i * 7919) % 613) as f32 * 0.01 - 3.0).collect();
        logits[17] = f32::NEG_INFINITY;
        logits[4000] = -0.0;
        logits[4001] = 0.0;
        for m in [1, 2, 3, 40, 613, 1000, 4999, 5000, 6000] {
            let got: Vec<(u32, f32)> = top_m_checked(&logits, m).unwrap().iter().map(|c| (c.id, c.logit)).collect();
            assert_eq!(got, naive_top(&logits, m), "m = {m}");
        }
        let mut masked = vec![f32::NEG_INFINITY; 100];
        masked[50] = 0.0;
        let got: Vec<u32> = top_m_checked(&masked, 10).unwrap().iter().map(|c| c.id).collect();
        assert_eq!(got, [50, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn validate_rejects_nan_inf_and_all_masked() {
        assert!(validate_logits(&[0.0, -1.0, f32::NEG_INFINITY]).is_ok());
        let mut v = vec![0.0f32; 300];
        v[200] = f32::NAN;
        assert!(matches!(validate_logits(&v), Err(SamplerError::NonFiniteLogit { index: 200, .. })));
        v[200] = f32::INFINITY;
        assert!(matches!(validate_logits(&v), Err(SamplerError::NonFiniteLogit { index: 200, .. })));
        assert!(matches!(validate_logits(&[f32::NEG_INFINITY; 3]), Err(SamplerError::NoFiniteLogit { n: 3 })));
        assert!(matches!(validate_logits(&[]), Err(SamplerError::EmptyCandidates)));
        // The selecting scan validates too, wherever the bad value sits (head or scanned part).
        for at in [0, 5, 150, 299] {
            let mut v: Vec<f32> = (0..300).map(|i| i as f32).collect();
            v[at] = f32::NAN;
            assert!(matches!(top_m_checked(&v, 40), Err(SamplerError::NonFiniteLogit { index, .. }) if index == at));
            v[at] = f32::INFINITY;
            assert!(matches!(top_m_checked(&v, 40), Err(SamplerError::NonFiniteLogit { index, .. }) if index == at));
        }
        assert!(matches!(top_m_checked(&[f32::NEG_INFINITY; 300], 4), Err(SamplerError::NoFiniteLogit { n: 300 })));
        assert!(matches!(top_m_checked(&[], 4), Err(SamplerError::EmptyCandidates)));
        assert_eq!(top_m_checked(&[1.0, 2.0], 0).unwrap(), vec![]);
    }

    #[test]
    fn rank_key_orders_as_rank() {
        let vals = [f32::NEG_INFINITY, -3.5, -1e-30, -0.0, 0.0, 1e-30, 2.0, 7.25, f32::MAX];
        let mut all = Vec::new();
        for (i, &x) in vals.iter().enumerate() {
            for id in [0u32, 1, 7, u32::MAX - 1] {
                all.push(Candidate { id: id.wrapping_add(i as u32), logit: x, p: 0.0 });
            }
        }
        for a in &all {
            for b in &all {
                assert_eq!(rank_key(b.id, b.logit).cmp(&rank_key(a.id, a.logit)), rank(a, b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn rank_ties_by_id_and_signed_zero() {
        let a = Candidate { id: 3, logit: 0.0, p: 0.0 };
        let b = Candidate { id: 1, logit: -0.0, p: 0.0 };
        assert_eq!(rank(&b, &a), Ordering::Less);
        let c = Candidate { id: 0, logit: 1.0, p: 0.0 };
        assert_eq!(rank(&c, &b), Ordering::Less);
    }
}
