//! The `worker-orcd` command line (DESIGN §6). The contract: exit 0 on success; on any error one
//! line `error: ...` on stderr and exit code 2 — never a panic, never code 101.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::gguf::{GgufFile, GgufValue};
use crate::{npy, Error, Result};

#[derive(Debug, Parser)]
#[command(name = "worker-orcd", version, about = "worker-orcd: GGUF LLM inference engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the metadata and tensor table of a GGUF file.
    Inspect {
        file: PathBuf,
        /// Machine-readable output (one JSON object).
        #[arg(long)]
        json: bool,
    },
    /// Write one tensor, dequantized to f32, as .npy (numpy shape = GGUF dims reversed).
    Tensor {
        file: PathBuf,
        name: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the token ids of a text as one JSON array.
    Tokenize {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        text: TextArgs,
        /// Add BOS/EOS where the vocabulary asks for them (llama.cpp's add_special).
        #[arg(long)]
        add_special: bool,
        /// Recognise special tokens written in the text.
        #[arg(long)]
        parse_special: bool,
    },
    /// Print the text of comma-separated token ids.
    Detokenize {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<u32>,
    },
    /// Generate text from a prompt.
    Generate(GenerateArgs),
    /// Measure prefill and decode throughput (medians over repeats).
    Bench {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        #[arg(long, value_enum)]
        numerics: Option<Numerics>,
        #[arg(long, default_value_t = 512)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 128)]
        gen_tokens: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        #[arg(long)]
        json: bool,
    },
    /// Logits at every position of a prompt, as f32 .npy [n_tokens, n_vocab].
    Logits {
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        prompt: PromptArgs,
        /// Don't add BOS/EOS to a text prompt.
        #[arg(long)]
        no_add_special: bool,
        #[arg(long)]
        parse_special: bool,
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        #[arg(long, value_enum)]
        numerics: Option<Numerics>,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// The GGUF model (default: the fetched SmolLM2-135M-Instruct).
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt as one user message with the model's chat template.
    #[arg(long)]
    chat: bool,
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// 0 = greedy (default 0.8, llama.cpp's).
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// 0 = off.
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    /// 1.0 = off; applied over the last 64 tokens.
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// Default: chosen at random and reported.
    #[arg(long)]
    seed: Option<u64>,
    /// Stop when the generated text contains this string (repeatable; the string is not printed).
    #[arg(long)]
    stop: Vec<String>,
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    #[arg(long, value_enum)]
    numerics: Option<Numerics>,
    /// One JSON object per token, then a summary object.
    #[arg(long)]
    json: bool,
    /// With --json: include this many top alternatives with each token's logprob.
    #[arg(long, default_value_t = 0)]
    top_logprobs: usize,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct TextArgs {
    #[arg(long)]
    text: Option<String>,
    /// Read the text from a file, byte for byte (no newline stripped).
    #[arg(long)]
    text_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct PromptArgs {
    #[arg(long)]
    prompt: Option<String>,
    #[arg(long)]
    prompt_file: Option<PathBuf>,
    /// Token ids fed exactly as given (no BOS added).
    #[arg(long, value_delimiter = ',')]
    tokens: Option<Vec<u32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendArg {
    Cpu,
    Cuda,
}

/// `exact`: dequantized weights, f32 activations and KV cache. `fast`: 8-bit activations for
/// quantized matmuls and an F16 KV cache, as llama.cpp computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Numerics {
    Exact,
    Fast,
}

/// Run the CLI; returns the process exit code.
pub fn main_with_args(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::*;
            return match e.kind() {
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = write!(std::io::stdout(), "{e}");
                    if e.kind() == DisplayHelpOnMissingArgumentOrSubcommand {
                        2
                    } else {
                        0
                    }
                }
                _ => {
                    let msg = e.to_string();
                    let first = msg.lines().next().unwrap_or("invalid arguments");
                    eprintln!("error: {}", first.trim_start_matches("error: "));
                    2
                }
            };
        }
    };
    let result = std::panic::catch_unwind(|| run(cli));
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("error: {}", one_line(&e.to_string()));
            2
        }
        Err(_) => {
            eprintln!("error: internal error (a bug: please report it with the command line)");
            2
        }
    }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect { file, json } => inspect(&file, json),
        Command::Tensor { file, name, out } => tensor(&file, &name, &out),
        Command::Tokenize { model, text, add_special, parse_special } => {
            tokenize(&model, &text, add_special, parse_special)
        }
        Command::Detokenize { model, ids } => detokenize(&model, &ids),
        Command::Generate(args) => generate(&args),
        Command::Bench { model, backend, numerics, prompt_tokens, gen_tokens, repeats, json } => {
            bench(&model, backend, numerics, prompt_tokens, gen_tokens, repeats, json)
        }
        Command::Logits { model, prompt, no_add_special, parse_special, backend, numerics, out } => {
            logits(&model, &prompt, !no_add_special, parse_special, backend, numerics, &out)
        }
    }
}

