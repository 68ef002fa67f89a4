//! tokenizer.json (HF `tokenizers`) files with a byte-level BPE model, read into [`Parts`] with
//! the `tokenizers` library's semantics.
//!
//! Supported components — anything else is a [`TokenizerError::UnsupportedComponent`] naming it,
//! never a guess:
//! - `model`: `BPE` with `vocab`, `merges` (strings `"a b"` or pairs `["a", "b"]`), `ignore_merges`;
//!   `dropout` null, `unk_token` null, no subword prefix/suffix, `byte_fallback` false;
//! - `normalizer`: null, `NFC`, `NFD`, `NFKC`, `NFKD`, `Sequence` of those;
//! - `pre_tokenizer`: `ByteLevel` (`add_prefix_space` only as the first step, `use_regex`), `Split`
//!   with a `Regex` or `String` pattern, behavior `Isolated`, `invert` false, and `Sequence` of
//!   those; a `ByteLevel` step is required (the model works in the byte alphabet);
//! - `post_processor`: null, `ByteLevel`, `TemplateProcessing` (single sequence), `RobertaProcessing`,
//!   `BertProcessing`, `Sequence` of those — only the special ids they put around the text matter;
//! - `decoder`: `ByteLevel`, or a `Sequence` of `ByteLevel`s;
//! - `added_tokens`: `special` (cut out only with parse_special, like `encode_special_tokens =
//!   False`), `normalized` (matched after normalization), `lstrip`/`rstrip`; `single_word` true is
//!   refused;
//! - `truncation` and `padding` must be null (they would change the ids).
//!
//! Regex patterns run with full-Unicode semantics (`regex.rs`, `Mode::Unicode`), which is what
//! Oniguruma does for `\p{..}` and `\s`.
//!
//! Invariant: the file is untrusted. Its size is bounded, ids are bounded and checked, every merge
//! must name vocabulary tokens (as `tokenizers` requires), and errors are typed.

use std::borrow::Cow;

use serde_json::Value;

use super::pretokenize::Step;
use super::{attr, Added, MergeSpec, Parts, Result, TokenizerError};

/// Largest tokenizer.json accepted.
const MAX_FILE_BYTES: usize = 512 << 20;
/// Largest token id accepted.
const MAX_ID: u64 = 1 << 24;

/// The normalizers this engine implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Normalizer {
    Identity,
    Nfc,
    Nfd,
    Nfkc,
    Nfkd,
    Sequence(Vec<Normalizer>),
}

impl Normalizer {
    pub fn apply<'a>(&self, s: &'a str) -> Cow<'a, str> {
        use unicode_normalization::UnicodeNormalization;
        match self {
            Normalizer::Identity => Cow::Borrowed(s),
            Normalizer::Nfc => Cow::Owned(s.nfc().collect()),
            Normalizer::Nfd => Cow::Owned(s.nfd().collect()),
            Normalizer::Nfkc => Cow::Owned(s.nfkc().collect()),
            Normalizer::Nfkd => Cow::Owned(s.nfkd().collect()),
            Normalizer::Sequence(steps) => {
                let mut cur = Cow::Borrowed(s);
                for n in steps {
                    cur = match n.apply(&cur) {
                        Cow::Borrowed(_) => cur,
                        Cow::Owned(o) => Cow::Owned(o),
                    };
                }
                cur
            }
        }
    }
}

fn unsupported(component: impl Into<String>, detail: impl Into<String>) -> TokenizerError {
    TokenizerError::UnsupportedComponent { component: component.into(), detail: detail.into() }
}

fn bad(reason: impl Into<String>) -> TokenizerError {
    TokenizerError::BadFile { file: "tokenizer.json".into(), reason: reason.into() }
}

fn type_of(v: &Value) -> Option<&str> {
    v.get("type").and_then(Value::as_str)
}

fn flag(v: &Value, key: &str, default: bool) -> Result<bool> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(bad(format!("{key}: expected a bool, found {other}"))),
    }
}

fn id_of(v: &Value, what: &str) -> Result<u32> {
    match v.as_u64() {
        Some(id) if id < MAX_ID => Ok(id as u32),
        _ => Err(bad(format!("{what}: bad id {v}"))),
    }
}

