//! The `worker-orcd` command line (DESIGN §6). The contract: exit 0 on success; on any error one
//! line `error: ...` on stderr and exit code 2 — never a panic, never code 101. One module per
//! subcommand; this one parses the arguments and holds what they share.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::gguf::GgufFile;
use crate::model::{AnyModel, LoadOpts};
use crate::{Error, Result};
use orcd_backends::{BackendKind, Column, Numerics};

mod bench;
mod generate;
mod inspect;
mod logits;
mod serve;
mod tensor;
mod tokenize;

pub use inspect::{inspect_json, inspect_text, value_json};

#[derive(Debug, Parser)]
#[command(name = "worker-orcd", version, about = "worker-orcd: GGUF LLM inference engine")]
pub(crate) struct Cli {
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
    /// Serve the worker API and an OpenAI-compatible API over HTTP (continuous batching).
    Serve(ServeArgs),
    /// Measure prefill and decode throughput (medians over repeats).
    Bench {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        #[arg(long, value_enum)]
        numerics: Option<NumericsArg>,
        #[arg(long, default_value_t = 512)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 128)]
        gen_tokens: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Context the KV cache is allocated for (default: prompt + generated tokens + 1; with
        /// --batch, per sequence: prompt + largest batch + generated tokens).
        #[arg(long)]
        ctx: Option<usize>,
        #[arg(long)]
        json: bool,
        /// Also measure batched decode: comma-separated sequence counts (each 1..=256), each one
        /// forward per step with one row per sequence (e.g. 1,4,16,64).
        #[arg(long, value_name = "LIST")]
        batch: Option<String>,
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
        numerics: Option<NumericsArg>,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    /// The GGUF model (default: the fetched SmolLM2-135M-Instruct).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    #[arg(long)]
    pub(crate) prompt: String,
    /// Wrap the prompt as one user message with the model's chat template.
    #[arg(long)]
    pub(crate) chat: bool,
    #[arg(long, default_value_t = 128)]
    pub(crate) max_tokens: usize,
    /// 0 = greedy (default 0.8, llama.cpp's).
    #[arg(long, default_value_t = 0.8)]
    pub(crate) temperature: f32,
    /// 0 = off.
    #[arg(long, default_value_t = 40)]
    pub(crate) top_k: usize,
    #[arg(long, default_value_t = 0.95)]
    pub(crate) top_p: f32,
    #[arg(long, default_value_t = 0.05)]
    pub(crate) min_p: f32,
    /// 1.0 = off; applied over the last 64 tokens.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) repeat_penalty: f32,
    /// Default: chosen at random and reported.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Stop when the generated text contains this string (repeatable; the string is not printed).
    #[arg(long)]
    pub(crate) stop: Vec<String>,
    #[arg(long, value_enum)]
    pub(crate) backend: Option<BackendArg>,
    #[arg(long, value_enum)]
    pub(crate) numerics: Option<NumericsArg>,
    /// One JSON object per token, then a summary object.
    #[arg(long)]
    pub(crate) json: bool,
    /// With --json: include this many top alternatives with each token's logprob.
    #[arg(long, default_value_t = 0)]
    pub(crate) top_logprobs: usize,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The GGUF model (default: the fetched SmolLM2-135M-Instruct).
    #[arg(long)]
    pub(crate) model: Option<std::path::PathBuf>,
    /// Address to listen on (port 0: any free port; the address is printed on stderr).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: std::net::SocketAddr,
    #[arg(long, value_enum)]
    pub(crate) backend: Option<BackendArg>,
    #[arg(long, value_enum)]
    pub(crate) numerics: Option<NumericsArg>,
    /// Sequences decoded together (continuous batching).
    #[arg(long, default_value_t = 4)]
    pub(crate) parallel: usize,
    /// Requests that may wait for a sequence; beyond that, 429 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub(crate) queue: usize,
    /// Context per sequence (default: the model's training context, at most 4096).
    #[arg(long)]
    pub(crate) ctx: Option<usize>,
    /// Require `Authorization: Bearer KEY` on every route but /health (or set ORCD_API_KEY).
    #[arg(long)]
    pub(crate) api_key: Option<String>,
    /// Seconds a request may run before it ends with INFERENCE_TIMEOUT.
    #[arg(long, default_value_t = 600.0)]
    pub(crate) timeout: f64,
    /// Recompute every prompt (by default a request continues from a free sequence's cached
    /// prompt when it starts with it: multi-turn chat).
    #[arg(long)]
    pub(crate) no_prefix_cache: bool,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct TextArgs {
    #[arg(long)]
    pub(crate) text: Option<String>,
    /// Read the text from a file, byte for byte (no newline stripped).
    #[arg(long)]
    pub(crate) text_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct PromptArgs {
    #[arg(long)]
    pub(crate) prompt: Option<String>,
    #[arg(long)]
    pub(crate) prompt_file: Option<PathBuf>,
    /// Token ids fed exactly as given (no BOS added).
    #[arg(long, value_delimiter = ',')]
    pub(crate) tokens: Option<Vec<u32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BackendArg {
    Cpu,
    Cuda,
}

/// `exact`: dequantized weights, f32 activations and KV cache. `fast`: 8-bit activations for
/// quantized matmuls and an F16 KV cache, as llama.cpp computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum NumericsArg {
    Exact,
    Fast,
}

/// The registry column of `--backend` / `--numerics`: the backend defaults to cuda where a device
/// is present, else cpu (DESIGN §6); the numerics to `fast`, as llama.cpp computes.
pub(crate) fn column(backend: Option<BackendArg>, numerics: Option<NumericsArg>) -> Column {
    let backend = match backend {
        Some(BackendArg::Cpu) => BackendKind::Cpu,
        Some(BackendArg::Cuda) => BackendKind::Cuda,
        None => BackendKind::default_here(),
    };
    let numerics = match numerics {
        Some(NumericsArg::Exact) => Numerics::Exact,
        Some(NumericsArg::Fast) | None => Numerics::Fast,
    };
    Column { backend, numerics }
}

/// Load `f` on `col` with a context of `n_ctx` positions (one sequence).
/// Load `f` on `col` with a KV cache of `n_ctx` positions for `n_seq` sequences (None: one).
pub(crate) fn load_model(col: Column, f: &GgufFile, n_ctx: usize, n_seq: Option<usize>) -> Result<Box<dyn AnyModel>> {
    col.load(f, &LoadOpts { n_ctx: Some(n_ctx), n_seq, ..LoadOpts::default() })
        .map_err(|e| Error::Invalid(e.to_string()))
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
        Command::Inspect { file, json } => inspect::inspect(&file, json),
        Command::Tensor { file, name, out } => tensor::tensor(&file, &name, &out),
        Command::Tokenize { model, text, add_special, parse_special } => {
            tokenize::tokenize(&model, &text, add_special, parse_special)
        }
        Command::Detokenize { model, ids } => tokenize::detokenize(&model, &ids),
        Command::Generate(args) => generate::generate(&args),
        Command::Serve(args) => serve::serve(&args),
        Command::Bench { model, backend, numerics, prompt_tokens, gen_tokens, repeats, ctx, json, batch } => {
            let batch = batch.as_deref().map(bench::parse_batch).transpose()?;
            bench::bench(&model, backend, numerics, prompt_tokens, gen_tokens, repeats, ctx, json, batch.as_deref())
        }
        Command::Logits { model, prompt, no_add_special, parse_special, backend, numerics, out } => {
            logits::logits(&model, &prompt, !no_add_special, parse_special, backend, numerics, &out)
        }
    }
}

pub(crate) fn read_text(path: &std::path::Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    String::from_utf8(bytes).map_err(|_| Error::Invalid(format!("{}: not valid UTF-8", path.display())))
}

pub(crate) fn load_tokenizer(f: &GgufFile) -> Result<crate::tokenizer::Tokenizer> {
    crate::tokenizer::Tokenizer::from_gguf(f).map_err(Error::from)
}

/// The fetch cache (`fixtures/fetch.py`): `$ORCD_CACHE`, else `~/.cache/orcd`.
pub(crate) fn fetch_cache() -> PathBuf {
    std::env::var_os("ORCD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache").join("orcd"))
}

pub(crate) fn open(path: &std::path::Path) -> Result<GgufFile> {
    GgufFile::open(path).map_err(|e| match e {
        // I/O errors already name the path.
        e @ crate::gguf::GgufError::Io { .. } => Error::from(e),
        e => Error::from(e).context(path.display().to_string()),
    })
}

pub(crate) fn stdout_err(e: std::io::Error) -> Error {
    Error::Io { path: "<stdout>".into(), source: e }
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