fn read_text(path: &std::path::Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    String::from_utf8(bytes).map_err(|_| Error::Invalid(format!("{}: not valid UTF-8", path.display())))
}

fn load_tokenizer(f: &GgufFile) -> Result<crate::tokenizer::Tokenizer> {
    crate::tokenizer::Tokenizer::from_gguf(f).map_err(Error::from)
}

/// The fetch cache (`fixtures/fetch.py`): `$ORCD_CACHE`, else `~/.cache/orcd`.
fn fetch_cache() -> PathBuf {
    std::env::var_os("ORCD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache").join("orcd"))
}

/// The tokenizer of `tokenize`/`detokenize --model X`: a GGUF file, a tokenizer.json or a
/// `.tiktoken` rank file (recognised by content), or the name `o200k_harmony` / `o200k_base` for
/// the fetched o200k rank file.
fn open_tokenizer(model: &std::path::Path) -> Result<crate::tokenizer::Tokenizer> {
    use crate::tokenizer::{FileKind, TiktokenEncoding, Tokenizer};
    if !model.exists() {
        if let Some(enc) = model.to_str().and_then(TiktokenEncoding::from_name) {
            let p = fetch_cache().join("tokenizers").join("o200k_base.tiktoken");
            if !p.is_file() {
                return Err(Error::Invalid(format!(
                    "--model {}: the o200k rank file {} is not fetched: run `python3 fixtures/fetch.py`",
                    enc.name(),
                    p.display()
                )));
            }
            let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            return Ok(Tokenizer::from_tiktoken(&bytes, enc)?);
        }
    }
    let mut head = [0u8; 256];
    let n = {
        use std::io::Read;
        std::fs::File::open(model).and_then(|mut f| f.read(&mut head)).unwrap_or(0)
    };
    match FileKind::sniff(&head[..n]) {
        Some(FileKind::TokenizerJson) | Some(FileKind::Tiktoken) => {
            Tokenizer::open(model).map_err(|e| Error::from(e).context(model.display().to_string()))
        }
        // GGUF, unreadable or unknown: the GGUF reader says what is wrong.
        _ => load_tokenizer(&open(model)?),
    }
}

fn tokenize(model: &std::path::Path, text: &TextArgs, add_special: bool, parse_special: bool) -> Result<()> {
    let tok = open_tokenizer(model)?;
    let text = match (&text.text, &text.text_file) {
        (Some(t), _) => t.clone(),
        (None, Some(p)) => read_text(p)?,
        (None, None) => return Err(Error::Invalid("give --text or --text-file".into())),
    };
    let ids = tok.encode(&text, add_special, parse_special)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::Value::from(ids)).map_err(stdout_err)
}

