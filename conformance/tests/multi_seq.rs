//! Many sequences in one forward (issue 10): 2 and 4 sequences of different lengths, prefilled
//! together in one batch (their rows interleaved) and then decoded together, give bit for bit
//! the logits each gives alone — on every `models` case file (every architecture, weight type
//! and real model), on both CPU columns. The server's seeded reproducibility rests on this.
//!
//! This is an invariance check of the batch path, not a correctness check: the single-sequence
//! rows it compares with are the ones suite `models` holds to the independent references.
//! A case whose model is not fetched fails with the fetch command (never a silent pass).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use orcd_conformance::case::CaseKind;
use orcd_conformance::discover::load_case_file;
use orcd_conformance::paths;
use orcd_engine::model::{AnyModel, LoadOpts};
use orcd_engine::ops::{BatchRows, NoTaps};

/// Decode steps after the prompts.
const STEPS: usize = 3;

/// The prompts: lengths from `lens`, tokens taken cyclically from the case's own tokens at
/// different offsets (so every sequence is a plausible token stream of its vocabulary).
fn prompts(tokens: &[u32], lens: &[usize]) -> Vec<Vec<u32>> {
    lens.iter().enumerate().map(|(s, &n)| (0..n).map(|i| tokens[(s * 5 + i) % tokens.len()]).collect()).collect()
}

