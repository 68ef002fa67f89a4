//! `worker-orcd tokenize` / `detokenize`: ids of a text, text of ids, with the tokenizer of a
//! GGUF file, a tokenizer.json, a `.tiktoken` rank file or the name `o200k_harmony`.

use std::io::Write;

use super::{fetch_cache, load_tokenizer, open, read_text, stdout_err, TextArgs};
use crate::{Error, Result};

/// The tokenizer of `tokenize`/`detokenize --model X`: a GGUF file, a tokenizer.json or a
/// `.tiktoken` rank file (recognised by content), or the name `o200k_harmony` / `o200k_base` for
/// the fetched o200k rank file.
fn open_tokenizer(model: &std::path::Path) -> Result<crate::tokenizer::Tokenizer> {
    use crate::tokenizer::{FileKind, TiktokenEncoding, Tokenizer};
    if !model.exists() {
        if let Some(enc) = model.to_str().and_then(TiktokenEncoding::from_name) {
            let p = fetch_cache().join("tokenizers").join("o200k_base.tiktoken");
            if !p.is_file() {
                return Err(Error::Invalid(format!(
                    "--model {}: the o200k rank file {} is not fetched: run `python3 fixtures/fetch.py`",
                    enc.name(),
                    p.display()
                )));
            }
            let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            return Ok(Tokenizer::from_tiktoken(&bytes, enc)?);
        }
    }
    let mut head = [0u8; 256];
    let n = {
        use std::io::Read;
        std::fs::File::open(model).and_then(|mut f| f.read(&mut head)).unwrap_or(0)
    };
    match FileKind::sniff(&head[..n]) {
        Some(FileKind::TokenizerJson) | Some(FileKind::Tiktoken) => {
            Tokenizer::open(model).map_err(|e| Error::from(e).context(model.display().to_string()))
        }
        // GGUF, unreadable or unknown: the GGUF reader says what is wrong.
        _ => load_tokenizer(&open(model)?),
    }
}

pub(super) fn tokenize(model: &std::path::Path, text: &TextArgs, add_special: bool, parse_special: bool) -> Result<()> {
    let tok = open_tokenizer(model)?;
    let text = match (&text.text, &text.text_file) {
        (Some(t), _) => t.clone(),
        (None, Some(p)) => read_text(p)?,
        (None, None) => return Err(Error::Invalid("give --text or --text-file".into())),
    };
    let ids = tok.encode(&text, add_special, parse_special)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::Value::from(ids)).map_err(stdout_err)
}

pub(super) fn detokenize(model: &std::path::Path, ids: &[u32]) -> Result<()> {
    let tok = open_tokenizer(model)?;
    let bytes = tok.decode(ids)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes).and_then(|_| writeln!(out)).map_err(stdout_err)
}