fn detokenize(model: &std::path::Path, ids: &[u32]) -> Result<()> {
    let tok = open_tokenizer(model)?;
    let bytes = tok.decode(ids)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes).and_then(|_| writeln!(out)).map_err(stdout_err)
}

/// Token ids of a prompt as `logits`/`generate` take it (DESIGN §6).
fn prompt_tokens(f: &GgufFile, p: &PromptArgs, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
    if let Some(ids) = &p.tokens {
        return Ok(ids.clone());
    }
    let text = match (&p.prompt, &p.prompt_file) {
        (Some(t), _) => t.clone(),
        (None, Some(path)) => read_text(path)?,
        _ => return Err(Error::Invalid("give --prompt, --prompt-file or --tokens".into())),
    };
    let tok = load_tokenizer(f)?;
    Ok(tok.encode(&text, add_special, parse_special)?)
}

/// The numerics to run with (default `fast`, as llama.cpp computes); the CUDA backend is refused.
fn check_backend(backend: Option<BackendArg>, numerics: Option<Numerics>) -> Result<Numerics> {
    if backend == Some(BackendArg::Cuda) {
        return Err(Error::Invalid("the CUDA backend is not built yet: use --backend cpu".into()));
    }
    Ok(numerics.unwrap_or(Numerics::Fast))
}

impl Numerics {
    fn name(self) -> &'static str {
        match self {
            Numerics::Exact => "exact",
            Numerics::Fast => "fast",
        }
    }
}

/// Load the model on the backend of `numerics` and run `body` with it bound to `m` (the body is
/// generic code, expanded once per backend type).
macro_rules! with_model {
    ($numerics:expr, $f:expr, $n_ctx:expr, |$m:ident| $body:block) => {
        match $numerics {
            Numerics::Exact => {
                let mut $m = crate::model::Model::load($f, crate::backend::cpu::Cpu, $n_ctx)?;
                $body
            }
            Numerics::Fast => {
                let mut $m = crate::model::Model::load($f, crate::backend::cpu_fast::CpuFast::default(), $n_ctx)?;
                $body
            }
        }
    };
}

fn logits(
    model: &std::path::Path,
    prompt: &PromptArgs,
    add_special: bool,
    parse_special: bool,
    backend: Option<BackendArg>,
    numerics: Option<Numerics>,
    out: &std::path::Path,
) -> Result<()> {
    let numerics = check_backend(backend, numerics)?;
    let f = open(model)?;
    let tokens = prompt_tokens(&f, prompt, add_special, parse_special)?;
    if tokens.is_empty() {
        return Err(Error::Invalid("the prompt has no tokens".into()));
    }
    let (logits, n_vocab) = with_model!(numerics, &f, Some(tokens.len().max(1)), |m| {
        (m.forward(&tokens, &mut crate::ops::NoTaps)?, m.hp.n_vocab)
    });
    let file = std::fs::File::create(out).map_err(|e| Error::io(out, e))?;
    let mut w = std::io::BufWriter::new(file);
    npy::write_f32(&mut w, &[tokens.len(), n_vocab], &logits).map_err(|e| Error::io(out, e))?;
    w.flush().map_err(|e| Error::io(out, e))
}

fn open(path: &std::path::Path) -> Result<GgufFile> {
    GgufFile::open(path).map_err(|e| match e {
        // I/O errors already name the path.
        e @ crate::gguf::GgufError::Io { .. } => Error::from(e),
        e => Error::from(e).context(path.display().to_string()),
    })
}

fn stdout_err(e: std::io::Error) -> Error {
    Error::Io { path: "<stdout>".into(), source: e }
}

