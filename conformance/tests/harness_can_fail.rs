//! The harness must be able to fail: each suite runner, given a golden that was tampered with,
//! reports a failure (and names what differs). Guards against runners that pass everything.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use orcd_conformance::case::{run_case, Backend, CaseKind, Outcome};
use orcd_conformance::discover::load_case_file;
use orcd_conformance::paths;

fn load(rel: &str) -> orcd_conformance::Case {
    let p = paths::goldens_dir().join(rel);
    load_case_file(&p).expect("case file parses").expect("is a case")
}

fn fail_message(case: &orcd_conformance::Case) -> String {
    match run_case(case, Backend::Cpu).outcome {
        Outcome::Fail { message } => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn gguf_inspect_fails_on_a_tampered_value() {
    let mut case = load("gguf/inspect/valid-seed1.yaml");
    assert!(matches!(case.kind, CaseKind::GgufInspect(_)), "not an inspect case");
    assert!(matches!(run_case(&case, Backend::Cpu).outcome, Outcome::Pass { .. }), "untampered case passes");
    let CaseKind::GgufInspect(c) = &mut case.kind else { unreachable!() };
    let kv = c.metadata.iter_mut().find(|kv| kv.key == "llama.block_count").expect("key");
    kv.value = Some(serde_norway::Value::from(2u64));
    let msg = fail_message(&case);
    assert!(msg.contains("llama.block_count"), "{msg}");
    assert!(msg.contains("rerun: cargo nextest run"), "{msg}");
}

#[test]
fn gguf_tensors_fails_on_a_tampered_hash() {
    let mut case = load("gguf/tensors/all-types.yaml");
    let CaseKind::GgufTensors(c) = &mut case.kind else { panic!("not a tensors case") };
    c.tensors[3].sha256 = "0".repeat(64);
    let name = c.tensors[3].name.clone();
    let msg = fail_message(&case);
    assert!(msg.contains(&name), "{msg}");
}

#[test]
fn quant_fails_on_a_flipped_expected_value() {
    let dir = paths::goldens_dir().join("quant");
    let first = std::fs::read_dir(&dir)
        .expect("goldens/quant exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .min()
        .expect("a quant case");
    let mut case = load_case_file(&first).expect("parses").expect("case");
    let CaseKind::Quant(q) = &mut case.kind else { panic!("not a quant case") };
    // Point the expectation at a copy with one value's last bit flipped (an absolute path replaces the folder).
    let expected = q.dir.join(&q.file.expected);
    let mut arr = orcd_engine::npy::read(&expected).expect("npy");
    let n = arr.data.len();
    arr.data[n - 4] ^= 1;
    let tmp = std::env::temp_dir().join(format!("orcd-tampered-{}.npy", std::process::id()));
    let mut buf = Vec::new();
    orcd_engine::npy::write_f32(&mut buf, &arr.shape, &arr.to_f32().expect("f32")).expect("write");
    std::fs::write(&tmp, buf).expect("write tmp");
    q.file.expected = tmp.display().to_string();
    let msg = fail_message(&case);
    let _ = std::fs::remove_file(&tmp);
    assert!(msg.contains("differ"), "{msg}");
}

#[test]
fn malformed_case_fails_when_the_file_is_valid() {
    let (bytes, _) = orcd_fixtures::valid_fixture(1).to_bytes();
    let o = orcd_conformance::suites::gguf::run_malformed(&bytes, "truncated");
    assert!(matches!(o, Outcome::Fail { .. }), "{o:?}");
}

// ----- suite `ops`: the KV guard region catches a write out of bounds. -----

mod leaky {
    use orcd_engine::gguf::{GgufFile, TensorInfo};
    use orcd_engine::ops::{Act, AttnParams, BatchRows, Index, KvSpec, KvType, Ops, RopeParams, RowGroups};
    use orcd_engine::Result;

    /// Where [`Leaky`]'s `kv_write` also writes every row.
    #[derive(Debug, Clone, Copy)]
    pub enum Leak {
        None,
        /// One position further (the last row lands in a spare position).
        NextPos,
        /// Into the spare sequence (id 1).
        SpareSeq,
        /// Into layer 0 (the suite writes layer 1 only).
        Layer0,
    }

    /// Backend `B`, except that `kv_write` first writes the rows a second time where `leak` says.
    #[derive(Debug, Clone)]
    pub struct Leaky<B> {
        pub inner: B,
        pub leak: Leak,
    }

    impl<B: Ops> Ops for Leaky<B> {
        type Tensor = B::Tensor;
        type Weight = B::Weight;
        type Kv = B::Kv;
        type Batch = (BatchRows, B::Batch);
        type Ids = B::Ids;

        fn name(&self) -> &'static str {
            "leaky"
        }
        fn kv_type(&self) -> KvType {
            self.inner.kv_type()
        }
        fn load_weight(&self, f: &GgufFile, t: &TensorInfo) -> Result<B::Weight> {
            self.inner.load_weight(f, t)
        }
        fn tensor_from_host(&self, rows: usize, cols: usize, data: &[f32]) -> Result<B::Tensor> {
            self.inner.tensor_from_host(rows, cols, data)
        }
        fn shape(&self, t: &B::Tensor) -> (usize, usize) {
            self.inner.shape(t)
        }
        fn to_host(&self, t: &B::Tensor) -> Result<Vec<f32>> {
            self.inner.to_host(t)
        }
        fn reshape(&self, t: B::Tensor, rows: usize, cols: usize) -> Result<B::Tensor> {
            self.inner.reshape(t, rows, cols)
        }
        fn weight_dims(&self, w: &B::Weight) -> Vec<u64> {
            self.inner.weight_dims(w)
        }
        fn upload_batch(&self, rows: &BatchRows) -> Result<Self::Batch> {
            Ok((rows.clone(), self.inner.upload_batch(rows)?))
        }
        fn batch_groups(&self, b: &Self::Batch) -> RowGroups {
            self.inner.batch_groups(&b.1)
        }
        fn kv_alloc(&self, spec: &KvSpec) -> Result<B::Kv> {
            self.inner.kv_alloc(spec)
        }
        fn kv_bytes(&self, kv: &B::Kv) -> usize {
            self.inner.kv_bytes(kv)
        }
        fn kv_write(&self, kv: &mut B::Kv, il: usize, k: &B::Tensor, v: &B::Tensor, b: &Self::Batch) -> Result<()> {
            let (mut rows, mut layer) = (b.0.clone(), il);
            match self.leak {
                Leak::None => {}
                Leak::NextPos => rows.pos.iter_mut().for_each(|p| *p += 1),
                Leak::SpareSeq => rows.seq.iter_mut().for_each(|s| *s = 1),
                Leak::Layer0 => layer = 0,
            }
            if !matches!(self.leak, Leak::None) {
                self.inner.kv_write(kv, layer, k, v, &self.inner.upload_batch(&rows)?)?;
            }
            self.inner.kv_write(kv, il, k, v, &b.1)
        }
        fn attention(
            &self,
            q: &B::Tensor,
            kv: &B::Kv,
            il: usize,
            b: &Self::Batch,
            p: &AttnParams,
            sinks: Option<&B::Weight>,
        ) -> Result<B::Tensor> {
            self.inner.attention(q, kv, il, &b.1, p, sinks)
        }
        fn get_rows(&self, w: &B::Weight, b: &Self::Batch, index: Index) -> Result<B::Tensor> {
            self.inner.get_rows(w, &b.1, index)
        }
        fn output_rows(&self, x: B::Tensor, b: &Self::Batch) -> Result<B::Tensor> {
            self.inner.output_rows(x, &b.1)
        }
        fn rms_norm(&self, x: &B::Tensor, eps: f32) -> Result<B::Tensor> {
            self.inner.rms_norm(x, eps)
        }
        fn layer_norm(&self, x: &B::Tensor, eps: f32) -> Result<B::Tensor> {
            self.inner.layer_norm(x, eps)
        }
        fn mul_row(&self, x: &B::Tensor, w: &B::Weight) -> Result<B::Tensor> {
            self.inner.mul_row(x, w)
        }
        fn add_row(&self, x: &B::Tensor, b: &B::Weight) -> Result<B::Tensor> {
            self.inner.add_row(x, b)
        }
        fn add(&self, a: &B::Tensor, b: &B::Tensor) -> Result<B::Tensor> {
            self.inner.add(a, b)
        }
        fn scale(&self, x: &B::Tensor, s: f32) -> Result<B::Tensor> {
            self.inner.scale(x, s)
        }
        fn matmul(&self, x: &B::Tensor, w: &B::Weight, g: &RowGroups) -> Result<B::Tensor> {
            self.inner.matmul(x, w, g)
        }
        fn rope(
            &self,
            x: &B::Tensor,
            n_head: usize,
            head_dim: usize,
            b: &Self::Batch,
            p: &RopeParams,
        ) -> Result<B::Tensor> {
            self.inner.rope(x, n_head, head_dim, &b.1, p)
        }
        fn glu(&self, gate: &B::Tensor, up: &B::Tensor, act: Act) -> Result<B::Tensor> {
            self.inner.glu(gate, up, act)
        }
        fn act(&self, x: &B::Tensor, act: Act) -> Result<B::Tensor> {
            self.inner.act(x, act)
        }
        fn softcap(&self, x: &B::Tensor, cap: f32) -> Result<B::Tensor> {
            self.inner.softcap(x, cap)
        }
        fn slice_cols(&self, x: &B::Tensor, start: usize, len: usize) -> Result<B::Tensor> {
            self.inner.slice_cols(x, start, len)
        }
        fn argmax(&self, x: &B::Tensor) -> Result<Vec<u32>> {
            self.inner.argmax(x)
        }
        fn top_k(&self, x: &B::Tensor, k: usize) -> Result<Vec<Vec<(u32, f32)>>> {
            self.inner.top_k(x, k)
        }
        fn moe_route(&self, logits: &B::Tensor, k: usize) -> Result<(B::Ids, B::Tensor)> {
            self.inner.moe_route(logits, k)
        }
        fn matmul_id(
            &self,
            x: &B::Tensor,
            w: &B::Weight,
            b: Option<&B::Weight>,
            ids: &B::Ids,
            k: usize,
        ) -> Result<B::Tensor> {
            self.inner.matmul_id(x, w, b, ids, k)
        }
        fn swiglu_oai(&self, gate: &B::Tensor, up: &B::Tensor, alpha: f32, limit: f32) -> Result<B::Tensor> {
            self.inner.swiglu_oai(gate, up, alpha, limit)
        }
        fn moe_combine(&self, experts: &B::Tensor, weights: &B::Tensor, k: usize) -> Result<B::Tensor> {
            self.inner.moe_combine(experts, weights, k)
        }
    }
}

/// Case `name` of suite `ops` on the `cpu-fast` backend wrapped in [`leaky::Leaky`].
fn ops_case_with_leak(name: &str, leak: leaky::Leak) -> Result<String, String> {
    use orcd_backends::{Column, OpsVisitor};
    use orcd_conformance::suites::ops::{check_on, OpCase};
    use orcd_engine::ops::Ops;
    struct V<'a>(&'a OpCase, &'a str, leaky::Leak);
    impl OpsVisitor for V<'_> {
        type Out = Result<String, String>;
        fn visit<B: Ops + Clone + Send + 'static>(self, b: &B) -> Self::Out
        where
            B::Weight: Send,
            B::Kv: Send,
        {
            let leaky = leaky::Leaky { inner: b.clone(), leak: self.2 };
            check_on(self.0, self.1, &leaky, &mut orcd_conformance::suites::Measured::default())
        }
    }
    let case = orcd_conformance::suites::ops::cases().into_iter().find(|c| c.name == name).expect("the case exists");
    let CaseKind::Op(op) = &case.kind else { panic!("not an ops case") };
    Column::CPU_FAST.visit(V(op, name, leak)).expect("cpu-fast runs here")
}

#[test]
fn ops_kv_guard_region_catches_writes_out_of_bounds() {
    use leaky::Leak;
    let name = "attention-gqa1-hd64-nh4-seqs37x3_5x5_20x1";
    let ok = ops_case_with_leak(name, Leak::None);
    assert!(ok.is_ok(), "the wrapper alone must pass: {ok:?}");
    for (leak, output) in [(Leak::NextPos, "`probe`"), (Leak::SpareSeq, "`spare-seq`"), (Leak::Layer0, "`spare-layer`")]
    {
        let msg = ops_case_with_leak(name, leak).expect_err("a write out of bounds must fail the case");
        assert!(msg.contains(output), "{leak:?}: expected the {output} read to catch it: {msg}");
    }
}

/// Suite `server`: a reference text one character off, a stop reason the API must not give, and
/// a near-tie moved past a divergence all fail (needs the fetched SmolLM2 file: without it the
/// test fails with the fetch command, never passes).
#[test]
fn server_fails_on_a_tampered_text_or_stop_reason() {
    let case = load("server/smollm2-capital-chat.yaml");
    if let Some(reason) = case.not_run_reason(Backend::CpuFast) {
        panic!("cannot run the server check: {reason}");
    }
    assert!(matches!(run_case(&case, Backend::CpuFast).outcome, Outcome::Pass { .. }), "untampered case passes");
    let fails = |edit: &dyn Fn(&mut orcd_conformance::suites::server::ServerCase)| {
        let mut c = case.clone();
        let CaseKind::Server(s) = &mut c.kind else { panic!("not a server case") };
        edit(s);
        match run_case(&c, Backend::CpuFast).outcome {
            Outcome::Fail { message } => message,
            other => panic!("expected a failure, got {other:?}"),
        }
    };
    let msg = fails(&|s| {
        let g = s.golden.as_mut().unwrap();
        g.text = g.text.replace("Paris", "Lyon");
    });
    assert!(msg.contains("text differs") && msg.contains("Lyon"), "{msg}");
    let msg = fails(&|s| s.golden.as_mut().unwrap().stop_reason = "MAX_TOKENS".into());
    assert!(msg.contains("stop reason") && msg.contains("length"), "{msg}");
    // A near-tie at step 4 excuses what follows it, not what precedes it.
    let msg = fails(&|s| {
        let g = s.golden.as_mut().unwrap();
        g.greedy_margins[4] = 0.0;
        g.greedy[1] = g.greedy[2];
        g.text = "(another text)".into();
    });
    assert!(msg.contains("before the reference's near-tie at step 4"), "{msg}");
}

/// Suite `server`, contract cases: a wanted status, JSON value, JSON field, header, absent text
/// or terminal event the answer does not have each fail, naming what differs.
#[test]
fn server_contract_fails_on_tampered_expectations() {
    let run = |rel: &str, edit: &dyn Fn(&mut orcd_conformance::suites::server::Expect)| {
        let mut c = load(rel);
        if let Some(reason) = c.not_run_reason(Backend::CpuFast) {
            panic!("cannot run the server contract check: {reason}");
        }
        let CaseKind::Server(s) = &mut c.kind else { panic!("not a server case") };
        edit(s.file.expect.as_mut().expect("a contract case"));
        match run_case(&c, Backend::CpuFast).outcome {
            Outcome::Fail { message } => message,
            other => panic!("expected a failure, got {other:?}"),
        }
    };
    let invalid = "server/contract-execute-invalid-field.yaml";
    assert!(matches!(run_case(&load(invalid), Backend::CpuFast).outcome, Outcome::Pass { .. }));
    assert!(run(invalid, &|e| e.status = 200).contains("status 400, want 200"));
    let m = run(invalid, &|e| {
        e.json.insert("/errors/0/field".into(), serde_json::json!("top_k"));
    });
    assert!(m.contains("/errors/0/field"), "{m}");
    assert!(run(invalid, &|e| e.json_present.push("/errors/0/value".into())).contains("no /errors/0/value"));
    assert!(run(invalid, &|e| e.absent.push("temperature".into())).contains("the body contains"));
    assert!(run(invalid, &|e| e.headers.push("retry-after".into())).contains("no retry-after header"));
    let stream = "server/contract-execute-stream.yaml";
    assert!(run(stream, &|e| e.last_event = Some("error".into())).contains("want \"error\""));
}
