//! SentencePiece-style merging by score (llama.cpp's SPM session).
//!
//! The text (spaces already escaped as U+2581) starts as one symbol per character. Repeatedly,
//! the adjacent pair whose concatenation is a token with the highest score (the leftmost among
//! equal scores) is merged. Final symbols that are tokens are emitted; any other symbol is a
//! single character that falls back to byte tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::vocab::Vocab;

#[derive(Debug, Clone, Copy)]
struct Symbol {
    start: u32,
    end: u32,
    prev: u32,
    next: u32,
}

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Pair {
    score: f32,
    left: u32,
    right: u32,
    size: u32,
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pair {}
impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pair {
    /// Max-heap order: higher score first, then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.partial_cmp(&other.score).unwrap_or(Ordering::Equal).then_with(|| other.left.cmp(&self.left))
    }
}

/// Reusable buffers for [`encode`].
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    symbols: Vec<Symbol>,
    heap: BinaryHeap<Pair>,
}

/// Tokenize `text`; each final symbol is reported through `emit` as `(token, text)`, with `None`
/// for a symbol that is not a token (the caller falls back to bytes).
pub(crate) fn encode(vocab: &Vocab, text: &str, scratch: &mut Scratch, mut emit: impl FnMut(Option<u32>, &str)) {
    let symbols = &mut scratch.symbols;
    let heap = &mut scratch.heap;
    symbols.clear();
    heap.clear();
    let mut chars = text.char_indices().peekable();
    while let Some((start, _)) = chars.next() {
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        let idx = symbols.len() as u32;
        symbols.push(Symbol {
            start: start as u32,
            end: end as u32,
            prev: if idx == 0 { NIL } else { idx - 1 },
            next: if end == text.len() { NIL } else { idx + 1 },
        });
    }

    let try_pair = |symbols: &[Symbol], heap: &mut BinaryHeap<Pair>, l: u32, r: u32| {
        if l == NIL || r == NIL {
            return;
        }
        let (ls, rs) = (symbols[l as usize], symbols[r as usize]);
        if let Some(id) = vocab.get(&text[ls.start as usize..rs.end as usize]) {
            let score = vocab.scores.get(id as usize).copied().unwrap_or(0.0);
            heap.push(Pair { score, left: l, right: r, size: rs.end - ls.start });
        }
    };

    for i in 1..symbols.len() as u32 {
        try_pair(symbols, heap, i - 1, i);
    }

    while let Some(p) = heap.pop() {
        let (ls, rs) = (symbols[p.left as usize], symbols[p.right as usize]);
        if ls.end == ls.start || rs.end == rs.start || (ls.end - ls.start) + (rs.end - rs.start) != p.size {
            continue;
        }
        symbols[p.left as usize].end = rs.end;
        symbols[p.left as usize].next = rs.next;
        symbols[p.right as usize].start = rs.end;
        if rs.next != NIL {
            symbols[rs.next as usize].prev = p.left;
        }
        let (prev, next) = (symbols[p.left as usize].prev, symbols[p.left as usize].next);
        try_pair(symbols, heap, prev, p.left);
        try_pair(symbols, heap, p.left, next);
    }

    let mut i = if symbols.is_empty() { NIL } else { 0 };
    while i != NIL {
        let s = symbols[i as usize];
        let piece = &text[s.start as usize..s.end as usize];
        emit(vocab.get(piece), piece);
        i = s.next;
    }
}
