//! DRY repetition detection (llama.cpp's `dry` sampler, itself from koboldcpp): which next tokens
//! would extend a repeated sequence, and by how long a repetition.
//!
//! With the window `w` = the last `last_n` tokens read backwards (`w[0]` the newest):
//! 1. a sequence breaker (head token + tail) found in the window at distance `i` from the end
//!    limits the repetition length to `i − tail length` (the nearest breaker wins);
//! 2. `z[k]` = the length of the longest common prefix of `w` and `w[k..]` (Z-algorithm, linear),
//!    capped at that limit: the newest `z[k]` tokens also occur ending `k` tokens earlier;
//! 3. the token that followed that earlier occurrence (`w[k − 1]`) would extend a repetition of
//!    length `z[k]`; each token keeps its longest such length `L`;
//! 4. tokens with `L >= allowed_length` (single-token breakers excepted) get
//!    `multiplier · base^(L − allowed_length)` subtracted, the exponent capped so that the power
//!    stays below f32's maximum (`⌊88.7228391 / ln base⌋` when `base > 1.000001`).

use super::ops::Adjust;
use super::DryParams;

/// The DRY edits for `history` (oldest first), sorted by token id.
pub(crate) fn dry_edits(history: &[u32], d: &DryParams) -> Vec<(u32, Adjust)> {
    if d.is_disabled() {
        return Vec::new();
    }
    let window = &history[history.len().saturating_sub(d.last_n)..];
    let n = window.len();
    if n <= d.allowed_length {
        return Vec::new();
    }
    // Newest first.
    let w: Vec<u32> = window.iter().rev().copied().collect();

    // Step 1: the nearest sequence breaker limits the repetition length.
    let mut rep_limit = n;
    for i in 0..n {
        let mut longest: Option<usize> = None;
        for br in d.sequence_breakers.iter().filter(|b| b.first() == Some(&w[i])) {
            let tail = &br[1..];
            if longest.is_none_or(|l| tail.len() > l)
                && tail.len() <= i
                && tail.iter().enumerate().all(|(off, &t)| t == w[i - off - 1])
            {
                longest = Some(tail.len());
            }
        }
        if let Some(l) = longest {
            rep_limit = i - l;
            break;
        }
    }
    if rep_limit < d.allowed_length {
        return Vec::new();
    }

    // Step 2: Z-array of the reversed window.
    let mut z = vec![0usize; n];
    let (mut lo, mut hi) = (0usize, 0usize); // the rightmost match window [lo, hi)
    for k in 1..n {
        let mut len = if k < hi { (hi - k).min(z[k - lo]) } else { 0 };
        while k + len < n && w[len] == w[k + len] {
            len += 1;
        }
        z[k] = len;
        if k + len > hi {
            lo = k;
            hi = k + len;
        }
    }

    // Step 3: longest repetition each next token would extend.
    let mut longest: Vec<(u32, usize)> = Vec::new();
    for (k, &zk) in z.iter().enumerate().skip(1) {
        let len = zk.min(rep_limit);
        if len >= d.allowed_length {
            longest.push((w[k - 1], len));
        }
    }
    longest.sort_unstable();
    longest.dedup_by(|later, earlier| {
        later.0 == earlier.0 && {
            earlier.1 = earlier.1.max(later.1);
            true
        }
    });

    // Step 4: penalties.
    // llama.cpp's literal `88.7228391f` (≈ ln f32::MAX), kept as written.
    #[allow(clippy::excessive_precision)]
    const FLOAT_MAX_LOG: f32 = 88.722_839_1;
    let max_exponent: i64 = if d.base > 1.000_001 { (FLOAT_MAX_LOG / d.base.ln()) as i64 } else { 0 };
    let is_single_breaker = |t: u32| d.sequence_breakers.iter().any(|b| b.len() == 1 && b[0] == t);
    longest
        .into_iter()
        .filter(|&(t, _)| !is_single_breaker(t))
        .map(|(t, len)| {
            let mut exp = len as i64 - d.allowed_length as i64;
            if max_exponent > 0 && exp > max_exponent {
                exp = max_exponent;
            }
            // llama.cpp: `float penalty = multiplier * std::pow(base, exp)` — computed in double.
            let penalty = (d.multiplier as f64 * (d.base as f64).powf(exp as f64)) as f32;
            (t, Adjust::Add(-penalty))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(allowed: usize, last_n: usize, breakers: Vec<Vec<u32>>) -> DryParams {
        DryParams { multiplier: 1.0, base: 1.1, allowed_length: allowed, last_n, sequence_breakers: breakers }
    }

    /// The naive definition: for each earlier position, the longest run of tokens ending there
    /// equal to the newest tokens.
    fn naive(history: &[u32], d: &DryParams) -> Vec<(u32, usize)> {
        let w: Vec<u32> = history[history.len().saturating_sub(d.last_n)..].iter().rev().copied().collect();
        let n = w.len();
        let mut out: Vec<(u32, usize)> = Vec::new();
        for k in 1..n {
            let mut len = 0;
            while k + len < n && w[len] == w[k + len] {
                len += 1;
            }
            if len >= d.allowed_length {
                match out.iter_mut().find(|e| e.0 == w[k - 1]) {
                    Some(e) => e.1 = e.1.max(len),
                    None => out.push((w[k - 1], len)),
                }
            }
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn z_algorithm_matches_naive() {
        let mut seed = 12345u64;
        for _ in 0..300 {
            let len = (seed % 40) as usize;
            let hist: Vec<u32> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((seed >> 33) % 3) as u32
                })
                .collect();
            let d = params(2, 64, vec![]);
            let got: Vec<(u32, usize)> = dry_edits(&hist, &d)
                .into_iter()
                .map(|(t, a)| match a {
                    Adjust::Add(x) => (t, (((-x) as f64).ln() / 1.1f64.ln()).round() as usize + 2),
                    other => panic!("DRY edit {other:?}"),
                })
                .collect();
            let want = if hist.len() <= 2 { vec![] } else { naive(&hist, &d) };
            assert_eq!(got, want, "history {hist:?}");
        }
    }

    #[test]
    fn example_from_the_algorithm_description() {
        // a b c c b c y a b c → c extends "a b c" (3), b extends "c" (1, below 2), y extends "b c" (2).
        let (a, b, c, y) = (0, 1, 2, 3);
        let hist = [a, b, c, c, b, c, y, a, b, c];
        let e = dry_edits(&hist, &params(2, 64, vec![]));
        let ids: Vec<u32> = e.iter().map(|x| x.0).collect();
        assert_eq!(ids, vec![c, y]);
        assert_eq!(e[0].1, Adjust::Add(-(1.1f64.powf(1.0) as f32)));
        assert_eq!(e[1].1, Adjust::Add(-1.0));
        // A breaker (y) right before the repetition limits it: the limit is 3 (a b c after y).
        let e = dry_edits(&hist, &params(2, 64, vec![vec![y]]));
        assert_eq!(e.iter().map(|x| x.0).collect::<Vec<_>>(), vec![c]);
    }
}