fn inspect(path: &std::path::Path, json: bool) -> Result<()> {
    let f = open(path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if json {
        let v = inspect_json(&f, path);
        serde_json::to_writer(&mut out, &v).map_err(|e| Error::Invalid(e.to_string()))?;
        writeln!(out).map_err(stdout_err)?;
    } else {
        write!(out, "{}", inspect_text(&f, path)).map_err(stdout_err)?;
    }
    out.flush().map_err(stdout_err)
}

/// JSON form of a value: numbers, strings, booleans, nested arrays (non-finite floats as strings).
pub fn value_json(v: &GgufValue) -> serde_json::Value {
    use serde_json::Value as J;
    let float = |x: f64| serde_json::Number::from_f64(x).map(J::Number).unwrap_or_else(|| J::String(format!("{x}")));
    match v {
        GgufValue::U8(x) => J::from(*x),
        GgufValue::I8(x) => J::from(*x),
        GgufValue::U16(x) => J::from(*x),
        GgufValue::I16(x) => J::from(*x),
        GgufValue::U32(x) => J::from(*x),
        GgufValue::I32(x) => J::from(*x),
        GgufValue::U64(x) => J::from(*x),
        GgufValue::I64(x) => J::from(*x),
        GgufValue::F32(x) => float(*x as f64),
        GgufValue::F64(x) => float(*x),
        GgufValue::Bool(x) => J::from(*x),
        GgufValue::String(s) => J::from(s.as_str()),
        GgufValue::Array(_, items) => J::Array(items.iter().map(value_json).collect()),
    }
}

/// The `inspect --json` object (a public schema: keys are stable).
pub fn inspect_json(f: &GgufFile, path: &std::path::Path) -> serde_json::Value {
    let metadata: Vec<_> = f
        .metadata()
        .iter()
        .map(|(k, v)| serde_json::json!({"key": k, "type": v.type_name(), "value": value_json(v)}))
        .collect();
    let tensors: Vec<_> = f
        .tensors()
        .iter()
        .map(|t| {
            serde_json::json!({
                "name": t.name, "type": t.ty.name(), "dims": t.dims,
                "offset": t.offset, "n_elements": t.n_elements, "n_bytes": t.n_bytes,
            })
        })
        .collect();
    serde_json::json!({
        "file": path.display().to_string(),
        "file_size": f.file_len(),
        "version": f.version,
        "alignment": f.alignment,
        "data_offset": f.data_offset,
        "n_kv": f.metadata().len(),
        "n_tensors": f.tensors().len(),
        "metadata": metadata,
        "tensors": tensors,
    })
}

/// The human-readable metadata dump and tensor table.
pub fn inspect_text(f: &GgufFile, path: &std::path::Path) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let total: u64 = f.tensors().iter().map(|t| t.n_bytes).sum();
    let params: u64 = f.tensors().iter().map(|t| t.n_elements).sum();
    let _ = writeln!(s, "file:        {}", path.display());
    let _ = writeln!(
        s,
        "gguf:        version {}, alignment {}, {} metadata entries, {} tensors, data at byte {}",
        f.version,
        f.alignment,
        f.metadata().len(),
        f.tensors().len(),
        f.data_offset
    );
    let _ = writeln!(s, "size:        {} bytes; tensors {} bytes, {} elements", f.file_len(), total, params);
    let _ = writeln!(s, "\nmetadata:");
    let kw = f.metadata().iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in f.metadata() {
        let _ = writeln!(s, "  {k:kw$}  {:<22} {v}", v.type_name());
    }
    let _ = writeln!(s, "\ntensors:");
    let nw = f.tensors().iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(s, "  {:nw$}  {:<7} {:<24} {:>12} {:>12}", "name", "type", "dims (ne0 first)", "offset", "bytes");
    for t in f.tensors() {
        let dims = format!("{:?}", t.dims);
        let _ = writeln!(s, "  {:nw$}  {:<7} {:<24} {:>12} {:>12}", t.name, t.ty.name(), dims, t.offset, t.n_bytes);
    }
    let mut by_type: std::collections::BTreeMap<&str, (usize, u64)> = Default::default();
    for t in f.tensors() {
        let e = by_type.entry(t.ty.name()).or_default();
        e.0 += 1;
        e.1 += t.n_bytes;
    }
    let _ = writeln!(s, "\ntypes:");
    for (ty, (n, b)) in by_type {
        let _ = writeln!(s, "  {ty:<7} {n:>5} tensors {b:>12} bytes");
    }
    s
}

