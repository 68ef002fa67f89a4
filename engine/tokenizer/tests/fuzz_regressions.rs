//! Regression cases from the fuzz targets (fuzz/, docs/RELIABILITY.md): each input that once
//! crashed a target, kept so the fix stays. Every case must end in `Ok` or a typed error.
//!
//! - chat_template crash-2b6c7bec (minijinja 3.1's formatter sliced inside a character when a
//!   `str.format` key `{x[...]}` or a printf key `%(...)` held a non-ASCII character): the
//!   artifact as found (a mutated llama.cpp template, tests/data/fuzz/) and minimal templates.

use orcd_tokenizer::chat::{render_on, ChatError, Date, Message};

fn render(template: &str) -> Result<String, ChatError> {
    let msgs = [Message::new("user", "Hello")];
    render_on(template, &msgs, true, "<s>", "</s>", Date { year: 2025, month: 6, day: 1 })
}

#[test]
fn chat_template_crash_2b6c7bec_artifact() {
    let bytes = include_bytes!("data/fuzz/chat_template-crash-2b6c7bec.bin");
    // The fuzz target's input: one flags byte, then the template.
    let template = String::from_utf8_lossy(&bytes[1..]);
    let r = render(&template);
    assert!(matches!(r, Err(ChatError::Render(_))), "{r:?}");
}

#[test]
fn non_ascii_str_format_key_is_a_typed_error() {
    for t in
        ["{{ '{x[\u{e9}]}'.format(x={}) }}", "{{ '<{x[\u{ff5c}>'.format(1) }}", "{{ '{0[a\u{e9}b]}'.format([1]) }}"]
    {
        let r = render(t);
        assert!(matches!(r, Err(ChatError::Render(_))), "{t}: {r:?}");
    }
}

#[test]
fn non_ascii_printf_key_is_a_typed_error() {
    for t in ["{{ '%(\u{e9})s'|format(x=1) }}", "{{ '%(a\u{1f999}' | format(a=1) }}"] {
        let r = render(t);
        assert!(matches!(r, Err(ChatError::Render(_))), "{t}: {r:?}");
    }
}

#[test]
fn ascii_keys_and_non_ascii_text_still_format() {
    let r = render("{{ '\u{ff5c}{x[k]}\u{ff5c}'.format(x={'k': 'v'}) }}|{{ '%(k)s\u{e9}%%'|format(k=2) }}");
    assert_eq!(r.as_deref().map_err(ToString::to_string), Ok("\u{ff5c}v\u{ff5c}|2\u{e9}%"));
}

// The resource limits the chat_template target runs under (chat.rs): exceeding one is a typed
// `ChatError::Limit`, never a long render or a large allocation.

#[test]
fn a_template_that_loops_runs_out_of_fuel() {
    let r = render("{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}");
    assert!(matches!(&r, Err(ChatError::Limit(m)) if m.contains("fuel")), "{r:?}");
}

#[test]
fn a_template_that_builds_a_huge_string_is_refused() {
    for t in [
        "{{ 'x' * 90000000 }}",
        "{% set a = 'x' * 1000000 %}{% set b = a ~ a ~ a ~ a %}{% set c = b ~ b ~ b ~ b %}{{ c ~ c ~ c ~ c ~ c }}",
    ] {
        let r = render(t);
        assert!(matches!(r, Err(ChatError::Limit(_))), "{t}: {r:?}");
    }
}

#[test]
fn an_oversized_template_is_refused_before_parsing() {
    let t = "x".repeat(orcd_tokenizer::chat::MAX_TEMPLATE_BYTES + 1);
    assert!(matches!(render(&t), Err(ChatError::Limit(_))));
}
