//! Report rendering (insta snapshots of md / junit / html / checklists on a fixed result set),
//! gate semantics, and merging shards.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use orcd_conformance::case::{Backend, CaseResult, Outcome, Series};
use orcd_conformance::gates::{GatesFile, Status};
use orcd_conformance::html::Peers;
use orcd_conformance::merge::merge;
use orcd_conformance::report::Report;

fn r(id: &str, outcome: Outcome) -> CaseResult {
    let mut parts = id.split("::");
    let suite = parts.next().unwrap().to_string();
    let name = parts.next().unwrap().to_string();
    let backend = if parts.next() == Some("cuda") { Backend::Cuda } else { Backend::Cpu };
    CaseResult {
        id: id.into(),
        suite,
        name,
        backend,
        source: format!("goldens/{id}.yaml"),
        outcome,
        duration_ms: 1.0,
        rerun: format!("cargo nextest run -E 'test(={id})'"),
        metrics: Default::default(),
        series: Vec::new(),
    }
}

fn pass() -> Outcome {
    Outcome::Pass { detail: "ok".into() }
}

const GATES: &str = r#"
gates:
  - id: g1
    title: G1
    require: [{ suite: gguf }, { suite: quant }]
  - id: g2
    title: G2
    require: [{ suite: models, backend: cpu }]
  - id: g3
    title: G3
    require: [{ suite: models }]
checklists:
  - model: toy
    title: Toy model
    items:
      - { text: loads, cases: ["gguf::inspect-toy::*"] }
      - { text: logits on CUDA, cases: ["models::toy*::cuda"] }
      - { text: server, cases: ["server::toy*"] }
"#;

fn fixed_results() -> Vec<CaseResult> {
    let mut layer = r("models::toy-exact::cpu", pass());
    layer.series.push(Series {
        name: "NMSE per layer".into(),
        x_label: "layer".into(),
        y_label: "NMSE".into(),
        points: vec![[0.0, 1e-9], [1.0, 3e-9], [2.0, 2e-8], [3.0, 4e-8]],
        threshold: Some(1e-7),
    });
    layer.metrics.insert("decode_tok_s".into(), 101.5);
    vec![
        r("gguf::inspect-toy::cpu", pass()),
        r("gguf::malformed-x::cpu", Outcome::Fail { message: "accepted a malformed file\n  rerun: …".into() }),
        r("quant::q4_0-a::cpu", pass()),
        layer,
        r("models::toy-exact::cuda", Outcome::NotRun { reason: "no CUDA device".into() }),
    ]
}

fn defs() -> GatesFile {
    serde_norway::from_str(GATES).unwrap()
}

#[test]
fn gate_semantics() {
    let rep = Report::new(fixed_results(), Some("abc".into()), 0, &defs());
    let g: Vec<_> = rep.gates.iter().map(|g| (g.id.as_str(), g.status)).collect();
    // g1 has a failed case; g2's only case passed; g3 requires a not-run CUDA case.
    assert_eq!(g, vec![("g1", Status::Red), ("g2", Status::Green), ("g3", Status::Incomplete)]);
    assert!(rep.gates[2].reasons.iter().any(|r| r.contains("no CUDA device")), "{:?}", rep.gates[2].reasons);
    assert_eq!(rep.totals.pass + rep.totals.fail + rep.totals.not_run, rep.totals.total);
    assert_eq!((rep.totals.pass, rep.totals.fail, rep.totals.not_run), (3, 1, 1));
}

#[test]
fn gate_with_only_not_run_cases_is_not_green() {
    let results =
        vec![r("gguf::a::cpu", Outcome::NotRun { reason: "model not fetched".into() }), r("quant::b::cpu", pass())];
    let rep = Report::new(results, None, 0, &defs());
    assert_eq!(rep.gates[0].status, Status::Incomplete);
}

#[test]
fn gate_with_no_case_for_a_requirement_is_not_green() {
    let rep = Report::new(vec![r("gguf::a::cpu", pass())], None, 0, &defs());
    assert_eq!(rep.gates[0].status, Status::Incomplete, "quant has no case");
    assert!(rep.gates[0].reasons.iter().any(|r| r.contains("no case exists yet for suite quant")));
}

#[test]
fn checklist_ticks_only_passing_cases() {
    let rep = Report::new(fixed_results(), None, 0, &defs());
    let items: Vec<_> = rep.checklists[0].items.iter().map(|i| i.status).collect();
    assert_eq!(items, vec![Status::Green, Status::Incomplete, Status::Incomplete]);
    assert_eq!(rep.checklists[0].items[0].cases, vec!["gguf::inspect-toy::cpu".to_string()]);
}

#[test]
fn renderings() {
    let rep = Report::new(fixed_results(), Some("abc".into()), 0, &defs());
    insta::assert_snapshot!("report_md", rep.markdown());
    insta::assert_snapshot!("report_junit", rep.junit());
    insta::assert_snapshot!("checklist_md", rep.checklists[0].markdown());
    let peers: Peers =
        serde_norway::from_str("peers:\n  - { peer: llama.cpp, machine: cpu, model: toy, metric: tg, tok_s: 95 }\n")
            .unwrap();
    let html = orcd_conformance::html::render(&rep, &peers);
    assert!(html.contains("<svg"), "has plots");
    assert!(html.contains("threshold 1e-7"), "per-layer plot shows its threshold");
    insta::assert_snapshot!("report_html", html);
}

#[test]
fn json_round_trip() {
    let rep = Report::new(fixed_results(), Some("abc".into()), 7, &defs());
    let text = serde_json::to_string(&rep).unwrap();
    assert_eq!(Report::from_json(&text).unwrap(), rep);
}

#[test]
fn merging_partitions_reproduces_the_whole() {
    let all = fixed_results();
    let whole = Report::new(all.clone(), None, 0, &defs());
    let (a, b): (Vec<_>, Vec<_>) = all.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let a = a.into_iter().map(|x| x.1).collect();
    let b = b.into_iter().map(|x| x.1).collect();
    let merged = Report::new(merge(vec![a, b], None).unwrap(), None, 0, &defs());
    assert_eq!(merged.totals, whole.totals);
    assert_eq!(merged.suites, whole.suites);
    assert_eq!(merged.gates, whole.gates);
}

#[test]
fn merge_rejects_conflicting_outcomes() {
    let a = vec![r("quant::x::cpu", pass())];
    let b = vec![r("quant::x::cpu", Outcome::Fail { message: "differs".into() })];
    assert!(merge(vec![a, b], None).is_err());
}

#[test]
fn report_json_validates_against_the_documented_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(orcd_conformance::paths::repo_root().join("docs/report.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let rep = Report::new(fixed_results(), Some("abc".into()), 7, &defs());
    let mut v = serde_json::to_value(&rep).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    // The schema is not vacuous: a wrong outcome and a missing reason are rejected.
    v["cases"][0]["outcome"] = "maybe".into();
    assert!(!validator.is_valid(&v));
    let mut v = serde_json::to_value(&rep).unwrap();
    let nr = v["cases"].as_array_mut().unwrap().iter_mut().find(|c| c["outcome"] == "not_run").unwrap();
    nr.as_object_mut().unwrap().remove("reason");
    assert!(!validator.is_valid(&v));
}
