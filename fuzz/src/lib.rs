//! What the fuzz targets share: where their fixed data lives (real tokenizer files the text target
//! loads once) and the split of one input into a file part and a text part.
//!
//! The data directory is `$ORCD_FUZZ_DATA`, else `fuzz/data` beside this crate (written by
//! `fuzz/make_seeds.sh` from the fetched fixtures; never committed: the files are megabytes).

pub mod targets;

use std::path::PathBuf;

/// The directory holding the real tokenizer files (see the module docs).
pub fn data_dir() -> PathBuf {
    match std::env::var_os("ORCD_FUZZ_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data"),
    }
}

/// Split an input into (file, text): the last two bytes are a little-endian length `L` (taken
/// modulo what is there), the `L` bytes before them are the text, everything before that the
/// file. A mutation of the length moves the boundary, so one input drives both the construction
/// from a file and the encoding of a text with what was built.
pub fn split_file_text(data: &[u8]) -> (&[u8], &[u8]) {
    if data.len() < 2 {
        return (data, &[]);
    }
    let (body, tail) = data.split_at(data.len() - 2);
    let len = usize::from(u16::from_le_bytes([tail[0], tail[1]])) % (body.len() + 1);
    body.split_at(body.len() - len)
}

/// The inverse of [`split_file_text`], for seeds: `file`, then `text`, then the text's length.
pub fn join_file_text(file: &[u8], text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(file.len() + text.len() + 2);
    out.extend_from_slice(file);
    out.extend_from_slice(text);
    let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out
}

use orcd_tokenizer::tokenizer::{DecodeOptions, Tokenizer};

/// Encode `text` with `tok` in all four (add_special, parse_special) modes, decode what came
/// back, stream-decode it, and decode ids taken from the text's bytes (ids past the vocabulary
/// must be typed errors). Asserts the properties every tokenizer keeps whatever its file said:
/// ids inside the vocabulary and no panic.
pub fn exercise(tok: &Tokenizer, text: &[u8]) {
    let s = String::from_utf8_lossy(text);
    let n = tok.vocab_size();
    let _ = (tok.bos(), tok.eos(), tok.eot(), tok.special_ids(), tok.eog_ids(), tok.model_name());
    for (add_special, parse_special) in [(false, false), (true, true), (true, false), (false, true)] {
        let Ok(ids) = tok.encode(&s, add_special, parse_special) else { continue };
        assert!(ids.iter().all(|&i| (i as usize) < n), "an id past the vocabulary ({n})");
        let _ = tok.decode(&ids).expect("ids from encode decode");
        for special in [false, true] {
            let opts = DecodeOptions { special, remove_special: add_special, clean_spaces: parse_special };
            let _ = tok.decode_with(&ids, opts).expect("ids from encode decode");
            let mut sd = tok.stream_decoder(special);
            let mut streamed = String::new();
            for &id in &ids {
                streamed += &sd.push(tok, id).expect("ids from encode stream");
            }
            streamed += &sd.finish();
        }
        if ids.len() > 64 {
            // The first mode covers long inputs; the others only add time.
            break;
        }
    }
    // Arbitrary ids: below the vocabulary they decode, past it they are errors.
    let ids: Vec<u32> = text.chunks_exact(2).map(|c| u32::from(u16::from_le_bytes([c[0], c[1]]))).collect();
    let r = tok.decode(&ids);
    assert_eq!(r.is_ok(), ids.iter().all(|&i| (i as usize) < n), "decode of ids against a vocabulary of {n}");
    for &id in ids.iter().take(8) {
        let _ = (tok.token_text(id), tok.token_to_piece(id), tok.token_attr(id), tok.token_score(id));
        let _ = (tok.is_control(id), tok.is_eog(id));
    }
    let mut sd = tok.stream_decoder(true);
    for &id in ids.iter().take(64) {
        let _ = sd.push(tok, id);
    }
    let _ = sd.finish();
}
