//! Splitting text at control and user-defined tokens before the model's tokenizer runs.
//!
//! llama.cpp's rule: take the special tokens longest text first; for each one, cut every
//! remaining raw-text fragment at each of its occurrences, leftmost first and without overlap.
//! User-defined tokens are always cut out; control and unknown tokens only with `parse_special`.
//! A token with the LSTRIP (RSTRIP) attribute also swallows the white space to its left (right)
//! within its fragment.
//!
//! Doing that literally costs one scan of the text per special token (gemma3 has ~6,400 of them).
//! Instead we find, at every position, the longest special token that starts there (a byte trie),
//! and settle candidates in the order llama.cpp would: by token priority, then by position. A
//! candidate that overlaps text already taken falls back to the next shorter token at the same
//! position, which has a lower priority and so is settled later. The result is the same.
//!
//! HF `tokenizers` and tiktoken split differently ([`SpecialMatcher::split_leftmost`]): scanning
//! left to right, the longest token at the leftmost position where one starts (aho-corasick's
//! leftmost-longest), and LSTRIP/RSTRIP swallow Unicode white space rather than C-locale spaces.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

/// A piece of the input after special-token splitting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fragment {
    /// Raw text, as a byte range of the input.
    Text(Range<usize>),
    /// A special token cut out of the text.
    Token(u32),
}

#[derive(Debug, Clone, Copy)]
struct Terminal {
    id: u32,
    /// Settling order: longer texts first, then lower ids.
    rank: u32,
    /// Control or unknown token: only cut out with `parse_special`.
    needs_parse_special: bool,
    lstrip: bool,
    rstrip: bool,
}

#[derive(Debug, Default)]
struct Node {
    children: Vec<(u8, u32)>,
    terminal: Option<Terminal>,
}

/// A special token to register: id, text and attributes.
#[derive(Debug, Clone)]
pub(crate) struct SpecialToken<'a> {
    pub id: u32,
    pub text: &'a [u8],
    pub needs_parse_special: bool,
    pub lstrip: bool,
    pub rstrip: bool,
}

#[derive(Debug, Default)]
pub(crate) struct SpecialMatcher {
    nodes: Vec<Node>,
    /// Child of the root for each first byte (0 = none), the hot path.
    root: Vec<u32>,
    /// Text length of each rank.
    rank_len: Vec<u32>,
    /// Terminal of each rank.
    rank_terminal: Vec<Terminal>,
    any_always: bool,
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

impl SpecialMatcher {
    pub fn new(mut tokens: Vec<SpecialToken<'_>>) -> Self {
        tokens.retain(|t| !t.text.is_empty());
        tokens.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then(a.id.cmp(&b.id)));
        let mut m = SpecialMatcher {
            nodes: vec![Node::default()],
            root: vec![0; 256],
            rank_len: Vec::with_capacity(tokens.len()),
            rank_terminal: Vec::with_capacity(tokens.len()),
            any_always: false,
        };
        for t in &tokens {
            let mut node = 0usize;
            for &b in t.text {
                node = m.child_or_insert(node, b);
            }
            let rank = m.rank_len.len() as u32;
            let terminal = Terminal {
                id: t.id,
                rank,
                needs_parse_special: t.needs_parse_special,
                lstrip: t.lstrip,
                rstrip: t.rstrip,
            };
            // The same text twice: the first in settling order takes every occurrence.
            if m.nodes[node].terminal.is_none() {
                m.nodes[node].terminal = Some(terminal);
                m.any_always |= !t.needs_parse_special;
            }
            m.rank_len.push(t.text.len() as u32);
            m.rank_terminal.push(terminal);
        }
        m
    }

    fn child_or_insert(&mut self, node: usize, b: u8) -> usize {
        if node == 0 && self.root[b as usize] != 0 {
            return self.root[b as usize] as usize;
        }
        let found = self.nodes[node].children.binary_search_by_key(&b, |&(c, _)| c);
        match found {
            Ok(i) => self.nodes[node].children[i].1 as usize,
            Err(i) => {
                let new = self.nodes.len();
                self.nodes.push(Node::default());
                self.nodes[node].children.insert(i, (b, new as u32));
                if node == 0 {
                    self.root[b as usize] = new as u32;
                }
                new
            }
        }
    }

    fn child(&self, node: usize, b: u8) -> Option<usize> {
        if node == 0 {
            return match self.root[b as usize] {
                0 => None,
                n => Some(n as usize),
            };
        }
        let children = &self.nodes[node].children;
        children.binary_search_by_key(&b, |&(c, _)| c).ok().map(|i| children[i].1 as usize)
    }

