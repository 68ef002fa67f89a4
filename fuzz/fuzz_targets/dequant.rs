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
//!
//! The body is `orcd_fuzz::targets::dequant::run` (shared with the `all` binary).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orcd_fuzz::targets::dequant::run(data));