fn argmax(row: &[f32]) -> u32 {
    row.iter().enumerate().fold((0usize, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0 as u32
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Per sequence: the logits of every prompt position, then of each decode step (greedy).
type Rows = Vec<Vec<Vec<u32>>>;

fn alone(load: &dyn Fn(usize) -> Box<dyn AnyModel>, prompts: &[Vec<u32>]) -> Rows {
    prompts
        .iter()
        .map(|p| {
            let mut m = load(1);
            let n_vocab = m.hp().n_vocab;
            let l = m.forward(p, &mut NoTaps).unwrap();
            let mut rows: Vec<Vec<u32>> = l.chunks(n_vocab).map(bits).collect();
            let mut next = argmax(&l[l.len() - n_vocab..]);
            for _ in 0..STEPS {
                let l = m.forward(&[next], &mut NoTaps).unwrap();
                next = argmax(&l);
                rows.push(bits(&l));
            }
            rows
        })
        .collect()
}

fn together(load: &dyn Fn(usize) -> Box<dyn AnyModel>, prompts: &[Vec<u32>]) -> Rows {
    let n_seq = prompts.len();
    let mut m = load(n_seq);
    let n_vocab = m.hp().n_vocab;
    // Rows interleaved round-robin: s0 t0, s1 t0, ..., s0 t1, ... (a sequence's rows are not adjacent).
    let mut batch = BatchRows::default();
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..longest {
        for (s, p) in prompts.iter().enumerate() {
            if let Some(&t) = p.get(i) {
                batch.tokens.push(t);
                batch.pos.push(i as u32);
                batch.seq.push(s as u32);
                batch.logits.push(true);
            }
        }
    }
    let l = m.decode(&batch, &mut NoTaps).unwrap();
    let mut rows: Rows = vec![Vec::new(); n_seq];
    let mut last = vec![0u32; n_seq];
    for (i, &r) in l.rows.iter().enumerate() {
        let s = batch.seq[r as usize] as usize;
        rows[s].push(bits(l.row(i)));
        last[s] = argmax(l.row(i));
    }
    for _ in 0..STEPS {
        let step = BatchRows {
            tokens: last.clone(),
            pos: (0..n_seq).map(|s| m.n_past_of(s) as u32).collect(),
            seq: (0..n_seq as u32).collect(),
            logits: vec![true; n_seq],
        };
        let l = m.decode(&step, &mut NoTaps).unwrap();
        assert_eq!(l.rows.len(), n_seq);
        for s in 0..n_seq {
            rows[s].push(bits(l.row(s)));
            last[s] = argmax(l.row(s));
        }
        let _ = n_vocab;
    }
    rows
}

/// Every `models` case whose name contains `filter`, on its numerics' CPU column.
fn check(filter: &str, lens: &[usize]) {
    check_on(filter, lens, orcd_backends::BackendKind::Cpu)
}

/// As [`check`], on the column of the case's numerics of `kind`.
fn check_on(filter: &str, lens: &[usize], kind: orcd_backends::BackendKind) {
    let dir = paths::goldens_dir().join("models");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let (mut checked, mut failures) = (0, Vec::new());
    for path in files {
        let case = load_case_file(&path).unwrap().expect("a case");
        let CaseKind::Model(mc) = &case.kind else { continue };
        if !case.name.contains(filter) {
            continue;
        }
        let column = orcd_backends::Column { backend: kind, numerics: case.backends[0].column().numerics };
        let backend = orcd_conformance::Backend::from_column(column);
        if let Some(reason) = case.not_run_reason(backend) {
            // On the CPU (CI) every input is fetched, so a missing one is a failure; a GPU
            // machine gets only what a call carried: that case is reported as not run.
            assert!(kind != orcd_backends::BackendKind::Cpu, "{}: cannot run: {reason}", case.name);
            eprintln!("{}: not run: {reason}", case.name);
            continue;
        }
        let (f, _) = mc.file.file.load().unwrap();
        let n_ctx = lens.iter().max().unwrap() + STEPS + 1;
        let load = |n_seq: usize| -> Box<dyn AnyModel> {
            column.load(&f, &LoadOpts { n_ctx: Some(n_ctx), n_seq: Some(n_seq), kv_type: None }).unwrap()
        };
        let ps = prompts(&mc.file.tokens, lens);
        let (a, t) = (alone(&load, &ps), together(&load, &ps));
        for s in 0..ps.len() {
            if let Some(i) = (0..a[s].len()).find(|&i| a[s][i] != t[s][i]) {
                failures.push(format!(
                    "{} on {column}: sequence {s} (length {}) row {i} differs batched vs alone",
                    case.name, lens[s]
                ));
            }
        }
        checked += 1;
    }
    assert!(checked > 0, "no models case matches {filter:?}");
    assert!(failures.is_empty(), "{} of {checked} cases differ:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{checked} cases: every row bit-identical batched ({} sequences) and alone", lens.len());
}

#[test]
fn four_sequences_synthetic_models() {
    // 12 rows: the k-quant matmul's 8-row switch applies to that sequence alone.
    check("-synth-", &[3, 12, 1, 6]);
}

#[test]
fn two_sequences_synthetic_models() {
    check("-synth-", &[9, 2]);
}

#[test]
fn four_sequences_smollm2() {
    check("smollm2-135m-q4_1-", &[5, 1, 10, 3]);
}

#[test]
fn two_sequences_gemma3() {
    check("gemma3-270m-q4_k_m-", &[2, 9]);
}

/// The CUDA columns: rows of a sequence never depend on its neighbours there either (every
/// kernel computes a row by itself). Needs a CUDA device; without one it says so.
#[test]
fn cuda_four_sequences_synthetic_models() {
    if let Some(reason) = orcd_backends::BackendKind::Cuda.unavailable() {
        eprintln!("not run: {reason}");
        return;
    }
    check_on("-synth-", &[3, 12, 1, 6], orcd_backends::BackendKind::Cuda);
}

#[test]
fn cuda_four_sequences_smollm2() {
    if let Some(reason) = orcd_backends::BackendKind::Cuda.unavailable() {
        eprintln!("not run: {reason}");
        return;
    }
    check_on("smollm2-135m-q4_1-", &[5, 1, 10, 3], orcd_backends::BackendKind::Cuda);
}

/// Whether this test process runs on the emulated device; if not, runs test `name` again in a
/// child process with the emulator's variable set (`ORCD_CUDA_EMU=1`, kernels/emu), asserts it
/// passed there, and answers false (the caller returns).
fn on_emulator(name: &str) -> bool {
    if std::env::var_os("ORCD_CUDA_EMU").is_some() {
        return true;
    }
    let run = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env("ORCD_CUDA_EMU", "1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success() && log.contains("1 passed"), "on the emulated device:\n{log}");
    false
}

/// `check_on` of the CUDA column on the emulated device (the test runs itself again there).
fn emulated_check(name: &str, filter: &str, lens: &[usize]) {
    if on_emulator(name) {
        check_on(filter, lens, orcd_backends::BackendKind::Cuda);
    }
}

/// Two sequences on the emulated CUDA device with the prefill GEMM on (the default): in the
/// batched prefill (18 rows) only the 17-row sequence's rows take `mmq_*` (its own sequence's
/// row count decides), as they do alone, over the mat-vec of the whole batch; the 1-row one and
/// every decode step take the mat-vec. Each sequence's rows equal its rows alone, bit for bit
/// (Q4_1: the GEMM's min term too). The prefill's attention crosses kernels too: batched, both
/// sequences take `attention_tile` (rows 16 and 17 in one tile of two sequences), alone the
/// 17-row one takes it (row 16 in a tile of its own) and the 1-row one `attention`. About a
/// minute of emulation (the 32,000-wide head).
#[test]
fn emulated_cuda_two_sequences_with_the_gemm_equal_each_alone() {
    emulated_check(
        "emulated_cuda_two_sequences_with_the_gemm_equal_each_alone",
        "llama-synth-tiny-q4_1-fast-short",
        &[17, 1],
    );
}

/// Three sequences of fewer than 16 rows on the emulated device, the fast column of the llama
/// Q8_0 file: the batched rows (8 in the prefill, 3 a decode step) take the activation rounded
/// once (`quant_x_q8` + `matvecq_`/`matvecqg_`; the head `round_x` + `matvecf_`), a sequence
/// alone the single-row kernels (`matvec8r_`, `matvec8g_`, …); every row is the same bits either
/// way. (A one-ulp slip in a projection can vanish in the next Q8_0 rounding; doubling
/// matvecq_'s output fails three rows here. The exact column's batched path is in
/// `cuda_four_sequences_synthetic_models`, on a card.) About a minute of emulation.
#[test]
fn emulated_cuda_three_sequences_equal_each_alone() {
    emulated_check("emulated_cuda_three_sequences_equal_each_alone", "llama-synth-tiny-q8_0-fast", &[4, 1, 3]);
}

/// A decode step replayed from a recorded forward (a CUDA graph) gives the logits the same step
/// gives run op by op (`ORCD_CUDA_GRAPHS=0`), bit for bit, step after step, on both cuda columns
/// and every synthetic architecture. Needs a CUDA device; without one it says so.
#[test]
fn cuda_graph_replay_equals_the_forward_it_recorded() {
    use orcd_conformance::suites::gguf::{synthetic_fixture, synthetic_missing_reason};
    if let Some(reason) = orcd_backends::BackendKind::Cuda.unavailable() {
        eprintln!("not run: {reason}");
        return;
    }
    let run = |column: orcd_backends::Column, f: &orcd_engine::gguf::GgufFile, graphs: bool| -> Vec<Vec<u32>> {
        // The variable is read when a shape is about to be recorded; this test alone sets it.
        if graphs {
            std::env::remove_var("ORCD_CUDA_GRAPHS");
        } else {
            std::env::set_var("ORCD_CUDA_GRAPHS", "0");
        }
        let mut m = column.load(f, &LoadOpts { n_ctx: Some(40), n_seq: Some(2), kv_type: None }).unwrap();
        let n_vocab = m.hp().n_vocab;
        let mut out = vec![bits(&m.forward(&[1, 5, 9, 200], &mut NoTaps).unwrap()[3 * n_vocab..])];
        let mut next = argmax(out[0].iter().map(|b| f32::from_bits(*b)).collect::<Vec<_>>().as_slice());
        for step in 0..12u32 {
            // Rotate one-row steps of sequence 0, two-row steps of both sequences and two-row
            // steps that want sequence 0's logits only (the recorded forward gathers its output
            // row through an index buffer that must outlive the recording, as the pool reuses
            // freed buffers): three recorded shapes, each replayed several times.
            let batch = if step % 3 == 0 {
                m.seq_batch(0, &[next], true)
            } else {
                BatchRows {
                    tokens: vec![next, (step * 7) % 50],
                    pos: vec![m.n_past_of(0) as u32, m.n_past_of(1) as u32],
                    seq: vec![0, 1],
                    logits: vec![true, step % 3 == 1],
                }
            };
            let l = m.decode(&batch, &mut NoTaps).unwrap();
            next = argmax(l.row(0));
            out.push(bits(&l.data));
        }
        out
    };
    let mut checked = 0;
    for arch in ["llama", "qwen2", "gemma3", "phi3", "gpt2", "gpt-oss"] {
        for ty in ["q8_0", "q4_k", "f16"] {
            let fixture = format!("model-{arch}-tiny-{ty}-seed1");
            if let Some(reason) = synthetic_missing_reason(&fixture) {
                eprintln!("{fixture}: not run: {reason}");
                continue;
            }
            let f = orcd_engine::gguf::GgufFile::from_bytes(synthetic_fixture(&fixture).unwrap()).unwrap();
            for column in [orcd_backends::Column::CUDA_EXACT, orcd_backends::Column::CUDA_FAST] {
                let (eager, replayed) = (run(column, &f, false), run(column, &f, true));
                for (i, (a, b)) in eager.iter().zip(&replayed).enumerate() {
                    assert!(a == b, "{fixture} on {column}: step {i} differs replayed vs op by op");
                }
                checked += 1;
            }
        }
    }
    std::env::remove_var("ORCD_CUDA_GRAPHS");
    assert!(checked >= 20, "only {checked} model × column runs");
    eprintln!("{checked} model × column runs: every replayed step bit-identical with op by op");
}

/// A batch is untrusted input (a server builds it from requests): every malformed one is a typed
/// error naming what is wrong, and leaves every sequence as it was.
#[test]
fn malformed_batches_are_typed_errors_and_change_nothing() {
    use orcd_conformance::suites::gguf::{synthetic_fixture, synthetic_missing_reason};
    let fixture = "model-llama-tiny-q8_0-seed1";
    if let Some(reason) = synthetic_missing_reason(fixture) {
        panic!("{fixture}: {reason}");
    }
    let f = orcd_engine::gguf::GgufFile::from_bytes(synthetic_fixture(fixture).unwrap()).unwrap();
    for column in [orcd_backends::Column::CPU_EXACT, orcd_backends::Column::CPU_FAST] {
        let mut m = column.load(&f, &LoadOpts { n_ctx: Some(8), n_seq: Some(2), kv_type: None }).unwrap();
        let n_vocab = m.hp().n_vocab as u32;
        m.forward(&[1, 2, 3], &mut NoTaps).unwrap();
        let row =
            |t: u32, p: u32, s: u32| BatchRows { tokens: vec![t], pos: vec![p], seq: vec![s], logits: vec![true] };
        let cases: Vec<(BatchRows, &str)> = vec![
            (BatchRows::default(), "no tokens"),
            (BatchRows { logits: vec![], ..row(1, 3, 0) }, "logit flags"),
            (row(1, 0, 2), "sequence 2 out of range"),
            (row(n_vocab, 3, 0), "out of range (vocab size"),
            (row(1, 5, 0), "continues at position 3, not 5"),
            (row(1, 0, 0), "continues at position 3, not 0"),
            (
                BatchRows { tokens: vec![1; 6], pos: (3..9).collect(), seq: vec![0; 6], logits: vec![true; 6] },
                "context full",
            ),
        ];
        for (b, want) in cases {
            let e = m.decode(&b, &mut NoTaps).unwrap_err().to_string();
            assert!(e.contains(want), "{column}: expected {want:?} in {e:?}");
            assert_eq!((m.n_past_of(0), m.n_past_of(1)), (3, 0), "{column}: a rejected batch changed a sequence");
        }
        // Still usable: both sequences continue where they were.
        let ok = BatchRows { tokens: vec![4, 7], pos: vec![3, 0], seq: vec![0, 1], logits: vec![true, true] };
        assert_eq!(m.decode(&ok, &mut NoTaps).unwrap().rows, vec![0, 1]);
        assert_eq!((m.n_past_of(0), m.n_past_of(1)), (4, 1));
    }
}

/// Greedy steps of `n_seq` sequences (prompts of `lens`) on `column`: per step, each sequence's
/// id read and fed back by the host (`decode_argmax`), and the same steps through
/// `decode_greedy` (on a device backend the ids stay on the device between steps: fed into the
/// next step's batch, or into a recorded forward's token input once the step's shape is
/// recorded). Returns both, steps × sequences.
fn greedy_both(
    f: &orcd_engine::gguf::GgufFile,
    column: orcd_backends::Column,
    lens: &[usize],
    tokens: &[u32],
    steps: usize,
) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let n_seq = lens.len();
    let n_ctx = lens.iter().max().unwrap() + steps + 1;
    let ps = prompts(tokens, lens);
    let run = |fed: bool| -> Vec<Vec<u32>> {
        let mut m = column.load(f, &LoadOpts { n_ctx: Some(n_ctx), n_seq: Some(n_seq), kv_type: None }).unwrap();
        let mut first = Vec::new();
        for (s, p) in ps.iter().enumerate() {
            first.push(m.decode_argmax(&m.seq_batch(s, p, false)).unwrap()[0]);
        }
        let step = |m: &dyn AnyModel, tokens: Vec<u32>| BatchRows {
            tokens,
            pos: (0..n_seq).map(|s| m.n_past_of(s) as u32).collect(),
            seq: (0..n_seq as u32).collect(),
            logits: vec![true; n_seq],
        };
        if fed {
            let b = step(&*m, first);
            return m.decode_greedy(&b, steps).unwrap();
        }
        let mut out = Vec::new();
        let mut next = first;
        for _ in 0..steps {
            let b = step(&*m, next);
            next = m.decode_argmax(&b).unwrap();
            out.push(next.clone());
        }
        out
    };
    (run(false), run(true))
}

/// The synthetic llama Q8_0 file's greedy steps, host-fed and fed on the device, on `kind`'s
/// column of both numerics: the same ids.
fn fed_check(kind: orcd_backends::BackendKind, steps: usize) {
    use orcd_conformance::suites::gguf::{synthetic_fixture, synthetic_missing_reason};
    let name = "model-llama-tiny-q8_0-seed1";
    if let Some(reason) = synthetic_missing_reason(name) {
        panic!("{name}: {reason}");
    }
    let f = orcd_engine::gguf::GgufFile::from_bytes(synthetic_fixture(name).unwrap()).unwrap();
    let tokens: Vec<u32> = (1..40).map(|i| (i * 37) % 200).collect();
    for numerics in [orcd_backends::Numerics::Exact, orcd_backends::Numerics::Fast] {
        let column = orcd_backends::Column { backend: kind, numerics };
        let (host, fed) = greedy_both(&f, column, &[4, 1, 3], &tokens, steps);
        assert_eq!(host.len(), steps);
        assert_eq!(host, fed, "{column}: greedy ids fed on the device differ from the host-fed ones");
        eprintln!("{column}: {steps} greedy steps of 3 sequences, the same ids fed either way");
    }
}

/// `decode_greedy` on the CPU (no kept ids: the host feeds each step) gives the ids of the
/// step-by-step loop.
#[test]
fn greedy_steps_fed_by_the_host_equal_step_by_step_on_the_cpu() {
    fed_check(orcd_backends::BackendKind::Cpu, 4);
}

/// On the emulated CUDA device the ids stay on the device between steps (`argmax_keep`, then
/// `upload_batch_fed`'s device copy into the next batch; the emulator records no graphs): the
/// same ids as the host-fed steps. (Skipping that device copy — the next batch then keeps the
/// host's stand-in ids — fails it.)
#[test]
fn emulated_cuda_greedy_steps_fed_on_the_device_equal_the_host_fed() {
    if on_emulator("emulated_cuda_greedy_steps_fed_on_the_device_equal_the_host_fed") {
        fed_check(orcd_backends::BackendKind::Cuda, 3);
    }
}

/// On a card the steps after the second replay a recorded forward (a CUDA graph) whose token
/// input the previous step's argmax fills on the device (`graph_replay_fed`): the same ids as
/// the host-fed steps. Needs a CUDA device; without one it says so.
#[test]
fn cuda_greedy_steps_fed_into_the_recorded_forward_equal_the_host_fed() {
    if let Some(reason) = orcd_backends::BackendKind::Cuda.unavailable() {
        eprintln!("not run: {reason}");
        return;
    }
    fed_check(orcd_backends::BackendKind::Cuda, 8);
}
