//! Minimal NumPy `.npy` (format 1.0) reading and writing for little-endian, C-order arrays of
//! `f32`, `u8` and `i32` — the interchange format of goldens and of `worker-orcd tensor`.
//!
//! Invariant: reading never trusts the header: the shape product is checked against the payload
//! length before anything is allocated.

use std::io::Write;
use std::path::PathBuf;

/// Why an `.npy` file could not be read or interpreted.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The bytes are not an array this module reads (header, dtype, shape, payload length), or
    /// the array is not of the dtype asked for. The message names what is wrong (and the file).
    #[error("npy: {0}")]
    Format(String),
}

type Result<T, E = NpyError> = std::result::Result<T, E>;

/// Element types we exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyDtype {
    F32,
    U8,
    I32,
}

impl NpyDtype {
    fn descr(self) -> &'static str {
        match self {
            NpyDtype::F32 => "<f4",
            NpyDtype::U8 => "|u1",
            NpyDtype::I32 => "<i4",
        }
    }
    fn size(self) -> usize {
        match self {
            NpyDtype::F32 | NpyDtype::I32 => 4,
            NpyDtype::U8 => 1,
        }
    }
}

/// A parsed array: raw little-endian payload plus dtype and shape.
#[derive(Debug, Clone)]
pub struct NpyArray {
    pub dtype: NpyDtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl NpyArray {
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// The payload as f32 values; error if the dtype is not `<f4`.
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        if self.dtype != NpyDtype::F32 {
            return Err(NpyError::Format(format!("expected <f4, found {}", self.dtype.descr())));
        }
        Ok(self.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
    pub fn to_i32(&self) -> Result<Vec<i32>> {
        if self.dtype != NpyDtype::I32 {
            return Err(NpyError::Format(format!("expected <i4, found {}", self.dtype.descr())));
        }
        Ok(self.data.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

fn header(dtype: NpyDtype, shape: &[usize]) -> Vec<u8> {
    let shape_s = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut dict = format!("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", dtype.descr(), shape_s);
    // magic(6) + version(2) + len(2) + dict + '\n' must be a multiple of 64.
    let total = 10 + dict.len() + 1;
    let pad = (64 - total % 64) % 64;
    dict.push_str(&" ".repeat(pad));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Write an f32 array with the given shape.
pub fn write_f32(w: &mut impl Write, shape: &[usize], data: &[f32]) -> std::io::Result<()> {
    w.write_all(&header(NpyDtype::F32, shape))?;
    let mut buf = Vec::with_capacity(data.len().min(1 << 20) * 4);
    for chunk in data.chunks(1 << 20) {
        buf.clear();
        for v in chunk {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

/// Write raw bytes as a 1-D `u8` array.
pub fn write_u8(w: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    w.write_all(&header(NpyDtype::U8, &[data.len()]))?;
    w.write_all(data)
}

/// Parse an `.npy` file's bytes (format 1.0 or 2.0, little-endian, C order).
pub fn parse(bytes: &[u8]) -> Result<NpyArray> {
    let bad = |m: &str| NpyError::Format(m.to_string());
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not an .npy file (bad magic)"));
    }
    let (hlen, hstart): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(NpyError::Format(format!("unsupported .npy version {v}"))),
    };
    let hend = hstart.checked_add(hlen).filter(|&e| e <= bytes.len()).ok_or_else(|| bad("header past end"))?;
    let h = std::str::from_utf8(&bytes[hstart..hend]).map_err(|_| bad("header not UTF-8"))?;
    let dtype = if h.contains("'<f4'") {
        NpyDtype::F32
    } else if h.contains("'|u1'") || h.contains("'<u1'") {
        NpyDtype::U8
    } else if h.contains("'<i4'") {
        NpyDtype::I32
    } else {
        return Err(NpyError::Format(format!("unsupported dtype in header {h:?}")));
    };
    if h.contains("'fortran_order': True") {
        return Err(bad("fortran order not supported"));
    }
    let s0 = h.find("'shape': (").ok_or_else(|| bad("no shape"))? + 10;
    let s1 = s0 + h[s0..].find(')').ok_or_else(|| bad("unterminated shape"))?;
    let mut shape = Vec::new();
    for part in h[s0..s1].split(',').map(str::trim).filter(|p| !p.is_empty()) {
        shape.push(part.parse::<usize>().map_err(|_| NpyError::Format(format!("bad dim {part:?}")))?);
    }
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| bad("shape overflows"))?;
    let nbytes = n.checked_mul(dtype.size()).ok_or_else(|| bad("shape overflows"))?;
    if bytes.len() - hend != nbytes {
        return Err(NpyError::Format(format!("payload is {} bytes, shape needs {nbytes}", bytes.len() - hend)));
    }
    Ok(NpyArray { dtype, shape, data: bytes[hend..].to_vec() })
}

/// Read and parse an `.npy` file.
pub fn read(path: &std::path::Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io { path: path.to_path_buf(), source })?;
    parse(&bytes).map_err(|e| match e {
        NpyError::Format(m) => NpyError::Format(format!("{}: {m}", path.display())),
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_f32_2d() -> Result<()> {
        let mut buf = Vec::new();
        let data = [1.0f32, -2.5, 3.25, f32::MIN_POSITIVE, 0.0, -0.0];
        write_f32(&mut buf, &[2, 3], &data).map_err(|e| NpyError::Format(e.to_string()))?;
        assert_eq!(buf.len() % 64, 24, "header is 64-aligned; payload 24 bytes");
        let a = parse(&buf)?;
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(
            a.to_f32()?.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        Ok(())
    }

    #[test]
    fn rejects_short_payload() {
        let mut buf = Vec::new();
        write_u8(&mut buf, &[1, 2, 3]).ok();
        buf.pop();
        assert!(parse(&buf).is_err());
    }
}
