//! Suite `gguf`: the reader against gguf-py's reading of the same files (every metadata key, type,
//! value bit and array hash; every tensor info), every tensor's dequantization against gguf-py's
//! (sha256 of the f32 bytes: bit-exact), and the malformed-file corpus of `orcd-fixtures`, each
//! file of which must be rejected with its stated error kind.

use orcd_engine::gguf::{encode_value, GgufFile, GgufValue};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::case::Outcome;
use crate::paths;

/// Which file a case reads: an external fixture from the fetch cache, or a synthetic one that
/// `orcd-fixtures` generates deterministically.
#[derive(Debug, Clone, Deserialize)]
pub struct FileRef {
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub fixture: Option<String>,
    /// A small file committed under `goldens/` (path relative to it).
    #[serde(default)]
    pub repo_file: Option<String>,
    pub file_sha256: String,
}

impl FileRef {
    pub fn missing_reason(&self) -> Option<String> {
        let rel = self.file.as_ref()?;
        let p = paths::external(rel);
        (!p.exists()).then(|| format!("external fixture {} not fetched (run `{}`)", p.display(), paths::FETCH_COMMAND))
    }

    pub fn load(&self) -> Result<(GgufFile, String), String> {
        let path = match (&self.file, &self.repo_file) {
            (Some(rel), _) => Some(paths::external(rel)),
            (None, Some(rel)) => Some(paths::goldens_dir().join(rel)),
            _ => None,
        };
        let (bytes_sha, file) = if let Some(p) = path {
            let f = GgufFile::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            (sha256_path(&p)?, f)
        } else if let Some(name) = &self.fixture {
            let bytes = synthetic_fixture(name).ok_or_else(|| format!("unknown synthetic fixture {name:?}"))?;
            let sha = hex(&Sha256::digest(&bytes));
            (sha, GgufFile::from_bytes(bytes).map_err(|e| format!("fixture {name}: {e}"))?)
        } else {
            return Err("case names neither `file` nor `fixture`".into());
        };
        if bytes_sha != self.file_sha256 {
            return Err(format!(
                "the file's sha256 is {bytes_sha}, the golden was recorded on {}: re-fetch the file or re-record \
                 (python3 goldens/recorders/record_gguf.py)",
                self.file_sha256
            ));
        }
        Ok((file, bytes_sha))
    }
}