fn normalizer(v: &Value) -> Result<Normalizer> {
    if v.is_null() {
        return Ok(Normalizer::Identity);
    }
    Ok(match type_of(v) {
        Some("NFC") => Normalizer::Nfc,
        Some("NFD") => Normalizer::Nfd,
        Some("NFKC") => Normalizer::Nfkc,
        Some("NFKD") => Normalizer::Nfkd,
        Some("Sequence") => {
            let items = v
                .get("normalizers")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("normalizer Sequence without normalizers"))?;
            let steps = items.iter().map(normalizer).collect::<Result<Vec<_>>>()?;
            if steps.iter().all(|s| *s == Normalizer::Identity) {
                Normalizer::Identity
            } else {
                Normalizer::Sequence(steps)
            }
        }
        Some(other) => {
            return Err(unsupported(format!("normalizer {other}"), "supported: NFC, NFD, NFKC, NFKD, Sequence"))
        }
        None => return Err(bad("normalizer without a type")),
    })
}

/// HF ByteLevel's own expression (`tokenizers` pre_tokenizers/byte_level.rs).
const BYTE_LEVEL_PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// Escape a literal for the regex engine.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$-/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

struct PreTok {
    steps: Vec<Step>,
    byte_level: bool,
    prefix_space: bool,
}

fn pre_tokenizer(v: &Value, first: bool, out: &mut PreTok) -> Result<()> {
    if v.is_null() {
        return Ok(());
    }
    match type_of(v) {
        Some("Sequence") => {
            let items = v
                .get("pretokenizers")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("pre_tokenizer Sequence without pretokenizers"))?;
            for (i, item) in items.iter().enumerate() {
                pre_tokenizer(item, first && i == 0, out)?;
            }
        }
        Some("ByteLevel") => {
            if out.byte_level {
                return Err(unsupported("pre_tokenizer ByteLevel", "twice in one sequence"));
            }
            out.byte_level = true;
            if flag(v, "add_prefix_space", true)? {
                if !first {
                    return Err(unsupported(
                        "pre_tokenizer ByteLevel.add_prefix_space",
                        "only as the first pre-tokenizer",
                    ));
                }
                out.prefix_space = true;
            }
            if flag(v, "use_regex", true)? {
                out.steps.push(
                    Step::unicode_regex(BYTE_LEVEL_PATTERN).map_err(|e| bad(format!("ByteLevel expression: {e}")))?,
                );
            }
        }
        Some("Split") => {
            if out.byte_level {
                // Splitting after the byte mapping would see the byte alphabet, not the text.
                return Err(unsupported("pre_tokenizer Split", "after ByteLevel"));
            }
            let behavior = v.get("behavior").and_then(Value::as_str).unwrap_or("");
            if behavior != "Isolated" {
                return Err(unsupported(format!("pre_tokenizer Split behavior {behavior}"), "supported: Isolated"));
            }
            if flag(v, "invert", false)? {
                return Err(unsupported("pre_tokenizer Split.invert", "true"));
            }
            let pattern = v.get("pattern").ok_or_else(|| bad("Split without pattern"))?;
            let expr = if let Some(re) = pattern.get("Regex").and_then(Value::as_str) {
                re.to_string()
            } else if let Some(lit) = pattern.get("String").and_then(Value::as_str) {
                escape(lit)
            } else {
                return Err(bad("Split pattern is neither Regex nor String"));
            };
            out.steps.push(Step::unicode_regex(&expr).map_err(|e| unsupported("pre_tokenizer Split pattern", e))?);
        }
        Some(other) => {
            return Err(unsupported(
                format!("pre_tokenizer {other}"),
                "supported: ByteLevel, Split (Isolated), Sequence",
            ))
        }
        None => return Err(bad("pre_tokenizer without a type")),
    }
    Ok(())
}

