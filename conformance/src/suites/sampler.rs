//! Suite `sampler` (being written): llama.cpp's test-sampling.cpp cases as goldens.

use serde::Deserialize;

use crate::case::{Backend, Outcome};

/// One sampler case file (schema owned by this suite).
#[derive(Debug, Clone, Deserialize)]
pub struct SamplerCase {
    pub name: String,
}

pub fn run(_case: &SamplerCase, _backend: Backend) -> Outcome {
    Outcome::Fail { message: "sampler suite runner not written yet".into() }
}
