//! Every case of `goldens/quant/*.yaml` (recorded with gguf-py by
//! `goldens/recorders/record_quant.py`) checked bit-exact: dequantization of the recorded blocks,
//! and for quantize cases the quantized bytes plus the dequantization of those bytes.
//!
//! The conformance harness runs the same cases; this test is the quant module's development loop.
//! Case files are read with a line parser (the schema is flat `key: value`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use orcd_gguf::gguf::GgmlType;
use orcd_gguf::{npy, quant};

fn goldens_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../goldens/quant")
}

/// `key: value` lines; comments and blank lines skipped, double quotes removed.
fn parse_case(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            let v = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
                None => v.to_string(),
            };
            out.insert(k.trim().to_string(), v);
        }
    }
    out
}

fn field<'a>(case: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str, String> {
    case.get(key).map(String::as_str).ok_or_else(|| format!("missing field {key:?}"))
}

fn parse_shape(s: &str) -> Result<Vec<usize>, String> {
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|d| d.trim().parse::<usize>().map_err(|e| format!("shape {s:?}: {e}")))
        .collect()
}

fn load(dir: &Path, rel: &str) -> Result<npy::NpyArray, String> {
    npy::read(&dir.join(rel)).map_err(|e| format!("{rel}: {e}"))
}

/// The first index whose bits differ, described.
fn first_mismatch(got: &[f32], want: &[f32]) -> Option<String> {
    if got.len() != want.len() {
        return Some(format!("{} values, expected {}", got.len(), want.len()));
    }
    let i = got.iter().zip(want).position(|(a, b)| a.to_bits() != b.to_bits())?;
    Some(format!(
        "first mismatch at index {i}: got {} ({:#010x}), expected {} ({:#010x})",
        got[i],
        got[i].to_bits(),
        want[i],
        want[i].to_bits()
    ))
}

fn check_case(path: &Path) -> Result<(String, GgmlType), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case = parse_case(&text);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = field(&case, "name")?.to_string();
    if field(&case, "suite")? != "quant" {
        return Err("suite is not quant".into());
    }
    if field(&case, "tolerance")? != "bit-exact" {
        return Err("tolerance is not bit-exact".into());
    }
    let ty_name = field(&case, "type")?;
    let ty = GgmlType::from_name(ty_name).ok_or_else(|| format!("unknown type {ty_name}"))?;
    let n: usize = parse_shape(field(&case, "shape")?)?.iter().product();
    let input = load(dir, field(&case, "input")?)?;
    let expected = load(dir, field(&case, "expected")?)?.to_f32().map_err(|e| e.to_string())?;
    let dequant = |bytes: &[u8]| -> Result<Vec<f32>, String> {
        let mut out = vec![0f32; n];
        quant::dequantize(ty, bytes, &mut out).map_err(|e| format!("dequantize: {e}"))?;
        Ok(out)
    };
    match field(&case, "op")? {
        "dequantize" => {
            let got = dequant(&input.data)?;
            if let Some(m) = first_mismatch(&got, &expected) {
                return Err(format!("dequantize: {m}"));
            }
        }
        "quantize" => {
            let src = input.to_f32().map_err(|e| e.to_string())?;
            let want = load(dir, field(&case, "expected_quantized")?)?.data;
            let got = quant::quantize(ty, &src).map_err(|e| format!("quantize: {e}"))?;
            if got != want {
                let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
                let ts = ty.type_size();
                let (g, w) = (got.get(at).copied(), want.get(at).copied());
                return Err(format!(
                    "quantize: {} bytes, expected {}; first mismatch at byte {at} (block {}, byte {} of {ts}): \
                     got {g:?}, expected {w:?}; block {} starts at element {}",
                    got.len(),
                    want.len(),
                    at / ts,
                    at % ts,
                    at / ts,
                    at / ts * ty.block_size()
                ));
            }
            if let Some(m) = first_mismatch(&dequant(&got)?, &expected) {
                return Err(format!("dequantize of the quantized bytes: {m}"));
            }
        }
        op => return Err(format!("unknown op {op:?}")),
    }
    Ok((name, ty))
}

#[test]
fn quant_goldens_are_bit_exact() {
    let dir = goldens_dir();
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => {
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension() == Some("yaml".as_ref())).collect()
        }
        Err(e) => panic!("{}: {e} (record with python3 goldens/recorders/record_quant.py)", dir.display()),
    };
    paths.sort();
    assert!(!paths.is_empty(), "no cases in {}", dir.display());
    let mut failures = Vec::new();
    let mut per_type: BTreeMap<String, usize> = BTreeMap::new();
    for p in &paths {
        let file = p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        match check_case(p) {
            Ok((_, ty)) => *per_type.entry(ty.name().to_string()).or_default() += 1,
            Err(e) => failures.push(format!("{file}: {e}")),
        }
    }
    eprintln!("quant goldens: {} cases passed: {per_type:?}", paths.len() - failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} quant goldens failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}
