//! Code point classification with llama.cpp's tables (see `gen_unicode_table.py`).
//!
//! Every code point has exactly one category bit (undefined, number, letter, separator, mark,
//! punctuation, symbol, control); white space is a separate flag. Positions outside the text being
//! split have no bits at all ([`Flags::NONE`]), which the splitters rely on.

use super::unicode_table::{ASCII_CATEGORY, CATEGORY_RANGES, LOWERCASE, NFD_FIRST};

/// Category bits, as stored in the generated table.
pub(crate) mod cat {
    pub const UNDEFINED: u16 = 0x01;
    pub const NUMBER: u16 = 0x02;
    pub const LETTER: u16 = 0x04;
    pub const MARK: u16 = 0x10;
    pub const PUNCTUATION: u16 = 0x20;
    pub const SYMBOL: u16 = 0x40;
    pub const CONTROL: u16 = 0x80;
    pub const CATEGORIES: u16 = 0xFF;
    pub const WHITESPACE: u16 = 0x100;
}

/// Category bits plus the white-space flag of one code point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Flags(pub u16);

impl Flags {
    /// What a position outside the current piece of text reports.
    pub const NONE: Flags = Flags(0);

    #[inline]
    pub fn any(self) -> bool {
        self.0 != 0
    }
    #[inline]
    pub fn number(self) -> bool {
        self.0 & cat::NUMBER != 0
    }
    #[inline]
    pub fn letter(self) -> bool {
        self.0 & cat::LETTER != 0
    }
    #[inline]
    pub fn mark(self) -> bool {
        self.0 & cat::MARK != 0
    }
    #[inline]
    pub fn punctuation(self) -> bool {
        self.0 & cat::PUNCTUATION != 0
    }
    #[inline]
    pub fn symbol(self) -> bool {
        self.0 & cat::SYMBOL != 0
    }
    #[inline]
    pub fn control(self) -> bool {
        self.0 & cat::CONTROL != 0
    }
    #[inline]
    pub fn whitespace(self) -> bool {
        self.0 & cat::WHITESPACE != 0
    }
    #[inline]
    pub fn category(self) -> u16 {
        self.0 & cat::CATEGORIES
    }
}

/// The Unicode White_Space property, as llama.cpp lists it.
#[inline]
pub(crate) fn is_whitespace(cp: u32) -> bool {
    matches!(cp, 0x09..=0x0D | 0x20 | 0x85 | 0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000)
}

fn category_of(cp: u32) -> u16 {
    // The last run starts at 0x110000 with no bits; anything beyond is undefined.
    if cp >= 0x110000 {
        return cat::UNDEFINED;
    }
    let i = CATEGORY_RANGES.partition_point(|&(start, _)| start <= cp);
    // i >= 1 because the first run starts at 0.
    CATEGORY_RANGES.get(i.wrapping_sub(1)).map_or(cat::UNDEFINED, |&(_, bits)| bits as u16)
}

/// Flags of one code point.
#[inline]
pub(crate) fn flags(cp: u32) -> Flags {
    if let Some(&bits) = ASCII_CATEGORY.get(cp as usize) {
        let ws = if matches!(cp, 0x09..=0x0D | 0x20) { cat::WHITESPACE } else { 0 };
        return Flags(bits as u16 | ws);
    }
    let mut bits = category_of(cp);
    if is_whitespace(cp) {
        bits |= cat::WHITESPACE;
    }
    Flags(bits)
}

/// Simple lowercase mapping (the code point itself when it has none).
pub(crate) fn to_lower(cp: u32) -> u32 {
    if cp < 128 {
        return (cp as u8).to_ascii_lowercase() as u32;
    }
    match LOWERCASE.binary_search_by_key(&cp, |&(c, _)| c) {
        Ok(i) => LOWERCASE.get(i).map_or(cp, |&(_, l)| l),
        Err(_) => cp,
    }
}

/// The first code point of the canonical decomposition (llama.cpp's one-to-one "NFD").
pub(crate) fn nfd_first(cp: u32) -> u32 {
    let i = NFD_FIRST.partition_point(|&(first, _, _)| first <= cp);
    match i.checked_sub(1).and_then(|i| NFD_FIRST.get(i)) {
        Some(&(first, last, nfd)) if first <= cp && cp <= last => nfd,
        _ => cp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        assert!(flags('a' as u32).letter());
        assert!(flags('Z' as u32).letter());
        assert!(flags('7' as u32).number());
        assert!(flags(' ' as u32).whitespace());
        assert!(flags('\t' as u32).whitespace());
        assert!(flags('\t' as u32).control());
        assert!(flags('!' as u32).punctuation());
        assert!(flags('$' as u32).symbol());
        assert!(flags('é' as u32).letter());
        assert!(flags('我' as u32).letter());
        assert!(flags(0x3000).whitespace());
        assert!(flags(0x0301).mark());
        assert!(flags(0x10FFFF).any());
        assert!(!flags(0x1C).whitespace());
        assert_eq!(to_lower('A' as u32), 'a' as u32);
        assert_eq!(to_lower('Ä' as u32), 'ä' as u32);
        assert_eq!(nfd_first('é' as u32), 'e' as u32);
        assert_eq!(nfd_first('x' as u32), 'x' as u32);
    }
}