    /// The longest active special token starting at `pos` whose text is shorter than `below`.
    fn longest_at(&self, text: &[u8], pos: usize, below: usize, parse_special: bool) -> Option<Terminal> {
        let mut node = 0;
        let mut best = None;
        for (len, &b) in text[pos..].iter().enumerate() {
            if len + 1 >= below {
                break;
            }
            match self.child(node, b) {
                Some(n) => node = n,
                None => break,
            }
            if let Some(t) = self.nodes[node].terminal {
                if parse_special || !t.needs_parse_special {
                    best = Some(t);
                }
            }
        }
        best
    }

    /// Split `text` into raw-text fragments and special tokens.
    pub fn split(&self, text: &[u8], parse_special: bool) -> Vec<Fragment> {
        if text.is_empty() {
            return Vec::new();
        }
        if self.rank_len.is_empty() || (!parse_special && !self.any_always) {
            return vec![Fragment::Text(0..text.len())];
        }
        // Candidates as (rank, position), settled in that order.
        let mut heap = BinaryHeap::new();
        for pos in 0..text.len() {
            if self.root[text[pos] as usize] == 0 {
                continue;
            }
            if let Some(t) = self.longest_at(text, pos, usize::MAX, parse_special) {
                heap.push(Reverse((t.rank, pos)));
            }
        }
        if heap.is_empty() {
            return vec![Fragment::Text(0..text.len())];
        }

        const FREE: u8 = 0;
        const TAKEN: u8 = 1;
        const DROPPED: u8 = 2;
        let mut state = vec![FREE; text.len()];
        let mut found: Vec<(usize, u32)> = Vec::new();
        while let Some(Reverse((rank, pos))) = heap.pop() {
            let (Some(&len), Some(&t)) = (self.rank_len.get(rank as usize), self.rank_terminal.get(rank as usize))
            else {
                continue;
            };
            let end = pos + len as usize;
            let blocked = state[pos..end].iter().position(|&s| s != FREE);
            if blocked.is_none() {
                state[pos..end].fill(TAKEN);
                found.push((pos, t.id));
                if t.lstrip {
                    let mut i = pos;
                    while i > 0 && state[i - 1] == FREE && is_c_space(text[i - 1]) {
                        i -= 1;
                        state[i] = DROPPED;
                    }
                }
                if t.rstrip {
                    let mut i = end;
                    while i < text.len() && state[i] == FREE && is_c_space(text[i]) {
                        state[i] = DROPPED;
                        i += 1;
                    }
                }
            } else if let Some(free) = blocked.filter(|&k| k > 0) {
                // Taken bytes never become free again: only a token that ends before the first
                // one can still fit here.
                if let Some(shorter) = self.longest_at(text, pos, free + 1, parse_special) {
                    heap.push(Reverse((shorter.rank, pos)));
                }
            }
        }

        found.sort_unstable_by_key(|&(pos, _)| pos);
        let mut out = Vec::with_capacity(found.len() * 2 + 1);
        let mut pos = 0;
        let mut next_token = found.iter().peekable();
        while pos < text.len() {
            match state[pos] {
                FREE => {
                    let start = pos;
                    while pos < text.len() && state[pos] == FREE {
                        pos += 1;
                    }
                    out.push(Fragment::Text(start..pos));
                }
                TAKEN => {
                    if let Some(&(_, id)) = next_token.next() {
                        out.push(Fragment::Token(id));
                    }
                    // Skip this token's bytes: up to the next token's start or a non-taken byte.
                    let next_start = next_token.peek().map_or(text.len(), |&&(p, _)| p);
                    pos += 1;
                    while pos < next_start && state[pos] == TAKEN {
                        pos += 1;
                    }
                }
                _ => pos += 1,
            }
        }
        out
    }
}

