//! `orcd-gate`: run the conformance suites and write the reports.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use orcd_conformance::case::{run_case, CaseResult};
use orcd_conformance::gates::GatesFile;
use orcd_conformance::html::Peers;
use orcd_conformance::report::Report;
use orcd_conformance::{discover, merge, paths, Backend, Outcome};

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
        /// Run only shard K of N (1-based, e.g. 2/3): cases are dealt round-robin in id order.
        #[arg(long, value_parser = parse_partition)]
        partition: Option<(usize, usize)>,
        /// Only these backend columns (repeatable): cpu, cpu-fast, cuda, cuda-fast. A GPU runner
        /// runs `--backend cuda --backend cuda-fast`; its report merges with the CPU machine's.
        #[arg(long = "backend", value_parser = parse_backend)]
        backends: Vec<Backend>,
    },
    /// Merge shard results (report.json files or folders of per-trial results written with
    /// ORCD_RESULTS_DIR) into one report. Cases that no shard ran are listed as not run. A not-run
    /// result yields to a pass or fail from another input (a CPU machine's report merged with a
    /// GPU runner's); two inputs with different real outcomes for one case are an error.
    Merge {
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// Don't add discovered cases that no shard ran (by default they are reported not run).
        #[arg(long)]
        no_discover: bool,
        #[arg(long)]
        goldens: Option<PathBuf>,
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
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
        Command::Run { out, suite, filter, goldens, partition, backends } => {
            run(out, suite, filter, goldens, partition, backends)
        }
        Command::Merge { out, no_discover, goldens, inputs } => merge_cmd(out, no_discover, goldens, inputs),
        Command::List { goldens } => list(goldens),
    };
    std::process::exit(code);
}

fn parse_partition(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s.split_once('/').ok_or("expected K/N, e.g. 1/2")?;
    let k: usize = k.parse().map_err(|_| "K is not a number")?;
    let n: usize = n.parse().map_err(|_| "N is not a number")?;
    if n == 0 || k == 0 || k > n {
        return Err(format!("partition {k}/{n}: need 1 <= K <= N"));
    }
    Ok((k, n))
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    Backend::parse(s).ok_or_else(|| {
        let names: Vec<_> = Backend::ALL.iter().map(|b| b.name()).collect();
        format!("unknown backend column {s:?} (expected one of {})", names.join(", "))
    })
}

/// Write the reports for a set of results (gates and checklists from goldens/gates.yaml).
fn write_report(results: Vec<CaseResult>, goldens: &std::path::Path, out: &std::path::Path) -> Result<Report, i32> {
    let fail = |e: orcd_conformance::HarnessError| {
        eprintln!("error: {e}");
        2
    };
    let defs_path = goldens.join("gates.yaml");
    let defs = if defs_path.exists() { GatesFile::load(&defs_path).map_err(fail)? } else { GatesFile::default() };
    let peers = Peers::load(&goldens.join("perf").join("peers.yaml")).map_err(fail)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let report = Report::new(results, git_commit(), now, &defs);
    report.write(out, &peers).map_err(fail)?;
    Ok(report)
}

fn merge_cmd(out: PathBuf, no_discover: bool, goldens: Option<PathBuf>, inputs: Vec<PathBuf>) -> i32 {
    let gdir = goldens.clone().unwrap_or_else(paths::goldens_dir);
    let mut shards = Vec::new();
    for i in &inputs {
        match merge::read_input(i) {
            Ok(r) => {
                eprintln!("orcd-gate merge: {} results from {}", r.len(), i.display());
                shards.push(r)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    }
    let expected = if no_discover {
        None
    } else {
        match cases(goldens) {
            Ok(c) => Some(c),
            Err(code) => return code,
        }
    };
    let merged = match merge::merge(shards, expected.as_deref()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let report = match write_report(merged, &gdir, &out) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let t = &report.totals;
    println!("{} passed, {} failed, {} not run", t.pass, t.fail, t.not_run);
    eprintln!("orcd-gate merge: reports in {}", out.display());
    if t.fail > 0 {
        1
    } else {
        0
    }
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

/// The commit the report names: `ORCD_BUILD_COMMIT` where a runner sets it (ci/gpu-run.sh: the
/// commit its prebuilt binaries came from — the GPU machine's copy of the tree may carry an
/// older repository), else the checkout's HEAD.
fn git_commit() -> Option<String> {
    if let Some(c) = std::env::var("ORCD_BUILD_COMMIT").ok().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()) {
        return Some(c);
    }
    let out =
        std::process::Command::new("git").args(["rev-parse", "HEAD"]).current_dir(paths::repo_root()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn run(
    out: PathBuf,
    suites: Vec<String>,
    filter: Option<String>,
    goldens: Option<PathBuf>,
    partition: Option<(usize, usize)>,
    backends: Vec<Backend>,
) -> i32 {
    let gdir = goldens.clone().unwrap_or_else(paths::goldens_dir);
    let all = match cases(goldens) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let selected: Vec<(usize, Backend)> = all
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.backends.iter().map(move |&b| (i, b)))
        .filter(|&(i, _)| suites.is_empty() || suites.contains(&all[i].suite))
        .filter(|&(_, b)| backends.is_empty() || backends.contains(&b))
        .filter(|&(i, b)| filter.as_ref().is_none_or(|f| all[i].id(b).contains(f.as_str())))
        .enumerate()
        .filter(|(k, _)| partition.is_none_or(|(p, n)| k % n == p - 1))
        .map(|(_, x)| x)
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
    let report = match write_report(results, &gdir, &out) {
        Ok(r) => r,
        Err(code) => return code,
    };
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
