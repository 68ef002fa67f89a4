//! Weights of the 32-element types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) repacked at load into panels
//! of 4 rows, so that the SIMD kernels read one contiguous stream and do less unpacking per row:
//! the 4 rows' f16 scales (and mins) of a block sit together (one conversion for all), and the
//! 4-bit codes of two rows share the bytes (`row a | row b << 4`, in element order), so a mask
//! and a shift give each row's 32 codes. Q8_0 codes are stored `+ 128` (as u8) where AVX-VNNI
//! multiplies them (`vpdpbusd` is u8 × i8; the offset is taken out exactly with the activation's
//! lane sums). The integer lane sums are those of the row kernels, so results are bit-identical
//! to them (tested) and to llama.cpp.
//!
//! Panel-block layout (4 rows, one 32-element block), bytes:
//! - Q4_0: d[4] (f16) · pairs(r0,r1) [32] · pairs(r2,r3) [32]                 = 72 = 4 × 18
//! - Q4_1: d[4] · m[4] · pairs · pairs                                         = 80 = 4 × 20
//! - Q5_0: d[4] · qh[4] (u32 LE) · pairs · pairs                               = 88 = 4 × 22
//! - Q5_1: d[4] · m[4] · qh[4] · pairs · pairs                                 = 96 = 4 × 24
//! - Q8_0: d[4] · q[4][32]                                                     = 136 = 4 × 34
//!
//! A panel holds all blocks of its 4 rows in order; rows past the last whole panel stay in the
//! GGUF layout (`tail`).

use crate::gguf::GgmlType;

/// Rows per panel.
pub const PR: usize = 4;

/// How a panel's Q8_0 codes are stored, which picks the kernel's form of ggml's integer sums
/// (the same integers in each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Q8Codes {
    /// `+ 128` (u8): `vpdpbusd` straight on them, the offset taken out with the activation's sums.
    Biased,
    /// As in the file: `|w| · sign(y, w)` a pair.
    Signed,
    /// As in the file, no code −128: `|y| · sign(w, y)`, `|y|` once per activation block.
    SignedNoMin,
}

/// A repacked weight matrix.
#[derive(Debug, Clone)]
pub struct Panels {
    pub ty: GgmlType,
    /// Blocks per row.
    pub nb: usize,
    /// Whole panels.
    pub n_panels: usize,
    /// Rows in `tail` (GGUF layout), after the panels.
    pub tail_rows: usize,
    /// Q8_0 codes stored + 128 (the VNNI kernels).
    pub biased: bool,
    /// Q8_0 (signed codes) with no code −128: the AVX2 kernel may then put ggml's sign trick on
    /// the activation (`|y| · sign(w, y)`, one `abs` per activation block instead of one per
    /// pair) and get the same products; −128 has no positive twin in i8, so such a matrix keeps
    /// the weight-side trick.
    pub no_min_code: bool,
    /// The panels (a huge-page mapping when large: decode streams them).
    pub data: crate::pages::WeightBytes,
    pub tail: Vec<u8>,
}

/// The 4-bit code of element `j` of a Q4/Q5 block's `qs` (low nibbles: elements 0..16).
#[inline]
fn nib(qs: &[u8], j: usize) -> u8 {
    if j < 16 {
        qs[j] & 15
    } else {
        qs[j - 16] >> 4
    }
}

/// Inverse of [`nib`]: the 16 `qs` bytes from 32 codes.
fn qs_from_codes(c: &[u8; 32]) -> [u8; 16] {
    std::array::from_fn(|j| c[j] | (c[j + 16] << 4))
}

/// Offsets in a GGUF block: (d, m, qh, qs) — `usize::MAX` where absent.
fn fields(ty: GgmlType) -> Option<(usize, usize, usize, usize)> {
    const NO: usize = usize::MAX;
    Some(match ty {
        GgmlType::Q4_0 => (0, NO, NO, 2),
        GgmlType::Q4_1 => (0, 2, NO, 4),
        GgmlType::Q5_0 => (0, NO, 2, 6),
        GgmlType::Q5_1 => (0, 2, 4, 8),
        GgmlType::Q8_0 => (0, NO, NO, 2),
        _ => return None,
    })
}

/// Whether `ty` is repacked.
pub fn supported(ty: GgmlType) -> bool {
    fields(ty).is_some()
}

impl Panels {
    /// Bytes of one panel-block.
    pub fn pbs(&self) -> usize {
        PR * self.ty.type_size()
    }

    /// Bytes of one panel.
    pub fn panel_bytes(&self) -> usize {
        self.nb * self.pbs()
    }

