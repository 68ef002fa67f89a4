//! `worker-orcd logits`: logits at every position of a prompt, as f32 .npy [n_tokens, n_vocab].

use std::io::Write;

use super::{load_model, load_tokenizer, open, read_text, BackendArg, NumericsArg, PromptArgs};
use crate::gguf::GgufFile;
use crate::{npy, Error, Result};

/// Token ids of a prompt as `logits`/`generate` take it (DESIGN §6).
fn prompt_tokens(f: &GgufFile, p: &PromptArgs, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
    if let Some(ids) = &p.tokens {
        return Ok(ids.clone());
    }
    let text = match (&p.prompt, &p.prompt_file) {
        (Some(t), _) => t.clone(),
        (None, Some(path)) => read_text(path)?,
        _ => return Err(Error::Invalid("give --prompt, --prompt-file or --tokens".into())),
    };
    let tok = load_tokenizer(f)?;
    Ok(tok.encode(&text, add_special, parse_special)?)
}

pub(super) fn logits(
    model: &std::path::Path,
    prompt: &PromptArgs,
    add_special: bool,
    parse_special: bool,
    backend: Option<BackendArg>,
    numerics: Option<NumericsArg>,
    out: &std::path::Path,
) -> Result<()> {
    let col = super::column(backend, numerics);
    let f = open(model)?;
    let tokens = prompt_tokens(&f, prompt, add_special, parse_special)?;
    if tokens.is_empty() {
        return Err(Error::Invalid("the prompt has no tokens".into()));
    }
    let mut m = load_model(col, &f, tokens.len().max(1), None)?;
    let (logits, n_vocab) = (m.forward(&tokens, &mut crate::ops::NoTaps)?, m.hp().n_vocab);
    let file = std::fs::File::create(out).map_err(|e| Error::io(out, e))?;
    let mut w = std::io::BufWriter::new(file);
    npy::write_f32(&mut w, &[tokens.len(), n_vocab], &logits).map_err(|e| Error::io(out, e))?;
    w.flush().map_err(|e| Error::io(out, e))
}
