//! The few numpy float32 primitives gguf-py's quantizers are built from, with numpy's exact
//! semantics: NaN handling of reductions, first-index ties of `argmax`/`argmin`, the
//! float → uint8 cast, and gguf-py's `np_roundf`.

/// numpy's float32 → uint8 (or int8, reinterpreted) cast on x86-64: a truncating conversion to a
/// 32-bit integer (NaN and out-of-range values give `i32::MIN`) whose low byte is kept.
/// Quantizers only rely on the in-range part; the rest makes odd inputs reproducible.
#[inline]
pub(super) fn cast_u8(x: f32) -> u8 {
    if x.abs() < 2_147_483_648.0 {
        (x as i32) as u8
    } else {
        0 // NaN, ±inf and |x| ≥ 2^31 (whose low byte is 0 anyway)
    }
}

/// gguf-py's `np_roundf`: round half away from zero, computed as
/// `sign(x) * (floor(|x|) + floor(2 * (|x| - floor(|x|))))` in float32.
#[inline]
pub(super) fn roundf(x: f32) -> f32 {
    let a = x.abs();
    let floored = a.floor();
    let b = floored + (2.0 * (a - floored)).floor();
    sign(x) * b
}

/// `np.sign`: ±1, 0 for ±0, NaN for NaN.
#[inline]
pub(super) fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x * 0.0 // 0 for ±0 (sign irrelevant: it only meets a cast), NaN for NaN
    }
}

/// `np.where(d == 0, 0, 1 / d)`.
#[inline]
pub(super) fn inv_or_zero(d: f32) -> f32 {
    if d == 0.0 {
        0.0
    } else {
        1.0 / d
    }
}

/// `abs(x).argmax()`: index of the first largest magnitude; the first NaN wins outright.
pub(super) fn argmax_abs(x: &[f32]) -> usize {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, v) in x.iter().enumerate() {
        let a = v.abs();
        if a.is_nan() {
            return i;
        }
        if a > best_v {
            best = i;
            best_v = a;
        }
    }
    best
}

/// `x.argmin()`: index of the first smallest value; the first NaN wins outright.
pub(super) fn argmin(x: &[f32]) -> usize {
    let mut best = 0;
    let mut best_v = f32::INFINITY;
    for (i, &v) in x.iter().enumerate() {
        if v.is_nan() {
            return i;
        }
        if v < best_v || i == 0 {
            best = i;
            best_v = v;
        }
    }
    best
}

/// `x.max()` (NaN if any element is NaN). Of equal values the first is kept, which only matters
/// for ±0 mixtures (numpy's SIMD reduction does not specify which zero it returns).
pub(super) fn max(x: &[f32]) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m || v.is_nan() || m.is_nan() { pick_nan(m, v) } else { m })
}

/// `x.min()` (NaN if any element is NaN); see [`max`] about zeros.
pub(super) fn min(x: &[f32]) -> f32 {
    x.iter().fold(f32::INFINITY, |m, &v| if v < m || v.is_nan() || m.is_nan() { pick_nan(m, v) } else { m })
}

/// The NaN-propagating choice between the current reduction value `m` and a better value `v`.
#[inline]
fn pick_nan(m: f32, v: f32) -> f32 {
    if m.is_nan() {
        m
    } else {
        v
    }
}

/// `np.abs(x).max()`.
pub(super) fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, &v| {
        let a = v.abs();
        if a > m || a.is_nan() || m.is_nan() {
            pick_nan(m, a)
        } else {
            m
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundf_is_half_away_from_zero() {
        for (x, r) in [(0.5f32, 1.0f32), (1.5, 2.0), (2.5, 3.0), (-2.5, -3.0), (0.49999997, 0.0), (-0.4, 0.0)] {
            assert_eq!(roundf(x), r, "{x}");
        }
        assert!(roundf(f32::NAN).is_nan());
    }

    #[test]
    fn cast_like_numpy() {
        // Values observed from numpy 2.4 on x86-64: astype(np.uint8).
        let cases =
            [(-5.0f32, 251u8), (300.0, 44), (f32::INFINITY, 0), (f32::NAN, 0), (-0.5, 0), (1e10, 0), (255.9, 255)];
        for (x, want) in cases {
            assert_eq!(cast_u8(x), want, "{x}");
        }
        assert_eq!(cast_u8(-129.0) as i8, 127);
    }

    #[test]
    fn reductions_follow_numpy() {
        assert_eq!(argmax_abs(&[1.0, -3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax_abs(&[1.0, f32::NAN, 5.0, f32::NAN]), 1);
        assert_eq!(argmax_abs(&[0.0, 0.0]), 0);
        assert_eq!(argmin(&[3.0, 1.0, 1.0]), 1);
        assert_eq!(argmin(&[f32::INFINITY, f32::INFINITY]), 0);
        assert_eq!(argmin(&[3.0, f32::NAN, 0.0]), 1);
        assert!(max(&[1.0, f32::NAN, 2.0]).is_nan());
        assert!(min(&[f32::NAN, 1.0]).is_nan());
        assert_eq!(max(&[-1.0, -2.0]), -1.0);
        assert_eq!(min(&[-1.0, -2.0]), -2.0);
        assert_eq!(max_abs(&[-1.0, 0.5]), 1.0);
        assert!(max_abs(&[-1.0, f32::NAN]).is_nan());
    }
}
