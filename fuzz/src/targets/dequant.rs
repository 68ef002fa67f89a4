//! Fuzz target: dequantization of every ggml type the engine reads, from a fuzzed file.
//!
//! Two modes, picked by the input:
//! - an input starting with `GGUF` is a file: every tensor the reader accepts is dequantized with
//!   `GgufFile::tensor_f32` (the seeds hold one tensor of each dequantizable type, so mutations
//!   reach each block decoder through the reader's size checks);
//! - otherwise the first byte picks a type id and the rest is its raw block data:
//!   `quant::dequantize` of as many elements as whole blocks fit, plus a call with a length that
//!   is not a whole number of blocks and one whose byte count disagrees (both must be typed
//!   errors).
//!
//! Properties: no panic, no read outside the data, and the output length is what was asked.

use orcd_gguf::gguf::{GgmlType, GgufFile};
use orcd_gguf::quant;

pub fn run(data: &[u8]) {
    if data.starts_with(b"GGUF") {
        let Ok(f) = GgufFile::from_bytes(data.to_vec()) else { return };
        for t in f.tensors() {
            match f.tensor_f32(&t.name) {
                Ok(v) => assert_eq!(v.len() as u64, t.n_elements),
                Err(e) => assert!(!e.to_string().contains('\n')),
            }
        }
        return;
    }
    let Some((&id, body)) = data.split_first() else { return };
    // Ids past the table are tried too (they must be rejected): wrap at 64.
    let Some(ty) = GgmlType::from_id(u32::from(id % 64)) else { return };
    let (bs, ts) = (ty.block_size(), ty.type_size());
    if bs == 0 || ts == 0 {
        return;
    }
    let blocks = body.len() / ts;
    let n = blocks * bs;
    let mut out = vec![f32::NAN; n];
    let r = quant::dequantize(ty, &body[..blocks * ts], &mut out);
    assert_eq!(r.is_ok(), quant::can_dequantize(ty), "{ty:?}: {r:?}");
    if bs > 1 && n > 0 {
        let mut short = vec![0.0f32; n - 1];
        assert!(quant::dequantize(ty, &body[..blocks * ts], &mut short).is_err());
    }
    if blocks * ts < body.len() {
        assert!(quant::dequantize(ty, body, &mut out).is_err());
    }
}
