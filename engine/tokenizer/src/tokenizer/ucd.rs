//! Unicode character properties for the full-Unicode regex mode ([`super::pretokenize::Mode::Unicode`]):
//! general categories (L, Lu, Ll, Lt, Lm, Lo, M, N, P, S), White_Space and simple case folding,
//! taken from `regex-syntax` — the tables of Rust's `regex`, which tiktoken's (and, up to the
//! Unicode version, Oniguruma's) `\p{..}`, `\s` and `(?i)` use.
//!
//! The tables are built once (a few thousand ranges) into one run-length table of property bits, so
//! classifying a code point is one binary search. A code point travels through the regex engine
//! *packed* with its bits ([`pack`]): bits 0..21 hold the code point, bits 21..31 the properties,
//! so the matcher never looks a property up twice.
//!
//! Invariant: every code point (any `u32`, even beyond U+10FFFF) gets an answer; nothing panics.

use std::sync::OnceLock;

/// Property bits (shifted into place by [`pack`]).
pub(crate) mod bit {
    pub const LU: u32 = 1 << 0;
    pub const LL: u32 = 1 << 1;
    pub const LT: u32 = 1 << 2;
    pub const LM: u32 = 1 << 3;
    pub const LO: u32 = 1 << 4;
    pub const M: u32 = 1 << 5;
    pub const N: u32 = 1 << 6;
    pub const P: u32 = 1 << 7;
    pub const S: u32 = 1 << 8;
    pub const WS: u32 = 1 << 9;
    pub const L: u32 = LU | LL | LT | LM | LO;
}

/// Where the property bits start in a packed code point.
pub(crate) const SHIFT: u32 = 21;
/// The code point part of a packed value.
pub(crate) const CP_MASK: u32 = (1 << SHIFT) - 1;

struct Tables {
    /// `(first code point, bits)` runs, ascending; each lasts until the next entry.
    runs: Vec<(u32, u32)>,
    ascii: [u32; 128],
}

/// The ranges of one class expression, e.g. `\p{Lu}`, as regex-syntax defines it.
pub(crate) fn class_ranges(expr: &str) -> Option<Vec<(u32, u32)>> {
    use regex_syntax::hir::{Class, HirKind};
    let hir = regex_syntax::ParserBuilder::new().build().parse(expr).ok()?;
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => {
            Some(c.ranges().iter().map(|r| (r.start() as u32, r.end() as u32)).collect())
        }
        HirKind::Literal(lit) => {
            let s = std::str::from_utf8(&lit.0).ok()?;
            let c = s.chars().next()? as u32;
            Some(vec![(c, c)])
        }
        _ => None,
    }
}

fn build() -> Tables {
    let props: [(&str, u32); 10] = [
        ("\\p{Lu}", bit::LU),
        ("\\p{Ll}", bit::LL),
        ("\\p{Lt}", bit::LT),
        ("\\p{Lm}", bit::LM),
        ("\\p{Lo}", bit::LO),
        ("\\p{M}", bit::M),
        ("\\p{N}", bit::N),
        ("\\p{P}", bit::P),
        ("\\p{S}", bit::S),
        ("\\s", bit::WS),
    ];
    // Boundaries where some property starts or stops, then the bits of each segment.
    let mut edges: Vec<(u32, u32, bool)> = Vec::new();
    for (expr, b) in props {
        for (lo, hi) in class_ranges(expr).unwrap_or_default() {
            edges.push((lo, b, true));
            edges.push((hi + 1, b, false));
        }
    }
    edges.sort_unstable_by_key(|&(at, _, _)| at);
    let mut runs: Vec<(u32, u32)> = vec![(0, 0)];
    let mut count = [0u32; 10];
    let mut i = 0;
    while i < edges.len() {
        let at = edges[i].0;
        while i < edges.len() && edges[i].0 == at {
            let (_, b, start) = edges[i];
            let k = b.trailing_zeros() as usize;
            if start {
                count[k] += 1;
            } else {
                count[k] = count[k].saturating_sub(1);
            }
            i += 1;
        }
        let bits = count.iter().enumerate().filter(|(_, &c)| c > 0).fold(0, |acc, (k, _)| acc | (1 << k));
        if runs.last().is_some_and(|&(_, b)| b == bits) {
            continue;
        }
        if runs.last().is_some_and(|&(s, _)| s == at) {
            runs.pop();
        }
        runs.push((at, bits));
    }
    let mut ascii = [0u32; 128];
    for (cp, slot) in ascii.iter_mut().enumerate() {
        *slot = lookup(&runs, cp as u32);
    }
    Tables { runs, ascii }
}

fn lookup(runs: &[(u32, u32)], cp: u32) -> u32 {
    let i = runs.partition_point(|&(start, _)| start <= cp);
    runs.get(i.wrapping_sub(1)).map_or(0, |&(_, b)| b)
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(build)
}

/// The property bits of a code point.
#[inline]
pub(crate) fn props(cp: u32) -> u32 {
    let t = tables();
    match t.ascii.get(cp as usize) {
        Some(&b) => b,
        None => lookup(&t.runs, cp),
    }
}

/// A code point with its property bits above it (see the module docs).
#[inline]
pub(crate) fn pack(cp: u32) -> u32 {
    (cp & CP_MASK) | (props(cp) << SHIFT)
}

/// The code points equal to `c` under simple case folding (`(?i)` in Rust's regex), as ranges.
pub(crate) fn fold_class(c: char) -> Vec<(u32, u32)> {
    let mut buf = [0u8; 4];
    let lit = regex_syntax::escape(c.encode_utf8(&mut buf));
    class_ranges(&format!("(?i:{lit})")).unwrap_or_else(|| vec![(c as u32, c as u32)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        assert_eq!(props('A' as u32), bit::LU);
        assert_eq!(props('a' as u32), bit::LL);
        assert_eq!(props('ǅ' as u32), bit::LT);
        assert_eq!(props('ʰ' as u32), bit::LM);
        assert_eq!(props('中' as u32), bit::LO);
        assert_eq!(props(0x301), bit::M);
        assert_eq!(props('7' as u32), bit::N);
        assert_eq!(props('!' as u32), bit::P);
        assert_eq!(props('$' as u32), bit::S);
        assert_eq!(props(' ' as u32), bit::WS);
        assert_eq!(props(0x3000), bit::WS);
        assert_eq!(props(0x200B), 0);
        assert_eq!(props(0x110000), 0);
        assert_eq!(pack('a' as u32) & CP_MASK, 'a' as u32);
        let s = fold_class('s');
        assert!(s.iter().any(|&(lo, hi)| lo <= 0x17F && 0x17F <= hi), "{s:?}");
    }
}
