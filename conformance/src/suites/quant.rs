//! Suite `quant`: dequantization and quantization of every block format, bit-exact against
//! gguf-py 0.19.0 (whose `gguf.quants` is itself tested bit-exact against ggml), from goldens
//! recorded by `goldens/recorders/record_quant.py`.

use std::path::{Path, PathBuf};

use orcd_engine::gguf::GgmlType;
use orcd_engine::npy;
use serde::Deserialize;

use super::first_bit_mismatch;
use crate::case::{Backend, Outcome};

/// The YAML case file (paths relative to its folder).
#[derive(Debug, Clone, Deserialize)]
pub struct QuantCaseFile {
    pub name: String,
    pub op: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub shape: Vec<u64>,
    #[serde(default)]
    pub source: String,
    pub input: String,
    #[serde(default)]
    pub expected_quantized: Option<String>,
    pub expected: String,
}

#[derive(Debug, Clone)]
pub struct QuantCase {
    pub file: QuantCaseFile,
    pub dir: PathBuf,
}

fn load(dir: &Path, rel: &str) -> Result<npy::NpyArray, String> {
    npy::read(&dir.join(rel)).map_err(|e| e.to_string())
}

pub fn run(case: &QuantCase, _backend: Backend) -> Outcome {
    match check(case) {
        Ok(detail) => Outcome::Pass { detail },
        Err(message) => Outcome::Fail { message },
    }
}

fn check(case: &QuantCase) -> Result<String, String> {
    let f = &case.file;
    let ty = GgmlType::from_name(&f.ty).ok_or_else(|| format!("unknown type {:?}", f.ty))?;
    let n: u64 = f.shape.iter().product();
    let n = n as usize;
    let input = load(&case.dir, &f.input)?;
    let expected = load(&case.dir, &f.expected)?.to_f32().map_err(|e| e.to_string())?;
    let dequant = |bytes: &[u8]| -> Result<Vec<f32>, String> {
        let mut out = vec![0f32; n];
        orcd_engine::quant::dequantize(ty, bytes, &mut out).map_err(|e| format!("dequantize {ty}: {e}"))?;
        Ok(out)
    };
    match f.op.as_str() {
        "dequantize" => {
            let got = dequant(&input.data)?;
            if let Some(m) = first_bit_mismatch(&got, &expected) {
                return Err(format!("dequantize {ty} (metric: bit-exact vs gguf-py): {m}"));
            }
            Ok(format!("{n} values bit-exact"))
        }
        "quantize" => {
            let src = input.to_f32().map_err(|e| e.to_string())?;
            let want_q =
                load(&case.dir, f.expected_quantized.as_deref().ok_or("quantize case without expected_quantized")?)?;
            let got_q = orcd_engine::quant::quantize(ty, &src).map_err(|e| format!("quantize {ty}: {e}"))?;
            if got_q != want_q.data {
                let bs = ty.type_size();
                let at = got_q
                    .iter()
                    .zip(&want_q.data)
                    .position(|(a, b)| a != b)
                    .unwrap_or(got_q.len().min(want_q.data.len()));
                return Err(format!(
                    "quantize {ty} (metric: bytes bit-exact vs gguf-py): {} bytes vs expected {}; first difference at byte {at} (block {}, byte {} of {bs})",
                    got_q.len(),
                    want_q.data.len(),
                    at / bs,
                    at % bs
                ));
            }
            let got = dequant(&got_q)?;
            if let Some(m) = first_bit_mismatch(&got, &expected) {
                return Err(format!("dequantize of the quantized {ty} (bit-exact vs gguf-py): {m}"));
            }
            Ok(format!("{n} values: bytes and round trip bit-exact"))
        }
        op => Err(format!("unknown op {op:?}")),
    }
}
