//! Byte-pair encoding of one pre-tokenized word, by merge rank (llama.cpp's BPE session).
//!
//! A word starts as one symbol per character; the adjacent pair with the lowest merge rank (the
//! leftmost among equal ranks) is merged until no listed pair remains. Each final symbol becomes
//! the token with that text; a symbol that is not a token falls back to byte tokens.
//!
//! tiktoken encodings have no merge list: a pair may merge when its concatenation is a ranked
//! token, and its rank is that token's id. [`Merges::by_concatenation`] tabulates that relation
//! (every split of a ranked token into two ranked tokens); the procedure is otherwise the same
//! (lowest rank first, leftmost among equals), which is exactly tiktoken's `byte_pair_merge`.
//!
//! Strings are interned: every token text keeps its id, and merge halves or results that are not
//! tokens get ids above the vocabulary, so the merge table is keyed by integer pairs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::hash::{new_map, FastMap};
use super::vocab::Vocab;

/// No interned string: a character that no merge mentions.
const NONE: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct Merges {
    /// (left, right) → (rank, merged string id).
    pairs: FastMap<(u32, u32), (u32, u32)>,
    /// Interned strings that are not token texts, numbered from the vocabulary size.
    extra: FastMap<Box<str>, u32>,
    n_vocab: u32,
}

impl Merges {
    /// Build from the `tokenizer.ggml.merges` strings ("left right"; the first space after the
    /// first byte separates the halves). The first occurrence of a pair keeps its rank.
    pub fn new<'a>(vocab: &Vocab, merges: impl IntoIterator<Item = &'a str>) -> Self {
        Self::from_pairs(
            vocab,
            merges.into_iter().filter_map(|line| {
                let split = line.bytes().skip(1).position(|b| b == b' ').map(|i| i + 1)?;
                Some((&line[..split], &line[split + 1..]))
            }),
        )
    }

    /// Build from (left, right) pairs in rank order (tokenizer.json's merges, either form).
    pub fn from_pairs<'a>(vocab: &Vocab, merges: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut m = Merges { pairs: new_map(0), extra: new_map(0), n_vocab: vocab.len() as u32 };
        let mut joined = String::new();
        for (rank, (left, right)) in merges.into_iter().enumerate() {
            if left.is_empty() || right.is_empty() {
                continue;
            }
            let l = m.intern(vocab, left);
            let r = m.intern(vocab, right);
            joined.clear();
            joined.push_str(left);
            joined.push_str(right);
            let merged = m.intern(vocab, &joined);
            m.pairs.entry((l, r)).or_insert((rank as u32, merged));
        }
        m
    }

    /// tiktoken: a pair merges when its concatenation is a ranked token (id below `n_ranked`),
    /// with that id as its rank. Tabulated once: every split of a ranked token into two ranked
    /// tokens is a pair (so encoding looks up integer pairs instead of hashing text).
    pub fn by_concatenation(vocab: &Vocab, n_ranked: u32) -> Self {
        let mut m = Merges { pairs: new_map(n_ranked as usize * 2), extra: new_map(0), n_vocab: vocab.len() as u32 };
        let ranked = |s: &str| vocab.get(s).filter(|&id| id < n_ranked);
        for id in 0..n_ranked {
            let Some(text) = vocab.text(id) else { continue };
            for (i, _) in text.char_indices().skip(1) {
                if let (Some(l), Some(r)) = (ranked(&text[..i]), ranked(&text[i..])) {
                    m.pairs.entry((l, r)).or_insert((id, id));
                }
            }
        }
        m
    }

    fn intern(&mut self, vocab: &Vocab, s: &str) -> u32 {
        if let Some(id) = vocab.get(s) {
            return id;
        }
        let next = self.n_vocab.saturating_add(self.extra.len() as u32);
        *self.extra.entry(s.into()).or_insert(next)
    }

    #[inline]
    fn lookup(&self, vocab: &Vocab, s: &str) -> u32 {
        vocab.get(s).or_else(|| self.extra.get(s).copied()).unwrap_or(NONE)
    }
}

#[derive(Debug, Clone, Copy)]
struct Symbol {
    start: u32,
    end: u32,
    sid: u32,
    prev: u32,
    next: u32,
}

const NIL: u32 = u32::MAX;

/// Reusable buffers for [`encode_word`].
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    symbols: Vec<Symbol>,
    heap: BinaryHeap<Reverse<(u32, u32, u32, u32)>>,
}

/// Merge `word` (already in the vocabulary's alphabet) into symbols and report each final symbol
/// through `emit` as `(string id, byte range)`; `string id < n_vocab` means it is that token.
pub(crate) fn encode_word(
    merges: &Merges,
    vocab: &Vocab,
    word: &str,
    scratch: &mut Scratch,
    mut emit: impl FnMut(Option<u32>, &str),
) {
    let symbols = &mut scratch.symbols;
    let heap = &mut scratch.heap;
    symbols.clear();
    heap.clear();
    let mut chars = word.char_indices().peekable();
    while let Some((start, _)) = chars.next() {
        let end = chars.peek().map_or(word.len(), |&(i, _)| i);
        let idx = symbols.len() as u32;
        symbols.push(Symbol {
            start: start as u32,
            end: end as u32,
            sid: merges.lookup(vocab, &word[start..end]),
            prev: if idx == 0 { NIL } else { idx - 1 },
            next: if end == word.len() { NIL } else { idx + 1 },
        });
    }

    let try_pair = |symbols: &[Symbol], heap: &mut BinaryHeap<Reverse<(u32, u32, u32, u32)>>, l: u32, r: u32| {
        if l == NIL || r == NIL {
            return;
        }
        let (ls, rs) = (symbols[l as usize], symbols[r as usize]);
        if ls.sid == NONE || rs.sid == NONE {
            return;
        }
        if let Some(&(rank, _)) = merges.pairs.get(&(ls.sid, rs.sid)) {
            let size = (ls.end - ls.start) + (rs.end - rs.start);
            heap.push(Reverse((rank, l, r, size)));
        }
    };

    for i in 1..symbols.len() as u32 {
        try_pair(symbols, heap, i - 1, i);
    }

    while let Some(Reverse((_, l, r, size))) = heap.pop() {
        let (ls, rs) = (symbols[l as usize], symbols[r as usize]);
        // Stale entries: a side was merged away or grew since the pair was queued.
        if ls.end == ls.start || rs.end == rs.start || ls.next != r || (ls.end - ls.start) + (rs.end - rs.start) != size
        {
            continue;
        }
        let Some(&(_, merged)) = merges.pairs.get(&(ls.sid, rs.sid)) else {
            continue;
        };
        {
            let left = &mut symbols[l as usize];
            left.end = rs.end;
            left.sid = merged;
            left.next = rs.next;
        }
        {
            let right = &mut symbols[r as usize];
            right.start = right.end;
        }
        if rs.next != NIL {
            symbols[rs.next as usize].prev = l;
        }
        let prev = symbols[l as usize].prev;
        let next = symbols[l as usize].next;
        try_pair(symbols, heap, prev, l);
        try_pair(symbols, heap, l, next);
    }

    let mut i = if symbols.is_empty() { NIL } else { 0 };
    while i != NIL {
        let s = symbols[i as usize];
        let text = &word[s.start as usize..s.end as usize];
        let token = if s.sid < merges.n_vocab { Some(s.sid) } else { None };
        emit(token, text);
        i = s.next;
    }
}
