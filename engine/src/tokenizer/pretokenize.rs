//! Pre-tokenization: splitting a text fragment into words before BPE, as llama.cpp does it.
//!
//! llama.cpp applies a list of regexes in turn; each one splits every current piece into its
//! matches and the gaps between them. The common GPT-2, Llama-3, Qwen2 and Qwen3.5 expressions
//! are implemented in llama.cpp by hand-written scanners whose behaviour we reproduce here
//! exactly ([`Step::Gpt2`], [`Step::Llama3`], ...). The remaining expressions run in llama.cpp
//! through `std::regex` on a transformed text:
//!
//! - if the expression uses a Unicode category (`\p{L}`...), every non-ASCII code point is first
//!   replaced by a stand-in for its category (white space by U+000B; number, letter,
//!   punctuation, mark, symbol by 0xD1..0xD5; anything else by 0xD0) and `\p{X}` matches the
//!   stand-in plus the ASCII members of X ([`Mode::Collapsed`]);
//! - otherwise the code points are matched as they are, except that non-ASCII white space is
//!   replaced by U+000B ([`Mode::Wide`]).
//!
//! In both modes `\s` is the C locale's set (tab, LF, VT, FF, CR, space). All the expressions we
//! need are simple shapes over one or two character classes (see [`Step`]), matched leftmost
//! first and greedily, like ECMAScript does.

use super::unicode::{self, Flags};

/// How a code point is presented to a regex-based step (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Collapsed,
    Wide,
}

const VT: u32 = 0x0B;
const STAND_IN_OTHER: u32 = 0xD0;
const STAND_IN_NUMBER: u32 = 0xD1;
const STAND_IN_LETTER: u32 = 0xD2;
const STAND_IN_PUNCT: u32 = 0xD3;
const STAND_IN_MARK: u32 = 0xD4;
const STAND_IN_SYMBOL: u32 = 0xD5;

fn present(mode: Mode, cp: u32, flags: Flags) -> u32 {
    if cp < 128 {
        return cp;
    }
    if flags.whitespace() {
        return VT;
    }
    match mode {
        Mode::Wide => cp,
        Mode::Collapsed => match flags.category() {
            unicode::cat::NUMBER => STAND_IN_NUMBER,
            unicode::cat::LETTER => STAND_IN_LETTER,
            unicode::cat::PUNCTUATION => STAND_IN_PUNCT,
            unicode::cat::MARK => STAND_IN_MARK,
            unicode::cat::SYMBOL => STAND_IN_SYMBOL,
            _ => STAND_IN_OTHER,
        },
    }
}

/// One member of a bracket expression, tested against the presented code point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Atom {
    Range(u32, u32),
    /// `\s`
    Space,
    /// `\p{N}` (collapsed mode only)
    Number,
    /// `\p{L}`
    Letter,
    /// `\p{P}`
    Punct,
}

impl Atom {
    fn matches(&self, c: u32) -> bool {
        match *self {
            Atom::Range(lo, hi) => lo <= c && c <= hi,
            Atom::Space => matches!(c, 0x09..=0x0D | 0x20),
            Atom::Number => c == STAND_IN_NUMBER || (0x30..=0x39).contains(&c),
            Atom::Letter => c == STAND_IN_LETTER || (0x41..=0x5A).contains(&c) || (0x61..=0x7A).contains(&c),
            // ASCII punctuation: ! " # % & ' ( ) * , - . / : ; ? @ [ \ ] _ { }
            Atom::Punct => {
                c == STAND_IN_PUNCT
                    || matches!(c, 0x21..=0x23 | 0x25..=0x2A | 0x2C..=0x2F | 0x3A..=0x3B | 0x3F..=0x40 | 0x5B..=0x5D)
                    || matches!(c, 0x5F | 0x7B | 0x7D)
            }
        }
    }
}

/// A bracket expression (or a single escape) and the presentation it is matched in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Class {
    mode: Mode,
    negated: bool,
    atoms: Vec<Atom>,
}

impl Class {
    pub fn collapsed(atoms: Vec<Atom>) -> Self {
        Class { mode: Mode::Collapsed, negated: false, atoms }
    }
    pub fn wide(atoms: Vec<Atom>) -> Self {
        Class { mode: Mode::Wide, negated: false, atoms }
    }
    pub fn negate(mut self) -> Self {
        self.negated = !self.negated;
        self
    }

