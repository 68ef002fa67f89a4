//! WordPiece (BERT) as llama.cpp does it: normalise (lowercase, strip accents through a
//! one-code-point NFD), split at white space and around punctuation and CJK ideographs, then
//! match each word greedily with the longest tokens, the word prefixed with U+2581.

use super::unicode;
use super::vocab::Vocab;

/// The CJK ranges BERT isolates (including the upstream quirk 0x2B920 for 0x2B820).
fn is_cjk(cp: u32) -> bool {
    matches!(
        cp,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

/// Normalised words of `text`.
pub(crate) fn words(text: &str, lowercase: bool, strip_accents: bool) -> Vec<String> {
    let mut words = vec![String::new()];
    for c in text.chars() {
        let mut cp = c as u32;
        if strip_accents {
            cp = unicode::nfd_first(cp);
        }
        let f = unicode::flags(cp);
        if f.whitespace() {
            if words.last().is_some_and(|w| !w.is_empty()) {
                words.push(String::new());
            }
            continue;
        }
        if cp == 0 || cp == 0xFFFD || f.control() {
            continue;
        }
        if strip_accents && f.mark() {
            continue;
        }
        let out = if lowercase { unicode::to_lower(cp) } else { cp };
        let Some(ch) = char::from_u32(out) else { continue };
        if f.punctuation() || (cp < 0x7F && f.symbol()) || is_cjk(cp) {
            if words.last().is_some_and(|w| !w.is_empty()) {
                words.push(String::new());
            }
            if let Some(last) = words.last_mut() {
                last.push(ch);
            }
            words.push(String::new());
        } else if let Some(last) = words.last_mut() {
            last.push(ch);
        }
    }
    if words.last().is_some_and(|w| w.is_empty()) {
        words.pop();
    }
    words
}

/// Greedy longest-match of one word; `None` when some position has no token (the caller then
/// emits the unknown token for the whole word).
pub(crate) fn encode_word(vocab: &Vocab, word: &str, out: &mut Vec<u32>) -> bool {
    let w = format!("\u{2581}{word}");
    let bytes = w.as_bytes();
    let n = bytes.len();
    let start_len = out.len();
    let mut i = 0;
    while i < n {
        let mut matched = false;
        let mut j = n.min(i + vocab.max_token_len + 1);
        while j > i {
            if let Some(id) = std::str::from_utf8(&bytes[i..j]).ok().and_then(|s| vocab.get(s)) {
                out.push(id);
                matched = true;
                i = j;
                break;
            }
            j -= 1;
        }
        if !matched {
            out.truncate(start_len);
            return false;
        }
    }
    out.len() > start_len
}
