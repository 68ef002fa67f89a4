//! The conformance suites as tests: one libtest-mimic trial per case × backend, named
//! `suite::case::backend` (select with `cargo nextest run -E 'test(/q4_k/)'`). A case that cannot
//! run here is an ignored trial (reported as skipped, never as passed); its reason is printed.
//! With `ORCD_RESULTS_DIR` set, every trial also writes its result as JSON there, for merged reports.

use libtest_mimic::{Arguments, Failed, Trial};
use orcd_conformance::case::run_case;
use orcd_conformance::{discover, paths, Outcome};

fn main() {
    let args = Arguments::from_args();
    let cases = match discover::discover(&paths::goldens_dir()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: case discovery failed: {e}");
            std::process::exit(2);
        }
    };
    let results_dir = std::env::var_os("ORCD_RESULTS_DIR").map(std::path::PathBuf::from);
    let mut trials = Vec::new();
    for case in cases {
        for &backend in &case.backends.clone() {
            let id = case.id(backend);
            let not_run = case.not_run_reason(backend);
            let case = case.clone();
            let dir = results_dir.clone();
            let trial = Trial::test(id.clone(), move || {
                let r = run_case(&case, backend);
                if let Some(dir) = dir {
                    let _ = std::fs::create_dir_all(&dir);
                    let file = dir.join(format!("{}.json", r.id.replace("::", "__")));
                    let _ = std::fs::write(file, serde_json::to_vec(&r).unwrap_or_default());
                }
                match r.outcome {
                    Outcome::Pass { .. } => Ok(()),
                    Outcome::Fail { message } => Err(Failed::from(message)),
                    Outcome::NotRun { reason } => Err(Failed::from(format!("NOT RUN (counted as failure): {reason}"))),
                }
            });
            let trial = match not_run {
                Some(reason) => {
                    if !args.list {
                        eprintln!("not run: {id}: {reason}");
                    }
                    trial.with_ignored_flag(true)
                }
                None => trial,
            };
            trials.push(trial);
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
