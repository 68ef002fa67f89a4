//! `worker-orcd serve`: the HTTP server (orcd-server) on the model given or the default one. The
//! address is printed on stderr once listening (`listening on http://ADDR`), so scripts and tests
//! that pass port 0 learn the port; the process ends after SIGTERM/SIGINT once running requests
//! have finished.

use std::time::Duration;

use super::{default_model, ServeArgs};
use crate::{Error, Result};

pub(super) fn serve(a: &ServeArgs) -> Result<()> {
    let model = match &a.model {
        Some(p) => p.clone(),
        None => default_model()?,
    };
    let mut cfg = orcd_server::ServeConfig::new(model, super::column(a.backend, a.numerics));
    cfg.addr = a.addr;
    cfg.parallel = a.parallel;
    cfg.queue = a.queue;
    cfg.ctx = a.ctx;
    cfg.api_key = a.api_key.clone().or_else(|| std::env::var("ORCD_API_KEY").ok()).filter(|k| !k.is_empty());
    cfg.timeout = Duration::try_from_secs_f64(a.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| Error::Invalid(format!("--timeout must be a positive number of seconds, not {}", a.timeout)))?;
    cfg.prefix_cache = !a.no_prefix_cache;
    orcd_server::serve(cfg, |addr| eprintln!("worker-orcd serve: listening on http://{addr}"))
        .map_err(|e| Error::Invalid(e.to_string()))
}
