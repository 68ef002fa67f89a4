//! Chat templates: `tokenizer.chat_template` rendered with minijinja, with the semantics of
//! transformers' `apply_chat_template` (`messages`, `add_generation_prompt`, `bos_token`,
//! `eos_token`, `raise_exception`, Python string methods via minijinja-contrib's pycompat).
//!
//! Invariant: a template that fails to parse or raises is a typed error naming the cause; untrusted
//! templates get a bounded amount of work (minijinja has no I/O; recursion is limited by it).

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
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", move |fmt: String| date.format(&fmt));
    env.add_template("chat", template).map_err(ChatError::Parse)?;
    let t = env.get_template("chat").map_err(ChatError::Parse)?;
    t.render(minijinja::context! {
        messages => messages_value(messages),
        add_generation_prompt => add_generation_prompt,
        bos_token => bos_token,
        eos_token => eos_token,
    })
    .map_err(ChatError::Render)
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
