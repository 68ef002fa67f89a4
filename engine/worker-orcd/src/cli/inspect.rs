//! `worker-orcd inspect FILE [--json]`: the metadata and tensor table of a GGUF file.

use std::io::Write;

use super::{open, stdout_err};
use crate::gguf::{GgufFile, GgufValue};
use crate::{Error, Result};

pub(super) fn inspect(path: &std::path::Path, json: bool) -> Result<()> {
    let f = open(path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if json {
        let v = inspect_json(&f, path);
        serde_json::to_writer(&mut out, &v).map_err(|e| Error::Invalid(e.to_string()))?;
        writeln!(out).map_err(stdout_err)?;
    } else {
        write!(out, "{}", inspect_text(&f, path)).map_err(stdout_err)?;
    }
    out.flush().map_err(stdout_err)
}

/// JSON form of a value: numbers, strings, booleans, nested arrays (non-finite floats as strings).
pub fn value_json(v: &GgufValue) -> serde_json::Value {
    use serde_json::Value as J;
    let float = |x: f64| serde_json::Number::from_f64(x).map(J::Number).unwrap_or_else(|| J::String(format!("{x}")));
    match v {
        GgufValue::U8(x) => J::from(*x),
        GgufValue::I8(x) => J::from(*x),
        GgufValue::U16(x) => J::from(*x),
        GgufValue::I16(x) => J::from(*x),
        GgufValue::U32(x) => J::from(*x),
        GgufValue::I32(x) => J::from(*x),
        GgufValue::U64(x) => J::from(*x),
        GgufValue::I64(x) => J::from(*x),
        GgufValue::F32(x) => float(*x as f64),
        GgufValue::F64(x) => float(*x),
        GgufValue::Bool(x) => J::from(*x),
        GgufValue::String(s) => J::from(s.as_str()),
        GgufValue::Array(_, items) => J::Array(items.iter().map(value_json).collect()),
    }
}

/// The `inspect --json` object (a public schema: keys are stable).
pub fn inspect_json(f: &GgufFile, path: &std::path::Path) -> serde_json::Value {
    let metadata: Vec<_> = f
        .metadata()
        .iter()
        .map(|(k, v)| serde_json::json!({"key": k, "type": v.type_name(), "value": value_json(v)}))
        .collect();
    let tensors: Vec<_> = f
        .tensors()
        .iter()
        .map(|t| {
            serde_json::json!({
                "name": t.name, "type": t.ty.name(), "dims": t.dims,
                "offset": t.offset, "n_elements": t.n_elements, "n_bytes": t.n_bytes,
            })
        })
        .collect();
    serde_json::json!({
        "file": path.display().to_string(),
        "file_size": f.file_len(),
        "version": f.version,
        "alignment": f.alignment,
        "data_offset": f.data_offset,
        "n_kv": f.metadata().len(),
        "n_tensors": f.tensors().len(),
        "metadata": metadata,
        "tensors": tensors,
    })
}

/// The human-readable metadata dump and tensor table.
pub fn inspect_text(f: &GgufFile, path: &std::path::Path) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let total: u64 = f.tensors().iter().map(|t| t.n_bytes).sum();
    let params: u64 = f.tensors().iter().map(|t| t.n_elements).sum();
    let _ = writeln!(s, "file:        {}", path.display());
    let _ = writeln!(
        s,
        "gguf:        version {}, alignment {}, {} metadata entries, {} tensors, data at byte {}",
        f.version,
        f.alignment,
        f.metadata().len(),
        f.tensors().len(),
        f.data_offset
    );
    let _ = writeln!(s, "size:        {} bytes; tensors {} bytes, {} elements", f.file_len(), total, params);
    let _ = writeln!(s, "\nmetadata:");
    let kw = f.metadata().iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in f.metadata() {
        let _ = writeln!(s, "  {k:kw$}  {:<22} {v}", v.type_name());
    }
    let _ = writeln!(s, "\ntensors:");
    let nw = f.tensors().iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(s, "  {:nw$}  {:<7} {:<24} {:>12} {:>12}", "name", "type", "dims (ne0 first)", "offset", "bytes");
    for t in f.tensors() {
        let dims = format!("{:?}", t.dims);
        let _ = writeln!(s, "  {:nw$}  {:<7} {:<24} {:>12} {:>12}", t.name, t.ty.name(), dims, t.offset, t.n_bytes);
    }
    let mut by_type: std::collections::BTreeMap<&str, (usize, u64)> = Default::default();
    for t in f.tensors() {
        let e = by_type.entry(t.ty.name()).or_default();
        e.0 += 1;
        e.1 += t.n_bytes;
    }
    let _ = writeln!(s, "\ntypes:");
    for (ty, (n, b)) in by_type {
        let _ = writeln!(s, "  {ty:<7} {n:>5} tensors {b:>12} bytes");
    }
    s
}
