//! `orcd-gate`: run the conformance suites and write the reports.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use orcd_conformance::case::run_case;
use orcd_conformance::report::Report;
use orcd_conformance::{discover, paths, Backend, Outcome};

#[derive(Debug, Parser)]
#[command(name = "orcd-gate", version, about = "worker-orcd conformance gate: run suites, write reports")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every case (or a selection) and write report.md, report.json, junit.xml.
    Run {
        /// Output folder for the reports.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// Only suites with these names (repeatable).
        #[arg(long)]
        suite: Vec<String>,
        /// Only cases whose id contains this substring.
        #[arg(long)]
        filter: Option<String>,
        /// Folder of goldens (default: the repository's goldens/).
        #[arg(long)]
        goldens: Option<PathBuf>,
    },
    /// List the cases that `run` would run, with not-run reasons.
    List {
        #[arg(long)]
        goldens: Option<PathBuf>,
    },
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::*;
            if matches!(e.kind(), DisplayHelp | DisplayVersion) {
                let _ = write!(std::io::stdout(), "{e}");
                std::process::exit(0);
            }
            let msg = e.to_string();
            eprintln!("error: {}", msg.lines().next().unwrap_or("").trim_start_matches("error: "));
            std::process::exit(2);
        }
    };
    let code = match cli.command {
        Command::Run { out, suite, filter, goldens } => run(out, suite, filter, goldens),
        Command::List { goldens } => list(goldens),
    };
    std::process::exit(code);
}

fn cases(goldens: Option<PathBuf>) -> Result<Vec<orcd_conformance::Case>, i32> {
    let dir = goldens.unwrap_or_else(paths::goldens_dir);
    discover::discover(&dir).map_err(|e| {
        eprintln!("error: {e}");
        2
    })
}

fn list(goldens: Option<PathBuf>) -> i32 {
    let cases = match cases(goldens) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for c in &cases {
        for &b in &c.backends {
            match c.not_run_reason(b) {
                Some(r) => println!("{}  (not run: {r})", c.id(b)),
                None => println!("{}", c.id(b)),
            }
        }
    }
    0
}

fn git_commit() -> Option<String> {
    let out =
        std::process::Command::new("git").args(["rev-parse", "HEAD"]).current_dir(paths::repo_root()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn run(out: PathBuf, suites: Vec<String>, filter: Option<String>, goldens: Option<PathBuf>) -> i32 {
    let all = match cases(goldens) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let selected: Vec<(usize, Backend)> = all
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.backends.iter().map(move |&b| (i, b)))
        .filter(|&(i, _)| suites.is_empty() || suites.contains(&all[i].suite))
        .filter(|&(i, b)| filter.as_ref().is_none_or(|f| all[i].id(b).contains(f.as_str())))
        .collect();
    eprintln!("orcd-gate: {} cases selected", selected.len());
    let started = std::time::Instant::now();
    let mut results = Vec::with_capacity(selected.len());
    for (k, &(i, b)) in selected.iter().enumerate() {
        let r = run_case(&all[i], b);
        let mark = match &r.outcome {
            Outcome::Pass { .. } => "pass".to_string(),
            Outcome::Fail { .. } => "FAIL".to_string(),
            Outcome::NotRun { reason } => format!("not run: {reason}"),
        };
        eprintln!("[{:>4}/{}] {} ... {} ({:.0} ms)", k + 1, selected.len(), r.id, mark, r.duration_ms);
        if let Outcome::Fail { message } = &r.outcome {
            eprintln!("    {}", message.replace('\n', "\n    "));
        }
        results.push(r);
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let report = Report::new(results, git_commit(), now);
    if let Err(e) = report.write(&out) {
        eprintln!("error: {e}");
        return 2;
    }
    let t = &report.totals;
    eprintln!(
        "orcd-gate: {} passed, {} failed, {} not run of {} in {:.1} s; reports in {}",
        t.pass,
        t.fail,
        t.not_run,
        t.total,
        started.elapsed().as_secs_f64(),
        out.display()
    );
    println!("{} passed, {} failed, {} not run", t.pass, t.fail, t.not_run);
    if t.fail > 0 {
        1
    } else {
        0
    }
}