/// (ids before the text, ids after it) that the post-processor adds with add_special.
fn post_processor(v: &Value, pre: &mut Vec<u32>, post: &mut Vec<u32>) -> Result<()> {
    if v.is_null() {
        return Ok(());
    }
    let pair_id = |key: &str| -> Result<u32> {
        let p = v.get(key).and_then(Value::as_array).ok_or_else(|| bad(format!("post_processor {key}")))?;
        id_of(p.get(1).unwrap_or(&Value::Null), key)
    };
    match type_of(v) {
        Some("ByteLevel") => {}
        Some("RobertaProcessing") | Some("BertProcessing") => {
            pre.push(pair_id("cls")?);
            post.push(pair_id("sep")?);
        }
        Some("TemplateProcessing") => {
            let single =
                v.get("single").and_then(Value::as_array).ok_or_else(|| bad("TemplateProcessing without single"))?;
            let specials = v.get("special_tokens").ok_or_else(|| bad("TemplateProcessing without special_tokens"))?;
            let mut seen_a = false;
            for item in single {
                if let Some(seq) = item.get("Sequence") {
                    if seq.get("id").and_then(Value::as_str) != Some("A") || seen_a {
                        return Err(unsupported(
                            "post_processor TemplateProcessing",
                            "a single template other than one A",
                        ));
                    }
                    seen_a = true;
                } else if let Some(sp) = item.get("SpecialToken") {
                    let name = sp.get("id").and_then(Value::as_str).ok_or_else(|| bad("SpecialToken without id"))?;
                    let ids = specials
                        .get(name)
                        .and_then(|t| t.get("ids"))
                        .and_then(Value::as_array)
                        .ok_or_else(|| bad(format!("TemplateProcessing: special token {name:?} not listed")))?;
                    let target = if seen_a { &mut *post } else { &mut *pre };
                    for id in ids {
                        target.push(id_of(id, name)?);
                    }
                } else {
                    return Err(bad("TemplateProcessing item is neither Sequence nor SpecialToken"));
                }
            }
            if !seen_a {
                return Err(unsupported("post_processor TemplateProcessing", "single template without A"));
            }
        }
        Some("Sequence") => {
            let items = v
                .get("processors")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("post_processor Sequence without processors"))?;
            for item in items {
                post_processor(item, pre, post)?;
            }
        }
        Some(other) => {
            return Err(unsupported(
                format!("post_processor {other}"),
                "supported: ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing, Sequence",
            ))
        }
        None => return Err(bad("post_processor without a type")),
    }
    Ok(())
}

fn decoder(v: &Value) -> Result<()> {
    match type_of(v) {
        Some("ByteLevel") => Ok(()),
        Some("Sequence") => {
            let items =
                v.get("decoders").and_then(Value::as_array).ok_or_else(|| bad("decoder Sequence without decoders"))?;
            items.iter().try_for_each(decoder)
        }
        Some(other) => Err(unsupported(format!("decoder {other}"), "supported: ByteLevel")),
        None => Err(unsupported("decoder null", "a byte-level model needs the ByteLevel decoder")),
    }
}