    #[inline]
    fn matches(&self, cp: u32, flags: Flags) -> bool {
        let c = present(self.mode, cp, flags);
        self.atoms.iter().any(|a| a.matches(c)) != self.negated
    }
}

/// Literal characters and `a-b` ranges, written as in a bracket expression without escapes.
pub(crate) fn ranges(spec: &str) -> Vec<Atom> {
    let chars: Vec<char> = spec.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let lo = chars[i] as u32;
        if i + 2 < chars.len() && chars[i + 1] == '-' {
            out.push(Atom::Range(lo, chars[i + 2] as u32));
            i += 3;
        } else {
            out.push(Atom::Range(lo, lo));
            i += 1;
        }
    }
    out
}

/// One splitting step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
    Gpt2,
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    Llama3,
    /// As [`Step::Llama3`] with `\p{N}` (one digit per word).
    Qwen2,
    /// As [`Step::Qwen2`] with marks joining letters: `[\p{L}\p{M}]+`.
    Qwen35,
    /// `[^\n]+|[\n]+`
    Newlines,
    /// `C+`
    Run(Class),
    /// `C`
    Single(Class),
    /// `C{n}`
    Repeat(Class, usize),
    /// `P?C+`
    OptPrefixRun(Class, Class),
    /// `C+$`
    RunAtEnd(Class),
}

/// The text being split: code points, their flags and the byte offset of each.
struct Text {
    cps: Vec<u32>,
    flags: Vec<Flags>,
}

/// One piece `[start, end)` in code point positions; reads outside it see nothing.
struct Piece<'a> {
    t: &'a Text,
    start: usize,
    end: usize,
}

const OUT: u32 = u32::MAX;

impl Piece<'_> {
    #[inline]
    fn cp(&self, pos: usize) -> u32 {
        if pos >= self.start && pos < self.end {
            self.t.cps[pos]
        } else {
            OUT
        }
    }
    #[inline]
    fn fl(&self, pos: usize) -> Flags {
        if pos >= self.start && pos < self.end {
            self.t.flags[pos]
        } else {
            Flags::NONE
        }
    }
    #[inline]
    fn is(&self, class: &Class, pos: usize) -> bool {
        pos >= self.start && pos < self.end && class.matches(self.t.cps[pos], self.t.flags[pos])
    }
}

/// Collects word ends, dropping empty words.
struct Ends<'a> {
    out: &'a mut Vec<usize>,
    prev: usize,
}

impl Ends<'_> {
    #[inline]
    fn push(&mut self, end: usize) {
        if end > self.prev {
            self.out.push(end);
            self.prev = end;
        }
    }
}

fn is_contraction_letter(c: u32, fold: bool) -> (bool, bool) {
    // (single-letter contraction: s t m d, first letter of a two-letter one: r v l)
    let c = if fold { unicode::to_lower(c) } else { c };
    (matches!(c, 0x73 | 0x74 | 0x6D | 0x64), matches!(c, 0x72 | 0x76 | 0x6C))
}

/// `'s|'t|'re|'ve|'m|'ll|'d` at `pos`: the length of the match, 0 for none.
fn contraction(p: &Piece<'_>, pos: usize, fold: bool) -> usize {
    if p.cp(pos) != '\'' as u32 || pos + 1 >= p.end {
        return 0;
    }
    let lower = |c: u32| if fold { unicode::to_lower(c) } else { c };
    let next = p.cp(pos + 1);
    let (single, _) = is_contraction_letter(next, fold);
    if single {
        return 2;
    }
    if pos + 2 < p.end {
        let (a, b) = (lower(next), lower(p.cp(pos + 2)));
        if matches!((a, b), (0x72, 0x65) | (0x76, 0x65) | (0x6C, 0x6C)) {
            return 3;
        }
    }
    0
}