/// Bytes of a synthetic fixture by name: `valid-seed<N>` or `valid-align<A>-seed<N>`.
pub fn synthetic_fixture(name: &str) -> Option<Vec<u8>> {
    let rest = name.strip_prefix("valid-")?;
    let (align, seed) = match rest.strip_prefix("align") {
        Some(r) => {
            let (a, s) = r.split_once("-seed")?;
            (Some(a.parse::<u32>().ok()?), s.parse::<u64>().ok()?)
        }
        None => (None, rest.strip_prefix("seed")?.parse::<u64>().ok()?),
    };
    let w = match align {
        Some(a) => orcd_fixtures::valid::valid_fixture_aligned(seed, a),
        None => orcd_fixtures::valid::valid_fixture(seed),
    };
    Some(w.to_bytes().0)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256_path(p: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 22];
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("{}: {e}", p.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

#[derive(Debug, Clone, Deserialize)]
pub struct KvGolden {
    pub key: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub value: Option<serde_norway::Value>,
    #[serde(default)]
    pub bits: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TensorInfoGolden {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub dims: Vec<u64>,
    pub offset: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InspectCase {
    pub name: String,
    #[serde(flatten)]
    pub file: FileRef,
    pub version: u32,
    pub alignment: u64,
    pub data_offset: u64,
    pub metadata: Vec<KvGolden>,
    pub tensors: Vec<TensorInfoGolden>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TensorGolden {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub sha256: String,
    pub sum: f64,
    pub first: Vec<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TensorsCase {
    pub name: String,
    #[serde(flatten)]
    pub file: FileRef,
    pub tensors: Vec<TensorGolden>,
}

pub fn run_malformed(bytes: &[u8], expected_kind: &str) -> Outcome {
    match GgufFile::from_bytes(bytes.to_vec()) {
        Ok(_) => Outcome::Fail { message: format!("accepted a malformed file (expected error kind {expected_kind})") },
        Err(e) if e.kind() == expected_kind => Outcome::Pass { detail: format!("rejected: {e}") },
        Err(e) => {
            Outcome::Fail { message: format!("rejected with error kind {} (expected {expected_kind}): {e}", e.kind()) }
        }
    }
}

fn float_bits(v: &GgufValue) -> Option<String> {
    match v {
        GgufValue::F32(x) => Some(format!("0x{:08x}", x.to_bits())),
        GgufValue::F64(x) => Some(format!("0x{:016x}", x.to_bits())),
        _ => None,
    }
}

fn scalar_matches(v: &GgufValue, want: &serde_norway::Value) -> bool {
    match v {
        GgufValue::String(s) => want.as_str() == Some(s.as_str()),
        GgufValue::Bool(b) => want.as_bool() == Some(*b),
        _ => match (v.as_i64(), v.as_u64()) {
            (Some(i), _) if want.as_i64().is_some() => want.as_i64() == Some(i),
            (_, Some(u)) => want.as_u64() == Some(u),
            _ => false,
        },
    }
}

pub fn run_inspect(case: &InspectCase) -> Outcome {
    let (f, _) = match case.file.load() {
        Ok(x) => x,
        Err(message) => return Outcome::Fail { message },
    };
    let mut errs = Vec::new();
    if f.version != case.version {
        errs.push(format!("version {} != gguf-py {}", f.version, case.version));
    }
    if f.alignment != case.alignment {
        errs.push(format!("alignment {} != gguf-py {}", f.alignment, case.alignment));
    }
    if f.data_offset != case.data_offset {
        errs.push(format!("data offset {} != gguf-py {}", f.data_offset, case.data_offset));
    }
    let ours = f.metadata();
    if ours.len() != case.metadata.len() {
        errs.push(format!("{} metadata entries, gguf-py reads {}", ours.len(), case.metadata.len()));
    }
    for (i, ((k, v), g)) in ours.iter().zip(&case.metadata).enumerate() {
        if *k != g.key {
            errs.push(format!("metadata[{i}]: key {k:?}, gguf-py {:?}", g.key));
            continue;
        }
        if v.type_name() != g.ty {
            errs.push(format!("{k}: type {}, gguf-py {}", v.type_name(), g.ty));
            continue;
        }
        if let Some(bits) = &g.bits {
            if float_bits(v).as_deref() != Some(bits.as_str()) {
                errs.push(format!("{k}: float bits {:?}, gguf-py {bits}", float_bits(v)));
            }
        } else if let Some(sha) = &g.sha256 {
            let mut enc = Vec::new();
            encode_value(&mut enc, v);
            let got = hex(&Sha256::digest(&enc[12.min(enc.len())..]));
            if &got != sha {
                errs.push(format!("{k}: array element hash {got}, gguf-py {sha}"));
            }
        } else if let Some(want) = &g.value {
            if !scalar_matches(v, want) {
                errs.push(format!("{k}: value {v}, gguf-py {want:?}"));
            }
        }
    }
    let ts = f.tensors();
    if ts.len() != case.tensors.len() {
        errs.push(format!("{} tensors, gguf-py reads {}", ts.len(), case.tensors.len()));
    }
    for (t, g) in ts.iter().zip(&case.tensors) {
        if t.name != g.name || t.ty.name() != g.ty || t.dims != g.dims || t.offset != g.offset {
            errs.push(format!(
                "tensor info ({}, {}, {:?}, offset {}) != gguf-py ({}, {}, {:?}, offset {})",
                t.name, t.ty, t.dims, t.offset, g.name, g.ty, g.dims, g.offset
            ));
        }
    }
    if errs.is_empty() {
        Outcome::Pass {
            detail: format!("{} metadata entries and {} tensor infos equal gguf-py's", ours.len(), ts.len()),
        }
    } else {
        let n = errs.len();
        errs.truncate(10);
        Outcome::Fail { message: format!("{n} differences from gguf-py (metric: exact):\n    {}", errs.join("\n    ")) }
    }
}

pub fn run_tensors(case: &TensorsCase) -> Outcome {
    let (f, _) = match case.file.load() {
        Ok(x) => x,
        Err(message) => return Outcome::Fail { message },
    };
    let mut errs = Vec::new();
    let mut n_values = 0u64;
    for g in &case.tensors {
        let data = match f.tensor_f32(&g.name) {
            Ok(d) => d,
            Err(e) => {
                errs.push(format!("{} ({}): {e}", g.name, g.ty));
                continue;
            }
        };
        n_values += data.len() as u64;
        let mut h = Sha256::new();
        for chunk in data.chunks(1 << 16) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
            h.update(&bytes);
        }
        let got = hex(&h.finalize());
        if got != g.sha256 {
            let sum: f64 = data.iter().map(|&v| v as f64).sum();
            let first: Vec<f32> = data.iter().take(4).copied().collect();
            errs.push(format!(
                "{} ({}): dequantization differs from gguf-py: sum {sum} vs {}, first {first:?} vs {:?}",
                g.name, g.ty, g.sum, g.first
            ));
        }
    }
    if errs.is_empty() {
        Outcome::Pass { detail: format!("{} tensors, {n_values} values bit-exact with gguf-py", case.tensors.len()) }
    } else {
        let n = errs.len();
        errs.truncate(8);
        Outcome::Fail {
            message: format!(
                "{n} of {} tensors differ from gguf-py (metric: sha256 of f32 bytes, bit-exact):\n    {}",
                case.tensors.len(),
                errs.join("\n    ")
            ),
        }
    }
}

/// The malformed corpus as case inputs: (name, description, bytes, expected kind).
pub fn malformed_cases() -> Vec<(String, String, Vec<u8>, String)> {
    orcd_fixtures::malformed::corpus()
        .into_iter()
        .map(|c| (c.name.to_string(), c.description.to_string(), c.bytes, c.expected_kind.to_string()))
        .collect()
}
