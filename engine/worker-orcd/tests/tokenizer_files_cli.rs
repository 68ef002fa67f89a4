//! `worker-orcd tokenize` / `detokenize --model X` with a tokenizer.json (DESIGN §6: same flags
//! as for GGUF files; the file kind is recognised by content): a toy byte-level BPE file, and
//! typed one-line errors (exit 2) for files that are not tokenizers or use unsupported components.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const TOY: &str = r#"{"version":"1.0","truncation":null,"padding":null,
 "added_tokens":[{"id":6,"content":"<s>","special":true,"normalized":false,"lstrip":false,"rstrip":false,"single_word":false}],
 "normalizer":null,
 "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
 "post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
   "pair":[],"special_tokens":{"<s>":{"id":"<s>","ids":[6],"tokens":["<s>"]}}},
 "decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},
 "model":{"type":"BPE","dropout":null,"unk_token":null,
   "vocab":{"a":0,"b":1,"c":2,"Ġ":3,"ab":4,"Ġab":5,"<s>":6},
   "merges":["a b",["Ġ","ab"]]}}"#;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_worker-orcd")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tokenizer_json_through_the_cli() {
    let dir = std::env::temp_dir().join(format!("orcd-tokjson-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("toy.json");
    std::fs::write(&path, TOY).unwrap();
    let model = path.to_str().unwrap();

    let (code, out, err) = run(&["tokenize", "--model", model, "--text", "ab ab"]);
    assert_eq!((code, out.trim(), err.as_str()), (0, "[4,5]", ""));
    let (code, out, _) = run(&["tokenize", "--model", model, "--text", "ab<s>", "--add-special", "--parse-special"]);
    assert_eq!((code, out.trim()), (0, "[6,4,6]"));
    let (code, out, _) = run(&["detokenize", "--model", model, "--ids", "6,4,5"]);
    assert_eq!((code, out.as_str()), (0, "<s>ab ab\n"));

    // Unsupported component: named, one line, exit 2.
    std::fs::write(&path, TOY.replace(r#""normalizer":null"#, r#""normalizer":{"type":"Precompiled"}"#)).unwrap();
    let (code, _, err) = run(&["tokenize", "--model", model, "--text", "x"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: ") && err.contains("normalizer Precompiled") && err.lines().count() == 1, "{err}");

    // Neither GGUF, JSON nor a rank file.
    std::fs::write(&path, "hello").unwrap();
    let (code, _, err) = run(&["detokenize", "--model", model, "--ids", "1"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: "), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
