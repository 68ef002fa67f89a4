//! Chat templates: `tokenizer.chat_template` rendered with minijinja, with the semantics of
//! transformers' `apply_chat_template` (`messages`, `add_generation_prompt`, `bos_token`,
//! `eos_token`, `raise_exception`, Python string methods via minijinja-contrib's pycompat).
//!
//! Invariant: a template that fails to parse or raises is a typed error naming the cause; untrusted
//! templates get a bounded amount of work (minijinja has no I/O; recursion is limited by it).

use crate::{Error, Result};

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

/// Render `template` for `messages`.
pub fn render(
    template: &str,
    messages: &[Message],
    add_generation_prompt: bool,
    bos_token: &str,
    eos_token: &str,
) -> Result<String> {
    let mut env = minijinja::Environment::new();
    // transformers renders with trim_blocks and lstrip_blocks.
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|e| Error::Invalid(format!("chat template syntax: {e}")))?;
    env.set_syntax(syntax);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", raise_exception);
    env.add_template("chat", template).map_err(|e| Error::Invalid(format!("chat template does not parse: {e}")))?;
    let t = env.get_template("chat").map_err(|e| Error::Invalid(format!("chat template: {e}")))?;
    t.render(minijinja::context! {
        messages => messages_value(messages),
        add_generation_prompt => add_generation_prompt,
        bos_token => bos_token,
        eos_token => eos_token,
    })
    .map_err(|e| Error::Invalid(format!("chat template failed: {e}")))
}

#[cfg(test)]
mod tests {
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
    fn python_string_methods() {
        let t = "{{ messages[0]['content'].strip().upper() }}";
        assert_eq!(render(t, &[Message::new("user", " ab ")], false, "", "").unwrap(), "AB");
    }
}
