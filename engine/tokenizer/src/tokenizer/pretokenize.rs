//! Pre-tokenization: splitting a text fragment into words before BPE, as llama.cpp does it.
//!
//! llama.cpp applies a list of regexes in turn; each one splits every current piece into its
//! matches and the gaps between them. The common GPT-2, Llama-3, Qwen2 and Qwen3.5 expressions
//! and the newline splitter are implemented in llama.cpp by hand-written scanners, chosen by the
//! exact text of the expression; we reproduce those scanners exactly ([`Step::Gpt2`]...). Every
//! other expression runs in llama.cpp through `std::regex` on a transformed text, which
//! [`Step::Regex`] reproduces with our own ECMAScript engine:
//!
//! - if the expression uses a Unicode category (`\p{L}`...), every non-ASCII code point is first
//!   replaced by a stand-in for its category (white space by U+000B; number, letter,
//!   punctuation, mark, symbol by 0xD1..0xD5; anything else by 0xD0) and `\p{X}` matches the
//!   stand-in plus the ASCII members of X ([`Mode::Collapsed`]);
//! - otherwise the code points are matched as they are, except that non-ASCII white space is
//!   replaced by U+000B ([`Mode::Wide`]).
//!
//! In both modes `\s` is the C locale's set (tab, LF, VT, FF, CR, space).
//!
//! tiktoken's and HF `tokenizers`' expressions (tokenizer.json `Split`, `ByteLevel`'s own
//! expression, o200k's) run on real code points with real Unicode properties instead
//! ([`Mode::Unicode`], built by [`Step::unicode_regex`]): each code point is presented packed with
//! its property bits (`ucd.rs`).

use super::regex::{self, Regex};
use super::ucd;
use super::unicode::{self, Flags};

/// How a code point is presented to a regex step (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Collapsed,
    Wide,
    /// Real code points packed with their Unicode property bits (`ucd::pack`).
    Unicode,
}

const VT: u32 = 0x0B;
const STAND_IN_OTHER: u32 = 0xD0;

fn present(mode: Mode, cp: u32, flags: Flags) -> u32 {
    if mode == Mode::Unicode {
        return ucd::pack(cp);
    }
    if cp < 128 {
        return cp;
    }
    if flags.whitespace() {
        return VT;
    }
    match mode {
        Mode::Wide | Mode::Unicode => cp,
        Mode::Collapsed => match flags.category() {
            unicode::cat::NUMBER => regex::STAND_IN_NUMBER,
            unicode::cat::LETTER => regex::STAND_IN_LETTER,
            unicode::cat::PUNCTUATION => regex::STAND_IN_PUNCT,
            unicode::cat::MARK => regex::STAND_IN_MARK,
            unicode::cat::SYMBOL => regex::STAND_IN_SYMBOL,
            _ => STAND_IN_OTHER,
        },
    }
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
    /// Any other expression.
    Regex(Box<Regex>),
}

const GPT2_RE: &str = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3_RES: [&str; 2] = [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
];
const QWEN2_RE: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN35_RE: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const NEWLINES_RE: &str = "[^\\n]+|[\\n]+";

impl Step {
    /// The step llama.cpp runs for one of its expressions: a dedicated scanner where llama.cpp
    /// has one for exactly this text, else the regex engine.
    pub fn from_expression(expr: &str) -> Result<Step, String> {
        Ok(match expr {
            GPT2_RE => Step::Gpt2,
            e if LLAMA3_RES.contains(&e) => Step::Llama3,
            QWEN2_RE => Step::Qwen2,
            QWEN35_RE => Step::Qwen35,
            NEWLINES_RE => Step::Newlines,
            e => Step::Regex(Box::new(Regex::new(e)?)),
        })
    }

    /// A step for a tiktoken or HF `tokenizers` expression: full-Unicode regex semantics.
    pub fn unicode_regex(expr: &str) -> Result<Step, String> {
        Ok(Step::Regex(Box::new(Regex::unicode(expr)?)))
    }
}

/// The text being split: code points, their flags, and the presentations regex steps see.
struct Text {
    cps: Vec<u32>,
    flags: Vec<Flags>,
    collapsed: Option<Vec<u32>>,
    wide: Option<Vec<u32>>,
    unicode: Option<Vec<u32>>,
}

impl Text {
    /// Compute the presentation for `mode` (once).
    fn prepare(&mut self, mode: Mode) {
        let slot = match mode {
            Mode::Collapsed => &mut self.collapsed,
            Mode::Wide => &mut self.wide,
            Mode::Unicode => &mut self.unicode,
        };
        if slot.is_none() {
            *slot = Some(self.cps.iter().zip(&self.flags).map(|(&c, &f)| present(mode, c, f)).collect());
        }
    }

    /// The presentation for `mode` ([`Text::prepare`] first; empty otherwise).
    fn presented(&self, mode: Mode) -> &[u32] {
        match mode {
            Mode::Collapsed => self.collapsed.as_deref().unwrap_or(&[]),
            Mode::Wide => self.wide.as_deref().unwrap_or(&[]),
            Mode::Unicode => self.unicode.as_deref().unwrap_or(&[]),
        }
    }
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

/// Regex steps: every match becomes a word, and so does every gap between matches.
fn split_regex(re: &Regex, presented: &[u32], start: usize, end: usize, ends: &mut Ends<'_>) {
    let mut pos = start;
    while let Some((s, e)) = re.find(presented, start, pos, end) {
        ends.push(s);
        ends.push(e);
        pos = e;
    }
    ends.push(end);
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
    let mut t = Text { cps, flags, collapsed: None, wide: None, unicode: None };

    // Word ends in code point positions; one word covering everything to start with.
    let mut bounds = vec![t.cps.len()];
    let mut next = Vec::with_capacity(t.cps.len() / 2);
    for step in steps {
        next.clear();
        if let Step::Regex(re) = step {
            t.prepare(re.mode());
        }
        let presented: &[u32] = match step {
            Step::Regex(re) => t.presented(re.mode()),
            _ => &[],
        };
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
                Step::Regex(re) => split_regex(re, presented, start, end, &mut ends),
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
    fn regex_steps() {
        let re = |e: &str| Step::from_expression(e).unwrap();
        assert_eq!(words("ab12c٣4", &[re("\\p{N}+")]), vec!["ab", "12", "c", "٣4"]);
        assert_eq!(words("12345678", &[re("[0-9][0-9][0-9]")]), vec!["123", "456", "78"]);
        assert_eq!(words("a  b  ", &[re("\\s+$")]), vec!["a  b", "  "]);
        assert_eq!(words("  hi! x", &[re("\\s?\\p{L}+")]), vec![" ", " hi", "!", " x"]);
        assert_eq!(re(GPT2_RE), Step::Gpt2);
        assert_eq!(re(QWEN2_RE), Step::Qwen2);
        assert_eq!(re(NEWLINES_RE), Step::Newlines);
    }
}
