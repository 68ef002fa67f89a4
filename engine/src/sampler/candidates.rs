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

    /// Sort the tail after an already sorted prefix of `n` items that outrank it, making the whole
    /// list sorted.
    pub(crate) fn sort_tail(&mut self, n: usize) {
        if self.sorted {
            return;
        }
        let n = n.min(self.items.len());
        self.items[n..].sort_unstable_by(rank);
        self.sorted = true;
        self.identity = false;
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

/// Check a logit vector: every entry finite or -inf (a masked token), at least one finite.
/// Written as boolean reductions over fixed-size chunks so that it vectorises.
pub(crate) fn validate_logits(logits: &[f32]) -> Result<(), SamplerError> {
    const CHUNK: usize = 64;
    let mut bad = false;
    let mut any_finite = false;
    for chunk in logits.chunks(CHUNK) {
        let mut b = false;
        let mut f = false;
        for &x in chunk {
            b |= x.is_nan() | (x == f32::INFINITY);
            f |= x > f32::NEG_INFINITY;
        }
        bad |= b;
        any_finite |= f;
        if bad {
            break;
        }
    }
    if bad {
        if let Some((index, &value)) = logits.iter().enumerate().find(|(_, &x)| is_bad_logit(x)) {
            return Err(SamplerError::NonFiniteLogit { index, value });
        }
    }
    if logits.is_empty() {
        return Err(SamplerError::EmptyCandidates);
    }
    if !any_finite {
        return Err(SamplerError::NoFiniteLogit { n: logits.len() });
    }
    Ok(())
}

/// The top `m` of `logits` (whole vocabulary, id = index) in [`rank`] order, without building the
/// whole candidate list: a buffer of at most `2m` entries and a threshold (the m-th best logit
/// kept so far). Scanning in id order makes `logit > threshold` the exact admission test: a later
/// token with a logit equal to the threshold has a larger id, so it ranks below all of them.
/// Chunks whose entries are all `<= threshold` are skipped by a vectorisable comparison.
pub(crate) fn top_m_of_logits(logits: &[f32], m: usize) -> Vec<Candidate> {
    let n = logits.len();
    let m = m.min(n);
    if m == 0 {
        return Vec::new();
    }
    let cap = (2 * m).min(n);
    let mut buf: Vec<Candidate> = Vec::with_capacity(cap + 1);
    buf.extend(logits[..cap].iter().enumerate().map(|(i, &logit)| Candidate { id: i as u32, logit, p: 0.0 }));
    let compact = |buf: &mut Vec<Candidate>| -> f32 {
        if buf.len() > m {
            buf.select_nth_unstable_by(m - 1, rank);
            buf.truncate(m);
        }
        // The m-th best kept so far (the minimum in rank order of the buffer).
        buf.iter().map(|c| c.logit + 0.0).fold(f32::INFINITY, |a, b| if b < a { b } else { a })
    };
    let mut thr = compact(&mut buf);
    const CHUNK: usize = 32;
    let mut base = cap;
    for chunk in logits[cap..].chunks(CHUNK) {
        let mut any = false;
        for &x in chunk {
            any |= x > thr;
        }
        if any {
            for (j, &x) in chunk.iter().enumerate() {
                if x > thr {
                    buf.push(Candidate { id: (base + j) as u32, logit: x, p: 0.0 });
                    if buf.len() >= 2 * m {
                        thr = compact(&mut buf);
                    }
                }
            }
        }
        base += chunk.len();
    }
    if buf.len() > m {
        buf.select_nth_unstable_by(m - 1, rank);
        buf.truncate(m);
    }
    buf.sort_unstable_by(rank);
    buf
}

/// llama.cpp's softmax over the candidates (`llama_sampler_softmax_impl`): optionally sort, then
/// `p = expf(logit - max) / Σ` with the sum accumulated in f32 in list order. Errors, naming
/// `stage`, when the largest logit is NaN or +inf, when every logit is -inf, or when the list is
/// empty.
pub(crate) fn softmax(c: &mut Candidates, sort: bool, stage: &'static str) -> Result<(), SamplerError> {
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
    Ok(())
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
            let got: Vec<(u32, f32)> = top_m_of_logits(&logits, m).iter().map(|c| (c.id, c.logit)).collect();
            assert_eq!(got, naive_top(&logits, m), "m = {m}");
        }
        let masked = vec![f32::NEG_INFINITY; 100];
        let got: Vec<u32> = top_m_of_logits(&masked, 10).iter().map(|c| c.id).collect();
        assert_eq!(got, (0..10).collect::<Vec<u32>>());
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
