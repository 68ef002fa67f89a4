//! tiktoken encodings: `o200k_base` and gpt-oss's `o200k_harmony`, built from a `.tiktoken` rank
//! file (one `base64(token bytes) rank` line per token, as tiktoken and tiktoken-rs ship it).
//!
//! Semantics are tiktoken's (`tiktoken_ext/openai_public.py`, `CoreBPE`):
//! - the text is split at special tokens only where they are allowed (`parse_special`, i.e.
//!   `allowed_special="all"`; without it the text is encoded as ordinary text, like
//!   `encode_ordinary`);
//! - each fragment is cut into pieces by o200k's expression ([`O200K_PATTERN`], full-Unicode
//!   semantics, see `regex.rs`); a piece that is itself a token is taken whole, otherwise its
//!   bytes are merged by rank (`bpe.rs`, `Merges::by_concatenation`): ids are ranks;
//! - decoding concatenates the tokens' bytes.
//!
//! Tokens are kept in the GPT-2 byte alphabet (as llama.cpp's GGUF conversion of gpt-oss does),
//! so the byte-level BPE machinery of this module's parent serves unchanged.
//!
//! o200k_harmony's special tokens: 199998 `<|startoftext|>`, 199999 `<|endoftext|>`, 200002
//! `<|return|>`, 200003 `<|constrain|>`, 200005 `<|channel|>`, 200006 `<|start|>`, 200007
//! `<|end|>`, 200008 `<|message|>`, 200012 `<|call|>`, and `<|reserved_N|>` for every other id up
//! to 201087 (tiktoken 0.12 `openai_public.py`). tiktoken also keeps o200k_base's
//! `<|endofprompt|>` = 200018, which therefore has two texts: both encode to 200018, and 200018
//! decodes to `<|reserved_200018|>` (tiktoken's own choice between the two depends on hash-map
//! order).
//!
//! Invariant: the rank file is untrusted: size, line count, base64, ranks (unique, dense from 0)
//! are checked before anything is allocated in proportion to them; errors are typed.

use super::pretokenize::Step;
use super::{attr, bytes, hf, Added, MergeSpec, Parts, Result, TokenizerError};

/// o200k's pre-tokenizer expression, exactly as tiktoken defines it.
pub const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"\p{N}{1,3}",
    "|",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    "|",
    r"\s*[\r\n]+",
    "|",
    r"\s+(?!\S)",
    "|",
    r"\s+",
);

/// The encodings built on the o200k ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    O200kBase,
    O200kHarmony,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::O200kHarmony => "o200k_harmony",
        }
    }

    pub fn from_name(name: &str) -> Option<Encoding> {
        match name {
            "o200k_base" => Some(Encoding::O200kBase),
            "o200k_harmony" => Some(Encoding::O200kHarmony),
            _ => None,
        }
    }

    /// (text, id) of every special token. The first text of an id is its decoded text.
    pub fn special_tokens(self) -> Vec<(String, u32)> {
        match self {
            Encoding::O200kBase => vec![("<|endoftext|>".into(), 199_999), ("<|endofprompt|>".into(), 200_018)],
            Encoding::O200kHarmony => {
                let named: [(u32, &str); 9] = [
                    (199_998, "<|startoftext|>"),
                    (199_999, "<|endoftext|>"),
                    (200_002, "<|return|>"),
                    (200_003, "<|constrain|>"),
                    (200_005, "<|channel|>"),
                    (200_006, "<|start|>"),
                    (200_007, "<|end|>"),
                    (200_008, "<|message|>"),
                    (200_012, "<|call|>"),
                ];
                let mut out: Vec<(String, u32)> = named.iter().map(|&(id, t)| (t.to_string(), id)).collect();
                for id in (200_000..=201_087).filter(|id| !named.iter().any(|&(n, _)| n == *id)) {
                    out.push((format!("<|reserved_{id}|>"), id));
                }
                out.push(("<|endofprompt|>".into(), 200_018));
                out
            }
        }
    }

    /// The number of ranked (mergeable) tokens the encoding expects.
    fn n_ranks(self) -> usize {
        199_998
    }
}

/// Largest rank file accepted (o200k's is 3.6 MB).
const MAX_FILE_BYTES: usize = 64 << 20;
/// Longest token accepted, in bytes.
const MAX_TOKEN_BYTES: usize = 1024;

fn bad(reason: impl Into<String>) -> TokenizerError {
    TokenizerError::BadFile { file: "tiktoken rank file".into(), reason: reason.into() }
}