fn tensor(path: &std::path::Path, name: &str, out: &std::path::Path) -> Result<()> {
    let f = open(path)?;
    let t = f.tensor(name)?;
    let shape = t.numpy_shape();
    let data = f.tensor_f32(name)?;
    let file = std::fs::File::create(out).map_err(|e| Error::io(out, e))?;
    let mut w = std::io::BufWriter::new(file);
    npy::write_f32(&mut w, &shape, &data).map_err(|e| Error::io(out, e))?;
    w.flush().map_err(|e| Error::io(out, e))
}

/// The model `generate`/`serve` use when `--model` is not given.
pub fn default_model() -> Result<PathBuf> {
    let cache = std::env::var_os("ORCD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache").join("orcd"));
    let p = cache.join("models").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::Invalid(format!(
            "no --model given and the default model {} is not fetched: run `python3 fixtures/fetch.py`",
            p.display()
        )))
    }
}

fn generate(a: &GenerateArgs) -> Result<()> {
    use crate::generate::GenerateParams;
    use crate::sampler::{PenaltyParams, SamplerParams};
    let numerics = check_backend(a.backend, a.numerics)?;
    let path = match &a.model {
        Some(p) => p.clone(),
        None => default_model()?,
    };
    let f = open(&path)?;
    let tok = load_tokenizer(&f)?;
    let prompt = if a.chat {
        let msgs = [crate::chat::Message::new("user", &a.prompt)];
        crate::chat::chat_prompt(&f, &tok, &msgs, crate::chat::Date::today())
            .map_err(|e| e.context(format!("--chat with {}", path.display())))?
            .1
    } else {
        tok.encode(&a.prompt, true, false)?
    };
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
    });
    let sampler = SamplerParams {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        min_p: a.min_p,
        penalties: PenaltyParams { repeat: a.repeat_penalty, ..PenaltyParams::default() },
        seed,
        ..SamplerParams::default()
    };
    let params =
        GenerateParams { max_tokens: a.max_tokens, stop: a.stop.clone(), sampler, top_logprobs: a.top_logprobs };
    let n_ctx = (prompt.len() + a.max_tokens + 1).max(1);
    with_model!(numerics, &f, Some(n_ctx), |m| { generate_on(&mut m, &tok, &prompt, &params, a) })
}

