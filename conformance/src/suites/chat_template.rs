//! Suite `chat_template`: our minijinja rendering of `tokenizer.chat_template` against Python
//! jinja2 rendering the same template as transformers' `apply_chat_template` does
//! (goldens/recorders/record_chat_templates.py). Tolerance: exact text; a template that raises in
//! jinja2 must raise here too.

use std::path::PathBuf;

use orcd_engine::chat::{render_on, Date, Message};
use serde::Deserialize;

use crate::case::Outcome;

#[derive(Debug, Clone, Deserialize)]
pub struct Msg {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChatCaseFile {
    pub name: String,
    pub template: String,
    pub messages: Vec<Msg>,
    pub add_generation_prompt: bool,
    pub bos_token: String,
    pub eos_token: String,
    pub expected: Option<String>,
    pub expected_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ChatCase {
    pub file: ChatCaseFile,
    pub dir: PathBuf,
}

/// The date the recorder fixes for `strftime_now`.
const RECORDED_ON: Date = Date { year: 2026, month: 1, day: 1 };

pub fn run(c: &ChatCase) -> Outcome {
    let f = &c.file;
    let path = c.dir.join(&f.template);
    let template = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return Outcome::Fail { message: format!("{}: {e}", path.display()) },
    };
    let msgs: Vec<Message> = f.messages.iter().map(|m| Message::new(&m.role, &m.content)).collect();
    let got = render_on(&template, &msgs, f.add_generation_prompt, &f.bos_token, &f.eos_token, RECORDED_ON);
    match (&f.expected, &f.expected_error, got) {
        (Some(want), _, Ok(got)) if *want == got => {
            Outcome::Pass { detail: format!("{} bytes equal jinja2's", got.len()) }
        }
        (Some(want), _, Ok(got)) => {
            let at = want.bytes().zip(got.bytes()).position(|(a, b)| a != b).unwrap_or(want.len().min(got.len()));
            let ctx = |s: &str| s.get(at.saturating_sub(20)..(at + 40).min(s.len())).unwrap_or("").to_string();
            Outcome::Fail {
                message: format!(
                    "rendering differs from jinja2's (metric: exact text) at byte {at}:\n  ours:   {:?}\n  jinja2: {:?}",
                    ctx(&got),
                    ctx(want)
                ),
            }
        }
        (Some(_), _, Err(e)) => Outcome::Fail { message: format!("jinja2 renders this, we fail: {e}") },
        (None, Some(_), Err(e)) => Outcome::Pass { detail: format!("raises as jinja2 does: {e}") },
        (None, Some(want), Ok(_)) => Outcome::Fail { message: format!("jinja2 raises {want:?}, we render") },
        (None, None, _) => Outcome::Fail { message: "case has neither expected nor expected_error".into() },
    }
}