fn b64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Standard base64 with padding (as tiktoken writes it).
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(4) || s.len() > MAX_TOKEN_BYTES * 2 {
        return None;
    }
    let pad = s.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return None;
    }
    let body = &s[..s.len() - pad];
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc = 0u32;
    let mut nbits = 0;
    for &c in body {
        acc = (acc << 6) | b64_value(c)?;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((acc >> nbits) as u8);
            acc &= (1 << nbits) - 1;
        }
    }
    // Leftover bits must be zero padding.
    (acc == 0).then_some(out)
}

/// Parse a `.tiktoken` rank file into token byte strings indexed by rank.
pub(crate) fn parse_ranks(data: &[u8]) -> Result<Vec<Vec<u8>>> {
    if data.len() > MAX_FILE_BYTES {
        return Err(bad(format!("{} bytes (limit {MAX_FILE_BYTES})", data.len())));
    }
    // Every line holds at least "xxxx 0\n": the line count bounds the allocation.
    let n_lines = data.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    let mut by_rank: Vec<Option<Vec<u8>>> = vec![None; n_lines];
    for (i, line) in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut parts = line.split(|&b| b == b' ');
        let (Some(tok), Some(rank), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(format!("line {}: expected `base64 rank`", i + 1)));
        };
        let token = base64_decode(tok).ok_or_else(|| bad(format!("line {}: bad base64", i + 1)))?;
        let rank: usize = std::str::from_utf8(rank)
            .ok()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| bad(format!("line {}: bad rank", i + 1)))?;
        let slot =
            by_rank.get_mut(rank).ok_or_else(|| bad(format!("line {}: rank {rank} ≥ {n_lines} lines", i + 1)))?;
        if slot.is_some() {
            return Err(bad(format!("line {}: rank {rank} given twice", i + 1)));
        }
        *slot = Some(token);
    }
    // n_lines slots, n_lines distinct ranks below n_lines: every slot is filled.
    by_rank.into_iter().enumerate().map(|(r, t)| t.ok_or_else(|| bad(format!("rank {r} missing")))).collect()
}

/// The parts of a tiktoken encoding (see the module docs).
pub(crate) fn parts(data: &[u8], enc: Encoding) -> Result<Parts> {
    let ranks = parse_ranks(data)?;
    if ranks.len() != enc.n_ranks() {
        return Err(bad(format!("{} ranks, {} has {}", ranks.len(), enc.name(), enc.n_ranks())));
    }
    let specials = enc.special_tokens();
    let n = specials.iter().map(|&(_, id)| id as usize + 1).max().unwrap_or(0).max(ranks.len());
    let mut texts: Vec<Box<str>> = Vec::with_capacity(n);
    let mut attrs = vec![attr::NORMAL; ranks.len()];
    let mut buf = String::new();
    for t in &ranks {
        buf.clear();
        bytes::encode_into(t, &mut buf);
        texts.push(buf.as_str().into());
    }
    texts.resize(n, Box::from(""));
    attrs.resize(n, attr::UNDEFINED);
    let mut added = Vec::with_capacity(specials.len());
    for (text, id) in &specials {
        let slot = &mut texts[*id as usize];
        if slot.is_empty() {
            *slot = text.as_str().into();
            attrs[*id as usize] = attr::CONTROL;
        }
        added.push(Added {
            id: *id,
            text: text.clone(),
            pattern: None,
            special: true,
            normalized: false,
            lstrip: false,
            rstrip: false,
        });
    }
    let steps = vec![Step::unicode_regex(O200K_PATTERN).map_err(bad)?];
    let n_ranked = ranks.len() as u32;
    Ok(Parts {
        model_name: "tiktoken".into(),
        pre_name: enc.name().into(),
        texts,
        attrs,
        merges: MergeSpec::ByConcat(n_ranked),
        steps,
        ignore_merges: true,
        whole_below: n_ranked,
        added,
        normalizer: hf::Normalizer::Identity,
        prefix_space: false,
        prefix_ids: Vec::new(),
        suffix_ids: Vec::new(),
        bos: Some(199_998).filter(|_| enc == Encoding::O200kHarmony),
        eos: Some(199_999),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(base64_decode(b"IQ==").as_deref(), Some(&b"!"[..]));
        assert_eq!(base64_decode(b"aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode(b"IR=="), None);
        assert_eq!(base64_decode(b"I"), None);
        assert_eq!(base64_decode(b"I$=="), None);
    }

    #[test]
    fn rank_files() {
        assert_eq!(parse_ranks(b"YQ== 0\nYg== 1\n").unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(parse_ranks(b"YQ== 0\nYg== 0\n").is_err());
        assert!(parse_ranks(b"YQ== 0\nYg== 5\n").is_err());
        assert!(parse_ranks(b"YQ==0\n").is_err());
        assert!(parse_ranks(b"YQ== x\n").is_err());
    }
}