fn generate_on<B: crate::ops::Ops>(
    m: &mut crate::model::Model<B>,
    tok: &crate::tokenizer::Tokenizer,
    prompt: &[u32],
    params: &crate::generate::GenerateParams,
    a: &GenerateArgs,
) -> Result<()> {
    use crate::generate::generate as run_generate;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut io_err = None;
    let json = a.json;
    let summary = run_generate(m, tok, prompt, params, |ev| {
        let r = if json {
            let mut o = serde_json::json!({"i": ev.i, "id": ev.id, "text": ev.text, "logprob": ev.logprob});
            if a.top_logprobs > 0 {
                o["top_logprobs"] = ev
                    .top_logprobs
                    .iter()
                    .map(|t| serde_json::json!({"id": t.token, "logprob": t.logprob}))
                    .collect::<Vec<_>>()
                    .into();
            }
            writeln!(out, "{o}")
        } else {
            write!(out, "{}", ev.text).and_then(|_| out.flush())
        };
        match r {
            Ok(()) => true,
            Err(e) => {
                io_err = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = io_err {
        return Err(stdout_err(e));
    }
    let tok_s = if summary.decode_seconds > 0.0 { summary.tokens_out as f64 / summary.decode_seconds } else { 0.0 };
    if json {
        let mut o = serde_json::json!({
            "stop_reason": summary.stop_reason.as_str(), "tokens_out": summary.tokens_out,
            "prompt_tokens": summary.prompt_tokens, "seed": summary.seed, "decode_tok_s": tok_s,
        });
        if !summary.tail_text.is_empty() {
            o["text"] = summary.tail_text.clone().into();
        }
        writeln!(out, "{o}").map_err(stdout_err)?;
    } else {
        writeln!(out, "{}", summary.tail_text).map_err(stdout_err)?;
        eprintln!(
            "[{}: {} tokens, prompt {}, seed {}, {:.1} tok/s]",
            summary.stop_reason.as_str(),
            summary.tokens_out,
            summary.prompt_tokens,
            summary.seed,
            tok_s
        );
    }
    out.flush().map_err(stdout_err)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn bench(
    path: &std::path::Path,
    backend: Option<BackendArg>,
    numerics: Option<Numerics>,
    prompt_tokens: usize,
    gen_tokens: usize,
    repeats: usize,
    json: bool,
) -> Result<()> {
    let numerics = check_backend(backend, numerics)?;
    if prompt_tokens == 0 || repeats == 0 {
        return Err(Error::Invalid("--prompt-tokens and --repeats must be at least 1".into()));
    }
    let f = open(path)?;
    let (pp, tg) = with_model!(numerics, &f, Some(prompt_tokens + gen_tokens + 1), |m| {
        bench_on(&mut m, prompt_tokens, gen_tokens, repeats, json)?
    });
    let model = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if json {
        let o = serde_json::json!({
            "backend": "cpu", "numerics": numerics.name(), "model": model, "prompt_tokens": prompt_tokens,
            "gen_tokens": gen_tokens, "prefill_tok_s": pp, "decode_tok_s": tg,
        });
        writeln!(out, "{o}").map_err(stdout_err)
    } else {
        writeln!(
            out,
            "{model}: cpu {}, pp{prompt_tokens} {pp:.1} tok/s, tg{gen_tokens} {tg:.1} tok/s (median of {repeats})",
            numerics.name()
        )
        .map_err(stdout_err)
    }
}

/// Prefill and decode tok/s, medians over `repeats`.
fn bench_on<B: crate::ops::Ops>(
    m: &mut crate::model::Model<B>,
    prompt_tokens: usize,
    gen_tokens: usize,
    repeats: usize,
    json: bool,
) -> Result<(f64, f64)> {
    // Deterministic token ids spread over the vocabulary (content does not change the cost).
    let n_vocab = m.hp.n_vocab as u64;
    let prompt: Vec<u32> = (0..prompt_tokens as u64).map(|i| ((i * 7919 + 13) % n_vocab) as u32).collect();
    let (mut pp, mut tg) = (Vec::new(), Vec::new());
    for r in 0..repeats {
        m.reset();
        let t = std::time::Instant::now();
        // Prompt logits of the last position only, as llama-bench and llama.cpp's generation do.
        let logits = m.forward_last(&prompt, &mut crate::ops::NoTaps)?;
        pp.push(prompt_tokens as f64 / t.elapsed().as_secs_f64());
        let mut next = argmax(&logits);
        let t = std::time::Instant::now();
        for _ in 0..gen_tokens {
            let l = m.forward(&[next], &mut crate::ops::NoTaps)?;
            next = argmax(&l);
        }
        if gen_tokens > 0 {
            tg.push(gen_tokens as f64 / t.elapsed().as_secs_f64());
        }
        if !json {
            eprintln!(
                "repeat {}/{repeats}: prefill {:.1} tok/s, decode {:.1} tok/s",
                r + 1,
                pp[r],
                tg.last().copied().unwrap_or(0.0)
            );
        }
    }
    Ok((median(pp), median(tg)))
}

fn argmax(v: &[f32]) -> u32 {
    v.iter().enumerate().fold((0usize, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0 as u32
}
