//! Where things are: the repository root (goldens/), the fetch cache of external fixtures.

use std::path::PathBuf;

/// The repository root: `$ORCD_ROOT`, else the workspace root this crate was built in, else the
/// current directory (for a remapped nextest archive run from the repository root).
pub fn repo_root() -> PathBuf {
    if let Ok(p) = std::env::var("ORCD_ROOT") {
        return PathBuf::from(p);
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if built.join("goldens").is_dir() {
        return built;
    }
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

pub fn goldens_dir() -> PathBuf {
    repo_root().join("goldens")
}

/// The fetch cache (`fixtures/fetch.py`): `$ORCD_CACHE`, else `~/.cache/orcd`.
pub fn cache_dir() -> PathBuf {
    if let Ok(p) = std::env::var("ORCD_CACHE") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    PathBuf::from(home).join(".cache").join("orcd")
}

/// The command that fetches the external fixtures.
pub const FETCH_COMMAND: &str = "python3 fixtures/fetch.py";

/// An external fixture path relative to the cache (e.g. `models/SmolLM2-135M-Instruct.Q4_1.gguf`).
pub fn external(rel: &str) -> PathBuf {
    cache_dir().join(rel)
}
