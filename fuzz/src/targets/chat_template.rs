//! Fuzz target: rendering a fuzzed chat template (`chat::render_on`, the renderer the server and
//! `generate --chat` use), with the resource limits every template gets there (fuel, output
//! size, template size, recursion depth: see engine/tokenizer/src/chat.rs).
//!
//! Input: the first byte picks the flags (add_generation_prompt, which conversation), the rest is
//! the template (lossy UTF-8). Seeds: llama.cpp's template collection and the goldens' templates.
//! Properties: a typed `ChatError` or a string within the output limit, in bounded time and memory.

use orcd_tokenizer::chat::{render_on, Date, Message, MAX_OUTPUT_BYTES};

pub fn run(data: &[u8]) {
    let Some((&flags, template)) = data.split_first() else { return };
    let template = String::from_utf8_lossy(template);
    let conversations: [&[Message]; 3] = [
        &[Message::new("user", "Hello")][..],
        &[
            Message::new("system", "You are terse."),
            Message::new("user", "2+2?"),
            Message::new("assistant", "4"),
            Message::new("user", "and 3+3?"),
        ][..],
        &[Message::new("assistant", "first"), Message::new("tool", "{\"x\": 1}"), Message::new("", "")][..],
    ];
    let msgs = conversations[usize::from(flags >> 1) % conversations.len()];
    let date = Date { year: 2025, month: 6, day: 1 };
    match render_on(&template, msgs, flags & 1 == 1, "<s>", "</s>", date) {
        Ok(s) => assert!(s.len() <= MAX_OUTPUT_BYTES, "{} bytes rendered", s.len()),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