fn split_gpt2(p: &Piece<'_>, ends: &mut Ends<'_>) {
    let mut pos = p.start;
    while pos < p.end {
        let cp = p.cp(pos);
        let f = p.fl(pos);
        let n = contraction(p, pos, false);
        if n > 0 {
            pos += n;
            ends.push(pos);
            continue;
        }
        let space = cp == ' ' as u32;
        let mut f2 = if space { p.fl(pos + 1) } else { f };
        if f2.letter() {
            pos += space as usize;
            while f2.letter() {
                pos += 1;
                f2 = p.fl(pos);
            }
            ends.push(pos);
            continue;
        }
        if f2.number() {
            pos += space as usize;
            while f2.number() {
                pos += 1;
                f2 = p.fl(pos);
            }
            ends.push(pos);
            continue;
        }
        let other = |f: Flags| !(f.whitespace() || f.letter() || f.number()) && f.any();
        if other(f2) {
            pos += space as usize;
            while other(f2) {
                pos += 1;
                f2 = p.fl(pos);
            }
            ends.push(pos);
            continue;
        }
        let mut n_ws = 0;
        while p.fl(pos + n_ws).whitespace() {
            n_ws += 1;
        }
        if n_ws > 1 && p.cp(pos + n_ws) != OUT {
            pos += n_ws - 1;
        } else if n_ws > 0 {
            pos += n_ws;
        } else {
            pos += 1;
        }
        ends.push(pos);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Digits {
    UpTo3,
    One,
}

fn split_llama3_like(p: &Piece<'_>, ends: &mut Ends<'_>, digits: Digits, marks: bool) {
    let is_cr_lf = |c: u32| c == '\r' as u32 || c == '\n' as u32;
    let wordish = |f: Flags| f.letter() || (marks && f.mark());
    let mut pos = p.start;
    while pos < p.end {
        let cp = p.cp(pos);
        let f = p.fl(pos);
        let n = contraction(p, pos, true);
        if n > 0 {
            pos += n;
            ends.push(pos);
            continue;
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(is_cr_lf(cp) || f.number()) && (wordish(f) || wordish(p.fl(pos + 1))) {
            pos += 1;
            while wordish(p.fl(pos)) {
                pos += 1;
            }
            ends.push(pos);
            continue;
        }
        if f.number() {
            match digits {
                Digits::One => pos += 1,
                Digits::UpTo3 => {
                    let mut run_start = pos;
                    while p.fl(pos).number() {
                        pos += 1;
                        if pos - run_start >= 3 {
                            ends.push(pos);
                            run_start = pos;
                        }
                    }
                }
            }
            ends.push(pos);
            continue;
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*' (the entry test looks at the first code point's own flags)
        let other = |f: Flags| !(f.whitespace() || wordish(f) || f.number()) && f.any();
        let space = cp == ' ' as u32;
        let mut f2 = if space { p.fl(pos + 1) } else { f };
        if !(f2.whitespace() || wordish(f2) || f2.number()) && f.any() {
            pos += space as usize;
            while other(f2) {
                pos += 1;
                f2 = p.fl(pos);
            }
            while is_cr_lf(p.cp(pos)) {
                pos += 1;
            }
            ends.push(pos);
            continue;
        }
        let mut n_ws = 0;
        let mut after_last_cr_lf = 0;
        while p.fl(pos + n_ws).whitespace() {
            if is_cr_lf(p.cp(pos + n_ws)) {
                after_last_cr_lf = pos + n_ws + 1;
            }
            n_ws += 1;
        }
        if after_last_cr_lf > 0 {
            pos = after_last_cr_lf;
        } else if n_ws > 1 && p.cp(pos + n_ws) != OUT {
            pos += n_ws - 1;
        } else if n_ws > 0 {
            pos += n_ws;
        } else {
            pos += 1;
        }
        ends.push(pos);
    }
}

fn split_newlines(p: &Piece<'_>, ends: &mut Ends<'_>) {
    let mut pos = p.start;
    while pos < p.end {
        let nl = p.cp(pos) == '\n' as u32;
        while pos < p.end && (p.cp(pos) == '\n' as u32) == nl {
            pos += 1;
        }
        ends.push(pos);
    }
}

/// Regex-shaped steps: every match becomes a word, and so does every gap between matches.
fn split_regex(p: &Piece<'_>, step: &Step, ends: &mut Ends<'_>) {
    let mut pos = p.start;
    while pos < p.end {
        // Find the leftmost match at or after `pos`: (match start, match end).
        let found = match step {
            Step::Run(c) => find_run(p, c, pos),
            Step::Single(c) => (pos..p.end).find(|&i| p.is(c, i)).map(|i| (i, i + 1)),
            Step::Repeat(c, n) => {
                let n = *n;
                (pos..p.end).find(|&i| (i..i + n).all(|j| p.is(c, j))).map(|i| (i, i + n))
            }
            Step::OptPrefixRun(pre, c) => {
                let mut m = None;
                for i in pos..p.end {
                    if p.is(pre, i) && p.is(c, i + 1) {
                        m = Some((i, run_end(p, c, i + 1)));
                        break;
                    }
                    if p.is(c, i) {
                        m = Some((i, run_end(p, c, i)));
                        break;
                    }
                }
                m
            }
            Step::RunAtEnd(c) => {
                let mut from = pos;
                let mut m = None;
                while let Some((s, e)) = find_run(p, c, from) {
                    if e == p.end {
                        m = Some((s, e));
                        break;
                    }
                    // No start inside this run can reach the end either.
                    from = e;
                }
                m
            }
            Step::Gpt2 | Step::Llama3 | Step::Qwen2 | Step::Qwen35 | Step::Newlines => None,
        };
        match found {
            Some((s, e)) => {
                ends.push(s);
                ends.push(e);
                pos = e;
            }
            None => break,
        }
    }
    ends.push(p.end);
}

fn run_end(p: &Piece<'_>, c: &Class, mut i: usize) -> usize {
    while p.is(c, i) {
        i += 1;
    }
    i
}

fn find_run(p: &Piece<'_>, c: &Class, from: usize) -> Option<(usize, usize)> {
    (from..p.end).find(|&i| p.is(c, i)).map(|s| (s, run_end(p, c, s)))
}

/// Split `text` with `steps`, applied in order. Returns the byte ranges of the words.
pub(crate) fn split(text: &str, steps: &[Step]) -> Vec<std::ops::Range<usize>> {
    if text.is_empty() {
        return Vec::new();
    }
    let mut byte_at = Vec::with_capacity(text.len() + 1);
    let mut cps = Vec::with_capacity(text.len());
    let mut flags = Vec::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        byte_at.push(i);
        cps.push(c as u32);
        flags.push(unicode::flags(c as u32));
    }
    byte_at.push(text.len());
    let t = Text { cps, flags };

    // Word ends in code point positions; one word covering everything to start with.
    let mut bounds = vec![t.cps.len()];
    let mut next = Vec::with_capacity(t.cps.len() / 2);
    for step in steps {
        next.clear();
        let mut start = 0;
        for &end in &bounds {
            let p = Piece { t: &t, start, end };
            let mut ends = Ends { out: &mut next, prev: start };
            match step {
                Step::Gpt2 => split_gpt2(&p, &mut ends),
                Step::Llama3 => split_llama3_like(&p, &mut ends, Digits::UpTo3, false),
                Step::Qwen2 => split_llama3_like(&p, &mut ends, Digits::One, false),
                Step::Qwen35 => split_llama3_like(&p, &mut ends, Digits::One, true),
                Step::Newlines => split_newlines(&p, &mut ends),
                _ => split_regex(&p, step, &mut ends),
            }
            start = end;
        }
        std::mem::swap(&mut bounds, &mut next);
    }

    let mut words = Vec::with_capacity(bounds.len());
    let mut start = 0;
    for end in bounds {
        words.push(byte_at[start]..byte_at[end]);
        start = end;
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words<'a>(text: &'a str, steps: &[Step]) -> Vec<&'a str> {
        split(text, steps).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn gpt2_words() {
        assert_eq!(
            words("Hello world, it's  3 tests!\n\n", &[Step::Gpt2]),
            vec!["Hello", " world", ",", " it", "'s", " ", " 3", " tests", "!", "\n\n"]
        );
        assert_eq!(words("   a", &[Step::Gpt2]), vec!["  ", " a"]);
    }

    #[test]
    fn llama3_words() {
        assert_eq!(
            words("I'VE 12345 apples\n\n  ok", &[Step::Llama3]),
            vec!["I", "'VE", " ", "123", "45", " apples", "\n\n", " ", " ok"]
        );
    }

    #[test]
    fn qwen2_digits_one_by_one() {
        assert_eq!(words("a 123", &[Step::Qwen2]), vec!["a", " ", "1", "2", "3"]);
    }

    #[test]
    fn regex_shapes() {
        let digits = Step::Run(Class::collapsed(vec![Atom::Number]));
        assert_eq!(words("ab12c٣4", &[digits]), vec!["ab", "12", "c", "٣4"]);
        let three = Step::Repeat(Class::wide(ranges("0-9")), 3);
        assert_eq!(words("12345678", &[three]), vec!["123", "456", "78"]);
        let end = Step::RunAtEnd(Class::wide(vec![Atom::Space]));
        assert_eq!(words("a  b  ", &[end]), vec!["a  b", "  "]);
        let word = Step::OptPrefixRun(Class::wide(vec![Atom::Space]), Class::collapsed(vec![Atom::Letter]));
        assert_eq!(words("  hi! x", &[word]), vec![" ", " hi", "!", " x"]);
    }
}
