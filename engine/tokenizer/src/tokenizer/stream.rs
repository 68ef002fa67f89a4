//! Streaming detokenization: token pieces in, complete characters out.
//!
//! A byte-level token can end in the middle of a UTF-8 sequence (an emoji is often three or four
//! byte tokens). The decoder holds such an incomplete tail back until the rest arrives, so the
//! text it emits never contains a partial or replacement character for a sequence that is still
//! being completed. Bytes that can never become valid UTF-8 are emitted as U+FFFD right away.

use super::{Tokenizer, TokenizerError};

/// Turns a stream of token ids (or raw pieces) into text, one complete character at a time.
#[derive(Debug, Clone, Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
    special: bool,
}

impl StreamDecoder {
    /// `special`: render control tokens (e.g. `<|im_end|>`) as their text.
    pub fn new(special: bool) -> Self {
        StreamDecoder { pending: Vec::new(), special }
    }

    /// Add the piece of token `id`; returns the text that became complete (possibly empty).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> Result<String, TokenizerError> {
        let piece = tokenizer.token_to_piece_with(id, self.special)?;
        Ok(self.push_bytes(piece))
    }

    /// Add raw bytes; returns the text that became complete (possibly empty).
    pub fn push_bytes(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // `valid` is valid UTF-8 by construction.
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete sequence at the end: wait for more bytes.
                        None => {
                            rest = after;
                            break;
                        }
                        Some(n) => {
                            out.push('\u{FFFD}');
                            rest = after.get(n..).unwrap_or(&[]);
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let drop = self.pending.len() - keep;
        self.pending.drain(..drop);
        out
    }

    /// Bytes held back, waiting for the rest of a character.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// End of stream: whatever is still held back is emitted as U+FFFD.
    pub fn finish(&mut self) -> String {
        let out =
            if self.pending.is_empty() { String::new() } else { String::from_utf8_lossy(&self.pending).into_owned() };
        self.pending.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_partial_characters() {
        let mut d = StreamDecoder::new(false);
        let rocket = "🚀".as_bytes();
        assert_eq!(d.push_bytes(b"go "), "go ");
        assert_eq!(d.push_bytes(&rocket[..1]), "");
        assert_eq!(d.push_bytes(&rocket[1..3]), "");
        assert_eq!(d.pending().len(), 3);
        assert_eq!(d.push_bytes(&rocket[3..]), "🚀");
        assert_eq!(d.push_bytes(b"\xFFok"), "\u{FFFD}ok");
        assert_eq!(d.push_bytes(&rocket[..2]), "");
        assert_eq!(d.finish(), "\u{FFFD}");
        assert_eq!(d.finish(), "");
    }
}
