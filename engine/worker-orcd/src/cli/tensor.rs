//! `worker-orcd tensor FILE NAME --out OUT.npy`: one tensor dequantized to f32.

use std::io::Write;

use super::open;
use crate::{npy, Error, Result};

pub(super) fn tensor(path: &std::path::Path, name: &str, out: &std::path::Path) -> Result<()> {
    let f = open(path)?;
    let t = f.tensor(name)?;
    let shape = t.numpy_shape();
    let data = f.tensor_f32(name)?;
    let file = std::fs::File::create(out).map_err(|e| Error::io(out, e))?;
    let mut w = std::io::BufWriter::new(file);
    npy::write_f32(&mut w, &shape, &data).map_err(|e| Error::io(out, e))?;
    w.flush().map_err(|e| Error::io(out, e))
}
