//! Fuzz target: rendering a fuzzed chat template (`chat::render_on`, the renderer the server and
//! `generate --chat` use), with the resource limits every template gets there (fuel, output
//! size, template size, recursion depth: see engine/tokenizer/src/chat.rs).
//!
//! Input: the first byte picks the flags (add_generation_prompt, which conversation), the rest is
//! the template (lossy UTF-8). Seeds: llama.cpp's template collection and the goldens' templates.
//! Properties: a typed `ChatError` or a string within the output limit, in bounded time and memory.
//!
//! The body is `orcd_fuzz::targets::chat_template::run` (shared with the `all` binary).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orcd_fuzz::targets::chat_template::run(data));