/// Read a tokenizer.json file (see the module docs).
pub(crate) fn parts(data: &[u8]) -> Result<Parts> {
    if data.len() > MAX_FILE_BYTES {
        return Err(bad(format!("{} bytes (limit {MAX_FILE_BYTES})", data.len())));
    }
    let root: Value = serde_json::from_slice(data).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    for key in ["truncation", "padding"] {
        if root.get(key).is_some_and(|v| !v.is_null()) {
            return Err(unsupported(key, "must be null (it would change the ids)"));
        }
    }
    let model = root.get("model").ok_or_else(|| bad("no model"))?;
    match type_of(model) {
        Some("BPE") => {}
        None if model.get("merges").is_some() => {}
        Some(other) => return Err(unsupported(format!("model {other}"), "supported: BPE")),
        None => return Err(bad("model without a type")),
    }
    if model.get("dropout").is_some_and(|d| !d.is_null() && d.as_f64() != Some(0.0)) {
        return Err(unsupported("model.dropout", "must be null"));
    }
    if model.get("unk_token").is_some_and(|u| !u.is_null()) {
        return Err(unsupported("model.unk_token", "byte-level BPE without an unknown token only"));
    }
    for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
        if model.get(key).is_some_and(|u| !u.is_null() && u.as_str() != Some("")) {
            return Err(unsupported(format!("model.{key}"), "must be null"));
        }
    }
    if flag(model, "byte_fallback", false)? {
        return Err(unsupported("model.byte_fallback", "true"));
    }
    let ignore_merges = flag(model, "ignore_merges", false)?;

    // Vocabulary.
    let vocab = model.get("vocab").and_then(Value::as_object).ok_or_else(|| bad("model.vocab is not an object"))?;
    let added_json = match root.get("added_tokens") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(bad("added_tokens is not a list")),
    };
    let norm = normalizer(root.get("normalizer").unwrap_or(&Value::Null))?;
    let mut max_id = 0u64;
    for (k, v) in vocab {
        max_id = max_id.max(id_of(v, k)? as u64);
    }
    let mut added = Vec::with_capacity(added_json.len());
    for (i, a) in added_json.iter().enumerate() {
        let id = id_of(a.get("id").unwrap_or(&Value::Null), &format!("added_tokens[{i}].id"))?;
        let text = a.get("content").and_then(Value::as_str).ok_or_else(|| bad(format!("added_tokens[{i}].content")))?;
        if flag(a, "single_word", false)? {
            return Err(unsupported("added_tokens[].single_word", format!("true for {text:?}")));
        }
        let special = flag(a, "special", false)?;
        // `tokenizers` matches special tokens on the raw text whatever `normalized` says.
        let normalized = flag(a, "normalized", !special)? && !special;
        added.push(Added {
            id,
            text: text.to_string(),
            // A normalized token is looked for in normalized text, so its content is normalized.
            pattern: normalized.then(|| norm.apply(text).into_owned()).filter(|p| p != text),
            special,
            normalized,
            lstrip: flag(a, "lstrip", false)?,
            rstrip: flag(a, "rstrip", false)?,
        });
        max_id = max_id.max(id as u64);
    }
    let n = max_id as usize + 1;
    let entries = vocab.len() + added.len();
    if n > 2 * entries + 1024 {
        return Err(bad(format!("largest id {max_id} for {entries} tokens")));
    }
    let mut texts: Vec<Box<str>> = vec![Box::from(""); n];
    let mut attrs = vec![attr::UNDEFINED; n];
    for (k, v) in vocab {
        let id = id_of(v, k)? as usize;
        if !texts[id].is_empty() {
            return Err(bad(format!("id {id} given to {:?} and {k:?}", texts[id])));
        }
        texts[id] = k.as_str().into();
        attrs[id] = attr::NORMAL;
    }
    for a in &added {
        let id = a.id as usize;
        // The added token's text wins for its id (as in `tokenizers`' decoding).
        texts[id] = a.text.as_str().into();
        attrs[id] = if a.special { attr::CONTROL } else { attr::USER_DEFINED };
    }

    // Merges.
    let raw_merges = model.get("merges").and_then(Value::as_array).ok_or_else(|| bad("model.merges is not a list"))?;
    let mut pairs = Vec::with_capacity(raw_merges.len());
    for (i, m) in raw_merges.iter().enumerate() {
        let (l, r) = match m {
            Value::String(s) => {
                let mut it = s.split(' ');
                match (it.next(), it.next(), it.next()) {
                    (Some(l), Some(r), None) => (l, r),
                    _ => return Err(bad(format!("merges[{i}] {s:?} is not two tokens"))),
                }
            }
            Value::Array(a) if a.len() == 2 => match (a[0].as_str(), a[1].as_str()) {
                (Some(l), Some(r)) => (l, r),
                _ => return Err(bad(format!("merges[{i}] is not two strings"))),
            },
            _ => return Err(bad(format!("merges[{i}] is neither \"a b\" nor [a, b]"))),
        };
        for part in [l, r] {
            if !vocab.contains_key(part) {
                return Err(bad(format!("merges[{i}]: {part:?} is not in the vocabulary")));
            }
        }
        if !vocab.contains_key(&format!("{l}{r}")) {
            return Err(bad(format!("merges[{i}]: {l:?}+{r:?} is not in the vocabulary")));
        }
        pairs.push((l.to_string(), r.to_string()));
    }

    let mut pt = PreTok { steps: Vec::new(), byte_level: false, prefix_space: false };
    pre_tokenizer(root.get("pre_tokenizer").unwrap_or(&Value::Null), true, &mut pt)?;
    if !pt.byte_level {
        return Err(unsupported("pre_tokenizer without ByteLevel", "only byte-level BPE models are supported"));
    }
    let (mut prefix_ids, mut suffix_ids) = (Vec::new(), Vec::new());
    post_processor(root.get("post_processor").unwrap_or(&Value::Null), &mut prefix_ids, &mut suffix_ids)?;
    for &id in prefix_ids.iter().chain(&suffix_ids) {
        if id as usize >= n {
            return Err(bad(format!("post_processor id {id} outside the vocabulary")));
        }
    }
    decoder(root.get("decoder").unwrap_or(&Value::Null))?;

    Ok(Parts {
        model_name: "tokenizer.json".into(),
        pre_name: "tokenizer.json".into(),
        texts,
        attrs,
        merges: MergeSpec::Pairs(pairs),
        steps: pt.steps,
        ignore_merges,
        whole_below: u32::MAX,
        added,
        normalizer: norm,
        prefix_space: pt.prefix_space,
        bos: prefix_ids.first().copied(),
        eos: suffix_ids.last().copied(),
        prefix_ids,
        suffix_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Tokenizer;

    fn toy(extra: &str) -> String {
        let mut vocab = serde_json::Map::new();
        for (i, t) in ["a", "b", "c", "Ġ", "ab", "Ġab", "<s>", "</s>"].iter().enumerate() {
            vocab.insert(t.to_string(), Value::from(i));
        }
        format!(
            r#"{{"version":"1.0","truncation":null,"padding":null,
            "added_tokens":[{{"id":6,"content":"<s>","special":true,"normalized":false,"lstrip":false,"rstrip":false,"single_word":false}},
                            {{"id":7,"content":"</s>","special":true,"normalized":false,"lstrip":false,"rstrip":false,"single_word":false}}],
            "normalizer":null,
            "pre_tokenizer":{{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}},
            "post_processor":{{"type":"TemplateProcessing","single":[{{"SpecialToken":{{"id":"<s>","type_id":0}}}},{{"Sequence":{{"id":"A","type_id":0}}}}],
                "pair":[],"special_tokens":{{"<s>":{{"id":"<s>","ids":[6],"tokens":["<s>"]}}}}}},
            "decoder":{{"type":"ByteLevel"}},
            "model":{{"type":"BPE","dropout":null,"unk_token":null,"vocab":{},"merges":[["a","b"],"Ġ ab"]{extra}}}}}"#,
            Value::Object(vocab)
        )
    }

    #[test]
    fn toy_file() {
        let t = Tokenizer::from_tokenizer_json(toy("").as_bytes()).unwrap();
        assert_eq!(t.encode("ab ab", false, false).unwrap(), vec![4, 5]);
        assert_eq!(t.encode("ab ab", true, false).unwrap(), vec![6, 4, 5]);
        // Without parse_special "</s>" is text, whose characters this toy vocabulary lacks.
        assert_eq!(t.encode("ab</s>", false, false).unwrap(), vec![4]);
        assert_eq!(t.encode("ab</s>", false, true).unwrap(), vec![4, 7]);
        assert_eq!(t.decode(&[6, 4, 5, 7]).unwrap(), b"<s>ab ab</s>");
    }

    #[test]
    fn malformed_files_are_errors_not_panics() {
        // Every truncation and a sweep of byte substitutions of a valid file: Ok or Err, never a
        // panic; whatever loads must encode and decode.
        let good = toy("");
        let bytes = good.as_bytes();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut variants: Vec<Vec<u8>> = (0..bytes.len()).step_by(7).map(|n| bytes[..n].to_vec()).collect();
        for _ in 0..400 {
            let mut v = bytes.to_vec();
            let i = next() as usize % v.len();
            let alphabet = b"{}[]\",:0123456789-eE\\ntrue";
            v[i] = alphabet[next() as usize % alphabet.len()];
            variants.push(v);
        }
        for v in variants {
            if let Ok(t) = Tokenizer::from_tokenizer_json(&v) {
                let ids = t.encode("ab ab</s>", true, true).unwrap_or_default();
                let _ = t.decode(&ids);
            }
        }
        let ranks = b"YQ== 0\nYg== 1\n";
        for n in 0..ranks.len() {
            assert!(Tokenizer::from_tiktoken(&ranks[..n], crate::tokenizer::TiktokenEncoding::O200kHarmony).is_err());
        }
    }

    #[test]
    fn unsupported_components_are_named() {
        let e = Tokenizer::from_tokenizer_json(toy(r#","byte_fallback":true"#).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("model.byte_fallback"), "{e}");
        let json = toy("").replace(r#""normalizer":null"#, r#""normalizer":{"type":"Lowercase"}"#);
        let e = Tokenizer::from_tokenizer_json(json.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("normalizer Lowercase"), "{e}");
        let json = toy("").replace(r#""pre_tokenizer":{"type":"ByteLevel""#, r#""pre_tokenizer":{"type":"Metaspace""#);
        let e = Tokenizer::from_tokenizer_json(json.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("pre_tokenizer Metaspace"), "{e}");
        assert!(Tokenizer::from_tokenizer_json(b"{").is_err());
        assert!(Tokenizer::from_tokenizer_json(b"{}").is_err());
        let json = toy("").replace(r#""Ġ ab""#, r#""Ġ c""#);
        assert!(Tokenizer::from_tokenizer_json(json.as_bytes()).is_err());
    }
}