impl SpecialMatcher {
    /// Split as HF `tokenizers` and tiktoken do: scanning left to right, the longest active token
    /// starting at the leftmost position where one starts (aho-corasick leftmost-longest). A
    /// token with LSTRIP (RSTRIP) also swallows the Unicode white space to its left (right).
    pub fn split_leftmost(&self, text: &[u8], parse_special: bool) -> Vec<Fragment> {
        if text.is_empty() {
            return Vec::new();
        }
        if self.rank_len.is_empty() || (!parse_special && !self.any_always) {
            return vec![Fragment::Text(0..text.len())];
        }
        let s = std::str::from_utf8(text).unwrap_or("");
        let mut out = Vec::new();
        let mut text_start = 0;
        let mut pos = 0;
        while pos < text.len() {
            if self.root[text[pos] as usize] == 0 {
                pos += 1;
                continue;
            }
            let Some(t) = self.longest_at(text, pos, usize::MAX, parse_special) else {
                pos += 1;
                continue;
            };
            let len = self.rank_len.get(t.rank as usize).copied().unwrap_or(0) as usize;
            let mut before = pos;
            if t.lstrip {
                while let Some(c) = s.get(text_start..before).and_then(|p| p.chars().next_back()) {
                    if !c.is_whitespace() {
                        break;
                    }
                    before -= c.len_utf8();
                }
            }
            if before > text_start {
                out.push(Fragment::Text(text_start..before));
            }
            out.push(Fragment::Token(t.id));
            pos += len.max(1);
            if t.rstrip {
                while let Some(c) = s.get(pos..).and_then(|p| p.chars().next()) {
                    if !c.is_whitespace() {
                        break;
                    }
                    pos += c.len_utf8();
                }
            }
            text_start = pos;
        }
        if text_start < text.len() {
            out.push(Fragment::Text(text_start..text.len()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(id: u32, text: &str, control: bool) -> SpecialToken<'_> {
        SpecialToken { id, text: text.as_bytes(), needs_parse_special: control, lstrip: false, rstrip: false }
    }

    #[test]
    fn longer_tokens_settle_first() {
        // "bcd" is settled before "ab", so "abcd" gives a + <bcd>, not <ab> + cd.
        let m = SpecialMatcher::new(vec![tok(1, "ab", false), tok(2, "bcd", false)]);
        assert_eq!(m.split(b"abcd", false), vec![Fragment::Text(0..1), Fragment::Token(2)]);
        assert_eq!(m.split(b"ab-ab", false), vec![Fragment::Token(1), Fragment::Text(2..3), Fragment::Token(1)]);
    }

    #[test]
    fn control_tokens_need_parse_special() {
        let m = SpecialMatcher::new(vec![tok(7, "<s>", true)]);
        assert_eq!(m.split(b"x<s>y", false), vec![Fragment::Text(0..5)]);
        assert_eq!(m.split(b"x<s>y", true), vec![Fragment::Text(0..1), Fragment::Token(7), Fragment::Text(4..5)]);
        assert_eq!(m.split(b"<s><s>", true), vec![Fragment::Token(7), Fragment::Token(7)]);
    }

    #[test]
    fn fallback_to_shorter_token() {
        // "\n\n\n" with tokens "\n\n" (rank 0) and "\n" (rank 1): greedy pairs, then singles.
        let m = SpecialMatcher::new(vec![tok(1, "\n", false), tok(2, "\n\n", false)]);
        assert_eq!(m.split(b"\n\n\n", false), vec![Fragment::Token(2), Fragment::Token(1)]);
    }

    #[test]
    fn long_runs_stay_linear() {
        // Tokens for runs of 1..=31 newlines over a long run: each position is settled or
        // discarded once, not retried at every shorter length.
        let runs: Vec<String> = (1..=31).map(|n| "\n".repeat(n)).collect();
        let m = SpecialMatcher::new(runs.iter().enumerate().map(|(i, r)| tok(i as u32, r, false)).collect());
        let text = vec![b'\n'; 200_000 + 5];
        let frags = m.split(&text, false);
        assert_eq!(frags.len(), 200_000 / 31 + 1);
        assert_eq!(frags.last(), Some(&Fragment::Token(((200_005 % 31) - 1) as u32)));
    }

    #[test]
    fn leftmost_longest() {
        // Unlike llama.cpp's longest-first settling, "ab" wins at the leftmost position.
        let m = SpecialMatcher::new(vec![tok(1, "ab", false), tok(2, "bcd", false), tok(3, "abc", true)]);
        assert_eq!(m.split_leftmost(b"abcd", false), vec![Fragment::Token(1), Fragment::Text(2..4)]);
        assert_eq!(m.split_leftmost(b"abcd", true), vec![Fragment::Token(3), Fragment::Text(3..4)]);
        assert_eq!(m.split_leftmost(b"xbcd", true), vec![Fragment::Text(0..1), Fragment::Token(2)]);
        let t = SpecialToken { id: 5, text: b"<e>", needs_parse_special: false, lstrip: true, rstrip: true };
        let m = SpecialMatcher::new(vec![t]);
        assert_eq!(
            m.split_leftmost("a \u{3000}<e>\n b".as_bytes(), false),
            vec![Fragment::Text(0..1), Fragment::Token(5), Fragment::Text(10..11)]
        );
    }

    #[test]
    fn strip_attributes() {
        let t = SpecialToken { id: 5, text: b"<|e|>", needs_parse_special: false, lstrip: true, rstrip: true };
        let m = SpecialMatcher::new(vec![t]);
        assert_eq!(
            m.split(b"a  <|e|> \n b", false),
            vec![Fragment::Text(0..1), Fragment::Token(5), Fragment::Text(11..12)]
        );
    }
}