    /// Repack `m` rows of `nb` blocks (`raw`: GGUF layout). `None` for other types.
    pub fn new(ty: GgmlType, raw: &[u8], nb: usize, m: usize, biased: bool) -> Option<Panels> {
        let (od, om, oh, oq) = fields(ty)?;
        let ts = ty.type_size();
        let rb = nb * ts;
        if raw.len() != rb * m {
            return None;
        }
        let n_panels = m / PR;
        let mut data = Vec::with_capacity(n_panels * PR * rb);
        for p in 0..n_panels {
            for b in 0..nb {
                let blk = |r: usize| &raw[(p * PR + r) * rb + b * ts..(p * PR + r) * rb + (b + 1) * ts];
                for r in 0..PR {
                    data.extend_from_slice(&blk(r)[od..od + 2]);
                }
                if om != usize::MAX {
                    for r in 0..PR {
                        data.extend_from_slice(&blk(r)[om..om + 2]);
                    }
                }
                if oh != usize::MAX {
                    for r in 0..PR {
                        data.extend_from_slice(&blk(r)[oh..oh + 4]);
                    }
                }
                if ty == GgmlType::Q8_0 {
                    for r in 0..PR {
                        data.extend(blk(r)[oq..oq + 32].iter().map(|&q| if biased { q ^ 0x80 } else { q }));
                    }
                } else {
                    for pair in 0..PR / 2 {
                        let (a, c) = (blk(2 * pair), blk(2 * pair + 1));
                        data.extend((0..32).map(|j| nib(&a[oq..], j) | (nib(&c[oq..], j) << 4)));
                    }
                }
            }
        }
        let no_min_code = ty == GgmlType::Q8_0
            && !biased
            && (0..m * nb).all(|b| raw[b * ts + oq..b * ts + oq + 32].iter().all(|&q| q != 0x80));
        Some(Panels {
            ty,
            nb,
            n_panels,
            tail_rows: m - n_panels * PR,
            biased: biased && ty == GgmlType::Q8_0,
            no_min_code,
            data: data.into(),
            tail: raw[n_panels * PR * rb..].to_vec(),
        })
    }

    /// Row `r` in the GGUF layout (`out`: `nb * type_size` bytes).
    pub fn row(&self, r: usize, out: &mut [u8]) {
        let ts = self.ty.type_size();
        let rb = self.nb * ts;
        if r >= self.n_panels * PR {
            let t = r - self.n_panels * PR;
            out.copy_from_slice(&self.tail[t * rb..(t + 1) * rb]);
            return;
        }
        let Some((od, om, oh, oq)) = fields(self.ty) else { return };
        let (p, i) = (r / PR, r % PR);
        let pbs = self.pbs();
        for b in 0..self.nb {
            let src = &self.data[p * self.panel_bytes() + b * pbs..][..pbs];
            let dst = &mut out[b * ts..(b + 1) * ts];
            dst[od..od + 2].copy_from_slice(&src[2 * i..2 * i + 2]);
            let mut at = 8;
            if om != usize::MAX {
                dst[om..om + 2].copy_from_slice(&src[at + 2 * i..at + 2 * i + 2]);
                at += 8;
            }
            if oh != usize::MAX {
                dst[oh..oh + 4].copy_from_slice(&src[at + 4 * i..at + 4 * i + 4]);
                at += 16;
            }
            if self.ty == GgmlType::Q8_0 {
                for (d, &q) in dst[oq..oq + 32].iter_mut().zip(&src[at + 32 * i..at + 32 * i + 32]) {
                    *d = if self.biased { q ^ 0x80 } else { q };
                }
            } else {
                let pair = &src[at + 32 * (i / 2)..at + 32 * (i / 2) + 32];
                let c: [u8; 32] = std::array::from_fn(|j| if i % 2 == 0 { pair[j] & 15 } else { pair[j] >> 4 });
                dst[oq..oq + 16].copy_from_slice(&qs_from_codes(&c));
            }
        }
    }

    /// How the Q8_0 codes are stored (other types: `Signed`, unused).
    pub fn q8_codes(&self) -> Q8Codes {
        if self.biased {
            Q8Codes::Biased
        } else if self.no_min_code {
            Q8Codes::SignedNoMin
        } else {
            Q8Codes::Signed
        }
    }

    /// Panel `p`'s bytes.
    pub fn panel(&self, p: usize) -> &[u8] {
        &self.data[p * self.panel_bytes()..(p + 1) * self.panel_bytes()]
    }

    /// Tail row `t` (GGUF layout).
    pub fn tail_row(&self, t: usize) -> &[u8] {
        let rb = self.nb * self.ty.type_size();
        &self.tail[t * rb..(t + 1) * rb]
    }
}
