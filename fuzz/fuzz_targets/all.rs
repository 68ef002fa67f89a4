//! Every target in one binary, picked by the environment variable `ORCD_FUZZ_TARGET` (a name of
//! `orcd_fuzz::targets::ALL`): the campaign machine gets one binary instead of eight. Coverage
//! counters span all targets' code, but libFuzzer counts only the edges an input reaches, so
//! `cov`/`ft` still measure the chosen target.
#![no_main]

use std::sync::OnceLock;

fn target() -> fn(&[u8]) {
    static T: OnceLock<fn(&[u8])> = OnceLock::new();
    *T.get_or_init(|| {
        let name = std::env::var("ORCD_FUZZ_TARGET").unwrap_or_default();
        match orcd_fuzz::targets::ALL.iter().find(|(n, _)| *n == name) {
            Some((_, f)) => *f,
            None => panic!(
                "ORCD_FUZZ_TARGET={name:?}: not one of {:?}",
                orcd_fuzz::targets::ALL.iter().map(|t| t.0).collect::<Vec<_>>()
            ),
        }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| target()(data));
