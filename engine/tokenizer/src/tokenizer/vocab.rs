//! Token texts, scores and attributes, and the text → id map.

use super::hash::{new_map, FastMap};

/// Token attributes (llama.cpp's `llama_token_attr` bits).
pub mod attr {
    pub const UNDEFINED: u16 = 0;
    pub const UNKNOWN: u16 = 1 << 0;
    pub const UNUSED: u16 = 1 << 1;
    pub const NORMAL: u16 = 1 << 2;
    pub const CONTROL: u16 = 1 << 3;
    pub const USER_DEFINED: u16 = 1 << 4;
    pub const BYTE: u16 = 1 << 5;
    pub const NORMALIZED: u16 = 1 << 6;
    pub const LSTRIP: u16 = 1 << 7;
    pub const RSTRIP: u16 = 1 << 8;
    pub const SINGLE_WORD: u16 = 1 << 9;

    /// The attribute a GGUF `tokenizer.ggml.token_type` value stands for.
    pub fn from_token_type(t: i64) -> u16 {
        match t {
            1 => NORMAL,
            2 => UNKNOWN,
            3 => CONTROL,
            4 => USER_DEFINED,
            5 => UNUSED,
            6 => BYTE,
            _ => UNDEFINED,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Vocab {
    pub texts: Vec<Box<str>>,
    pub scores: Vec<f32>,
    pub attrs: Vec<u16>,
    /// Text → id; when two tokens share a text the later id wins (as in llama.cpp).
    ids: FastMap<Box<str>, u32>,
    pub max_token_len: usize,
}

impl Vocab {
    pub fn new(texts: Vec<Box<str>>, scores: Vec<f32>, attrs: Vec<u16>) -> Self {
        let mut ids = new_map(texts.len());
        let mut max_token_len = 0;
        for (i, t) in texts.iter().enumerate() {
            ids.insert(t.clone(), i as u32);
            max_token_len = max_token_len.max(t.len());
        }
        Vocab { texts, scores, attrs, ids, max_token_len }
    }

    /// Number of distinct texts (equal to [`Vocab::len`] for a well-formed vocabulary).
    pub fn distinct_texts(&self) -> usize {
        self.ids.len()
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    #[inline]
    pub fn get(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    #[inline]
    pub fn attr(&self, id: u32) -> u16 {
        self.attrs.get(id as usize).copied().unwrap_or(attr::UNDEFINED)
    }

    pub fn text(&self, id: u32) -> Option<&str> {
        self.texts.get(id as usize).map(|t| &**t)
    }

    /// The `<0xXX>` token for a byte, as SentencePiece vocabularies spell it.
    pub fn hex_byte_token(&self, b: u8) -> Option<u32> {
        let name = format!("<0x{b:02X}>");
        self.get(&name)
    }
}
