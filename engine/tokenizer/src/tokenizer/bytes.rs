//! The GPT-2 byte-level alphabet: every byte value gets a printable code point, so that byte-level
//! BPE vocabularies can be stored as text. Printable Latin-1 bytes keep their own code point; the
//! 68 others (controls, space, DEL, NBSP, soft hyphen) are numbered from U+0100 in byte order.

const fn keeps_own_code_point(b: u8) -> bool {
    matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF)
}

const BYTE_TO_CHAR: [char; 256] = {
    let mut table = ['\0'; 256];
    let mut next = 0x100u32;
    let mut b = 0usize;
    while b < 256 {
        let cp = if keeps_own_code_point(b as u8) {
            b as u32
        } else {
            let cp = next;
            next += 1;
            cp
        };
        // Every value here is below U+0180, a valid scalar value.
        table[b] = match char::from_u32(cp) {
            Some(c) => c,
            None => '\0',
        };
        b += 1;
    }
    table
};

/// Highest code point of the alphabet (U+0100 + 67).
const MAX_ALPHABET_CP: usize = 0x143;

const CHAR_TO_BYTE: [i16; MAX_ALPHABET_CP + 1] = {
    let mut table = [-1i16; MAX_ALPHABET_CP + 1];
    let mut b = 0usize;
    while b < 256 {
        table[BYTE_TO_CHAR[b] as usize] = b as i16;
        b += 1;
    }
    table
};

/// The alphabet character standing for byte `b`.
#[inline]
pub(crate) fn byte_to_char(b: u8) -> char {
    BYTE_TO_CHAR[b as usize]
}

/// The byte an alphabet character stands for, `None` for characters outside the alphabet.
#[inline]
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    match CHAR_TO_BYTE.get(c as usize) {
        Some(&b) if b >= 0 => Some(b as u8),
        _ => None,
    }
}

/// Append the byte-level encoding of `bytes` to `out`.
pub(crate) fn encode_into(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(byte_to_char(b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_is_a_bijection() {
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            let c = byte_to_char(b);
            assert!(seen.insert(c));
            assert_eq!(char_to_byte(c), Some(b));
        }
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'a'), 'a');
        assert_eq!(byte_to_char(0xAD), 'Ń');
        assert_eq!(char_to_byte('€'), None);
    }
}
