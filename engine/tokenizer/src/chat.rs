//! Chat templates: `tokenizer.chat_template` rendered with minijinja, with the semantics of
//! transformers' `apply_chat_template` (`messages`, `add_generation_prompt`, `bos_token`,
//! `eos_token`, `raise_exception`, Python string methods via minijinja-contrib's pycompat).
//!
//! Invariant: a template that fails to parse or raises is a typed error naming the cause; untrusted
//! templates get a bounded amount of work and memory: at most [`MAX_TEMPLATE_BYTES`] of source,
//! minijinja's fuel ([`fuel_for`]: it charges every instruction and every 64 bytes a template
//! creates, and refuses a known-size value such as `"x" * n` before making it), at most
//! [`MAX_OUTPUT_BYTES`] rendered, and [`MAX_RECURSION`] levels of macro/include nesting. minijinja
//! has no I/O. Exceeding a limit is [`ChatError::Limit`].

use orcd_gguf::gguf::GgufFile;

use crate::tokenizer::{Tokenizer, TokenizerError};

/// Why a chat prompt could not be rendered or tokenized. The message names the cause
/// (minijinja's error says where in the template).
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("chat template syntax: {0}")]
    Syntax(#[source] minijinja::Error),
    #[error("chat template does not parse: {0}")]
    Parse(#[source] minijinja::Error),
    /// Rendering failed, including a template's own `raise_exception(...)`.
    #[error("chat template failed: {0}")]
    Render(#[source] minijinja::Error),
    #[error("the model has no tokenizer.chat_template")]
    NoTemplate,
    #[error("{0}")]
    Tokenizer(#[from] TokenizerError),
    #[error("{context}: {source}")]
    Context { context: String, source: Box<ChatError> },
    /// A resource limit of untrusted templates was reached (see the module docs).
    #[error("chat template exceeds its limit: {0}")]
    Limit(String),
}

/// Largest template accepted (real ones are under 20 KB).
pub const MAX_TEMPLATE_BYTES: usize = 1 << 20;
/// Largest rendered prompt: far above any context a model has, far below memory trouble.
pub const MAX_OUTPUT_BYTES: usize = 16 << 20;
/// Nesting of macro calls and includes (minijinja's own cap is 500).
pub const MAX_RECURSION: usize = 100;

/// The fuel a render gets: a base (a few million instructions, about 256 MB of data at most)
/// plus room to copy each message a few times (one fuel per 64 bytes), so a long conversation
/// never runs out while a template that loops or builds huge strings does.
pub fn fuel_for(messages: &[Message]) -> u64 {
    let bytes: u64 = messages.iter().map(|m| (m.role.len() + m.content.len()) as u64).sum();
    4_000_000 + bytes / 4
}

/// A writer that refuses to grow past [`MAX_OUTPUT_BYTES`] (minijinja streams the output into it).
struct Bounded {
    out: String,
    over: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.over = true;
            return Err(std::io::Error::other("output limit"));
        }
        // minijinja writes whole UTF-8 strings; a chunk that is not one is an error, not a guess.
        let s = std::str::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        self.out.push_str(s);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ChatError {
    /// Wrap with a description of what was being done.
    pub fn context(self, context: impl Into<String>) -> Self {
        ChatError::Context { context: context.into(), source: Box::new(self) }
    }
}

type Result<T, E = ChatError> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Message { role: role.into(), content: content.into() }
    }
}

fn raise_exception(msg: String) -> std::result::Result<String, minijinja::Error> {
    Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
}

/// minijinja 3.1's formatter reads the key of a `str.format` field (`{x[key]}`) and of a printf
/// conversion (`%(key)s`) byte by byte and panics, slicing inside a character, when the key holds
/// a non-ASCII character (found by the fuzz target `chat_template`, crash-2b6c7bec). Such keys are
/// refused here, before it runs: a typed render error instead of a panic. The scan is a superset
/// of where the formatter reads keys (any `[` inside a `{...}` field, any `%(`), so it may refuse a
/// format string the formatter would have rejected anyway, never one it renders.
fn check_format_keys(s: &str, printf: bool) -> std::result::Result<(), minijinja::Error> {
    let b = s.as_bytes();
    // The bytes from `from` to the next `close` (or the end): must be ASCII; returns their length.
    let key = |from: usize, close: u8| -> std::result::Result<usize, minijinja::Error> {
        let rest = b.get(from..).unwrap_or(&[]);
        let end = rest.iter().position(|&c| c == close).unwrap_or(rest.len());
        if rest[..end].is_ascii() {
            Ok(end)
        } else {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                "a format key (`{x[...]}` or `%(...)`) must be ASCII",
            ))
        }
    };
    let mut i = 0;
    while i < b.len() {
        match (printf, b[i], b.get(i + 1)) {
            (true, b'%', Some(b'%')) | (false, b'{', Some(b'{')) => i += 2,
            (true, b'%', Some(b'(')) => i += 2 + key(i + 2, b')')?,
            (false, b'{', _) => {
                i += 1;
                while i < b.len() && b[i] != b'}' {
                    if b[i] == b'[' {
                        i += 1 + key(i + 1, b']')?;
                    }
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// The `format` filter (printf style), with [`check_format_keys`] first.
fn format_filter(
    state: &mut minijinja::State,
    args: minijinja::value::Rest<minijinja::value::ValueOrKwargs>,
) -> std::result::Result<minijinja::Value, minijinja::Error> {
    // Keyword arguments (`%(k)s` takes them) pass through as the values they arrived as.
    let args: Vec<minijinja::Value> = args.0.into_iter().map(minijinja::Value::from).collect();
    if let Some(s) = args.first().and_then(minijinja::Value::as_str) {
        check_format_keys(s, true)?;
    }
    minijinja::Value::from_function(minijinja::filters::format).call(state, &args)
}

/// Python's string methods (minijinja-contrib's pycompat), with [`check_format_keys`] before
/// `str.format`.
fn string_methods(
    state: &mut minijinja::State,
    value: &minijinja::Value,
    method: &str,
    args: &[minijinja::Value],
) -> std::result::Result<minijinja::Value, minijinja::Error> {
    if let (Some(s), "format") = (value.as_str(), method) {
        check_format_keys(s, false)?;
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

fn messages_value(messages: &[Message]) -> minijinja::Value {
    let list: Vec<minijinja::Value> = messages
        .iter()
        .map(|m| {
            let mut map = std::collections::BTreeMap::new();
            map.insert("role".to_string(), minijinja::Value::from(m.role.as_str()));
            map.insert("content".to_string(), minijinja::Value::from(m.content.as_str()));
            minijinja::Value::from(map)
        })
        .collect();
    minijinja::Value::from(list)
}

/// A calendar date for `strftime_now` (templates print today's date; tests fix it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// Today (UTC) from the system clock.
    pub fn today() -> Self {
        let days = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64 / 86_400)
            .unwrap_or(0);
        Date::from_days(days)
    }

    /// The civil (proleptic Gregorian) date `days` after 1970-01-01 (Howard Hinnant's algorithm).
    pub fn from_days(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Date { year, month, day }
    }

    /// The subset of strftime templates use: %Y %m %d %B %b %e %y %%.
    fn format(self, fmt: &str) -> String {
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let name = MONTHS[(self.month.clamp(1, 12) - 1) as usize];
        let mut out = String::new();
        let mut it = fmt.chars();
        while let Some(c) = it.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match it.next() {
                Some('Y') => out += &self.year.to_string(),
                Some('y') => out += &format!("{:02}", self.year.rem_euclid(100)),
                Some('m') => out += &format!("{:02}", self.month),
                Some('d') => out += &format!("{:02}", self.day),
                Some('e') => out += &format!("{:2}", self.day),
                Some('B') => out += name,
                Some('b') => out += &name[..3],
                Some('%') => out.push('%'),
                Some(o) => {
                    out.push('%');
                    out.push(o);
                }
                None => out.push('%'),
            }
        }
        out
    }
}

/// Render `template` for `messages` (today's date for `strftime_now`).
pub fn render(
    template: &str,
    messages: &[Message],
    add_generation_prompt: bool,
    bos_token: &str,
    eos_token: &str,
) -> Result<String> {
    render_on(template, messages, add_generation_prompt, bos_token, eos_token, Date::today())
}

/// [`render`] with a fixed date.
pub fn render_on(
    template: &str,
    messages: &[Message],
    add_generation_prompt: bool,
    bos_token: &str,
    eos_token: &str,
    date: Date,
) -> Result<String> {
    let mut env = minijinja::Environment::new();
    // transformers renders with trim_blocks and lstrip_blocks.
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(ChatError::Syntax)?;
    env.set_syntax(syntax);
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(ChatError::Limit(format!("{} bytes of template (at most {MAX_TEMPLATE_BYTES})", template.len())));
    }
    env.set_fuel(Some(fuel_for(messages)));
    env.set_recursion_limit(MAX_RECURSION);
    env.set_unknown_method_callback(string_methods);
    env.add_filter("format", format_filter);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", move |fmt: String| date.format(&fmt));
    env.add_template("chat", template).map_err(ChatError::Parse)?;
    let t = env.get_template("chat").map_err(ChatError::Parse)?;
    let mut out = Bounded { out: String::new(), over: false };
    let r = t.render_captured_to(
        minijinja::context! {
            messages => messages_value(messages),
            add_generation_prompt => add_generation_prompt,
            bos_token => bos_token,
            eos_token => eos_token,
        },
        &mut out,
    );
    match r {
        Ok(_) => Ok(out.out),
        Err(_) if out.over => Err(ChatError::Limit(format!("more than {MAX_OUTPUT_BYTES} bytes rendered"))),
        Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => {
            Err(ChatError::Limit(format!("out of fuel ({} for this conversation): {e}", fuel_for(messages))))
        }
        Err(e) => Err(ChatError::Render(e)),
    }
}

/// The prompt ids of a chat with the model's own `tokenizer.chat_template`, as llama.cpp's chat
/// path builds them: render with the vocabulary's BOS/EOS pieces and the generation prompt, drop a
/// leading BOS text when the vocabulary adds BOS itself (so it is not doubled), then tokenize with
/// special tokens added and parsed. Returns the rendered text and its ids.
pub fn chat_prompt(f: &GgufFile, tok: &Tokenizer, messages: &[Message], date: Date) -> Result<(String, Vec<u32>)> {
    let template = f.get_str("tokenizer.chat_template").map_err(|_| ChatError::NoTemplate)?;
    let piece = |id: Option<u32>| -> String {
        id.and_then(|i| tok.token_to_piece_with(i, true).ok())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let (bos, eos) = (piece(tok.bos()), piece(tok.eos()));
    let text = render_on(template, messages, true, &bos, &eos, date)?;
    let text = match text.strip_prefix(bos.as_str()) {
        Some(rest) if tok.add_bos() && !bos.is_empty() => rest.to_string(),
        _ => text,
    };
    let ids = tok.encode(&text, true, true)?;
    Ok((text, ids))
}

#[cfg(test)]
mod tests {

    #[test]
    fn civil_dates_from_days() {
        // Expected values from Python's datetime.date (an independent calendar implementation).
        for (days, (year, month, day)) in [
            (0, (1970, 1, 1)),
            (-1, (1969, 12, 31)),
            (11_016, (2000, 2, 29)),
            (19_723, (2024, 1, 1)),
            (20_790, (2026, 12, 3)),
        ] {
            assert_eq!(Date::from_days(days), Date { year, month, day }, "day {days}");
        }
    }
    use super::*;

    #[test]
    fn chatml_renders() {
        let t = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] | trim }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        let out = render(t, &[Message::new("user", " Hi ")], true, "", "").unwrap();
        assert_eq!(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}";
        let e = render(t, &[Message::new("system", "x")], false, "", "").unwrap_err();
        assert!(e.to_string().contains("first must be user"), "{e}");
    }

    #[test]
    fn dates() {
        let d = Date { year: 2026, month: 1, day: 5 };
        assert_eq!(d.format("%Y-%m-%d %B %b %%"), "2026-01-05 January Jan %");
        let t = Date::today();
        assert!(t.year >= 2024 && (1..=12).contains(&t.month) && (1..=31).contains(&t.day));
    }

    #[test]
    fn python_string_methods() {
        let t = "{{ messages[0]['content'].strip().upper() }}";
        assert_eq!(render(t, &[Message::new("user", " ab ")], false, "", "").unwrap(), "AB");
    }
}
