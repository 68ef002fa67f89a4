//! The cases of suite `ops`: shapes of the real models (SmolLM2-135M: n_embd 576, n_ff 1536, 9
//! heads / 3 KV heads of 64; Qwen2.5-0.5B: 896, 4864, 14 / 2 of 64; gemma-3-270m: 640, 4 / 1 of
//! 256; gpt-oss: 2880, 64 / 8 of 64, 32 experts, top 4) plus odd sizes, every weight type the CPU
//! backends take, and the parameters the adapters use.

use orcd_engine::gguf::GgmlType;
use orcd_engine::ops::{Act, Index, RopeStyle, Yarn};

use super::spec::{AttnSpec, OpSpec};

/// Weight types with blocks of at most 32 (any row length that is a multiple of 32). IQ4_NL has
/// no dot kernel in the fast backend: it is dequantized at load and multiplied in f32 (still a
/// path worth holding to the reference).
const SMALL_BLOCK: [GgmlType; 10] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::MXFP4,
    GgmlType::IQ4_NL,
];

/// The k-quants: rows a multiple of 256.
const K_QUANTS: [GgmlType; 5] = [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K];

fn ty_name(t: GgmlType) -> String {
    t.name().to_lowercase()
}

fn act_name(a: Act) -> &'static str {
    match a {
        Act::Silu => "silu",
        Act::Gelu => "gelu",
    }
}

/// Row groups as a name: `n8` for one sequence, `n12-seqs3_9` for several.
fn rows_name(seqs: &[usize]) -> String {
    let n: usize = seqs.iter().sum();
    if seqs.len() == 1 {
        format!("n{n}")
    } else {
        let parts: Vec<String> = seqs.iter().map(|s| s.to_string()).collect();
        format!("n{n}-seqs{}", parts.join("_"))
    }
}

/// Every case: (name without the suite, spec). Names start with the op.
pub fn all_specs() -> Vec<(String, OpSpec)> {
    let mut v: Vec<(String, OpSpec)> = Vec::new();
    let mut push = |name: String, spec: OpSpec| v.push((name, spec));

    // ----- get_rows: embedding tables (token ids) and gpt2's position table (positions). -----
    for (ty, n_embd, n) in [
        (GgmlType::F32, 640, 5),
        (GgmlType::F16, 896, 3),
        (GgmlType::Q8_0, 576, 17),
        (GgmlType::Q4_K, 768, 5),
        (GgmlType::Q4_K, 1536, 1),
    ] {
        let n_rows = 301;
        let spec = OpSpec::GetRows { ty, n_embd, n_rows, n, index: Index::Tokens };
        push(format!("get_rows-{}-e{n_embd}-v{n_rows}-n{n}", ty_name(ty)), spec);
    }
    for (ty, n) in [(GgmlType::F32, 7), (GgmlType::F16, 3)] {
        let spec = OpSpec::GetRows { ty, n_embd: 768, n_rows: 1024, n, index: Index::Positions };
        push(format!("get_rows-pos-{}-e768-ctx1024-n{n}", ty_name(ty)), spec);
    }

    // ----- output_rows. -----
    for (cols, wanted) in [
        (896, vec![false, false, true, false, true, true, false]),
        (576, vec![true; 4]),
        (640, vec![false, false, false, true]),
    ] {
        let (n, k) = (wanted.len(), wanted.iter().filter(|&&w| w).count());
        push(format!("output_rows-c{cols}-n{n}-out{k}"), OpSpec::OutputRows { cols, wanted });
    }

    // ----- norms, row broadcasts, elementwise. -----
    for (rows, cols, eps) in [(1, 576, 1e-5), (5, 896, 1e-6), (17, 640, 1e-6), (3, 2880, 1e-5), (2, 33, 1e-6)] {
        push(format!("rms_norm-c{cols}-n{rows}"), OpSpec::RmsNorm { rows, cols, eps });
    }
    for (rows, cols) in [(1, 768), (7, 768), (3, 33)] {
        push(format!("layer_norm-c{cols}-n{rows}"), OpSpec::LayerNorm { rows, cols, eps: 1e-5 });
    }
    for (rows, cols) in [(1, 576), (5, 896), (3, 33)] {
        push(format!("mul_row-c{cols}-n{rows}"), OpSpec::MulRow { rows, cols });
        push(format!("add_row-c{cols}-n{rows}"), OpSpec::AddRow { rows, cols });
    }
    for (rows, cols) in [(1, 896), (5, 4864), (3, 33)] {
        push(format!("add-c{cols}-n{rows}"), OpSpec::Add { rows, cols });
    }
    for (rows, cols, s) in [(3, 896, 0.125), (5, 640, 1.0 / 16.0), (2, 33, -1.5)] {
        push(format!("scale-c{cols}-n{rows}"), OpSpec::Scale { rows, cols, s });
    }
    // gemma2's final-logit softcap (30) and attention softcap (50), on values straddling them.
    for (rows, cols, cap) in [(3, 1000, 30.0), (2, 64, 50.0)] {
        push(format!("softcap-cap{cap}-c{cols}-n{rows}"), OpSpec::Softcap { rows, cols, cap, range: 100.0 });
    }
    // test-backend-ops's test_unary / test_glu draw from [-150, 150] (the extended range that
    // checks GELU for NaNs); also the range activations mostly take, [-4, 4].
    for act in [Act::Silu, Act::Gelu] {
        for (rows, cols, range) in [(3, 1536, 150.0), (5, 4864, 4.0), (1, 33, 4.0)] {
            let a = act_name(act);
            push(format!("act-{a}-c{cols}-n{rows}-r{range}"), OpSpec::Act { act, rows, cols, range });
            push(format!("glu-{a}-c{cols}-n{rows}-r{range}"), OpSpec::Glu { act, rows, cols, range });
        }
    }
    // Fused QKV splits (gpt2: 768 + 768 + 768; phi3-like: 3072 + 3 × 1024 → use 576 + 192 + 192).
    for (rows, cols, start, len) in [(5, 2304, 768, 768), (3, 960, 0, 576), (3, 960, 768, 192), (1, 33, 31, 2)] {
        push(format!("slice_cols-c{cols}-at{start}-len{len}-n{rows}"), OpSpec::SliceCols { rows, cols, start, len });
    }
    // Heads: [n, n_head · head_dim] → [n · n_head, head_dim] and back.
    for (rows, cols, to_cols) in [(3, 896, 64), (42, 64, 896), (4, 1152, 576)] {
        push(format!("reshape-c{cols}-n{rows}-to{to_cols}"), OpSpec::Reshape { rows, cols, to_cols });
    }

    // ----- argmax, top_k. -----
    for (rows, cols, ties) in [(5, 1000, false), (1, 49152, false), (4, 64, true)] {
        let t = if ties { "-ties" } else { "" };
        push(format!("argmax{t}-c{cols}-n{rows}"), OpSpec::Argmax { rows, cols, ties });
    }
    for (rows, cols, k, ties) in [(3, 1000, 1, false), (3, 1000, 40, false), (1, 49152, 5, false), (4, 64, 8, true)] {
        let t = if ties { "-ties" } else { "" };
        push(format!("top_k{t}-k{k}-c{cols}-n{rows}"), OpSpec::TopK { rows, cols, k, ties });
    }

    // ----- matmul: every weight type the CPU backends take. -----
    // (k, m, row groups): real-model shapes with n ∈ {1, 3, 8, 17}, odd m, and a batch of two
    // sequences of 3 and 9 rows (the k-quant kernel switches formula at 8 rows per sequence).
    let small: Vec<(usize, usize, Vec<usize>)> = vec![
        (576, 1536, vec![1]),
        (576, 1536, vec![3]),
        (576, 1536, vec![8]),
        (576, 1536, vec![17]),
        (576, 1536, vec![3, 9]),
        (896, 4864, vec![1]),
        (4864, 896, vec![3]),
        (640, 33, vec![3]),
        (640, 1, vec![17]),
        // one and two rows: the multi-column mat-vecs (8 / 4 columns a block; m not a multiple)
        (4864, 896, vec![1]),
        (640, 33, vec![1]),
        (576, 1534, vec![2]),
        (640, 1, vec![2]),
    ];
    let kq: Vec<(usize, usize, Vec<usize>)> = vec![
        (4864, 896, vec![1]),
        (4864, 896, vec![3]),
        (4864, 896, vec![8]),
        (4864, 896, vec![17]),
        (1536, 576, vec![3, 9]),
        (1536, 576, vec![9, 2, 8]),
        (768, 33, vec![3]),
        (256, 1, vec![8]),
    ];
    for (types, shapes) in [(&SMALL_BLOCK[..], &small), (&K_QUANTS[..], &kq)] {
        for &ty in types {
            for (k, m, seqs) in shapes {
                let name = format!("matmul-{}-m{m}-k{k}-{}", ty_name(ty), rows_name(seqs));
                push(name, OpSpec::Matmul { ty, k: *k, m: *m, seqs: seqs.clone() });
            }
        }
    }

    // The prefill GEMM of the part-decodable types (rows of a sequence with ≥ 16 rows on the fast
    // numerics, kernels/ABI.md `mmq_*`): one whole 64-row tile; a partial tile beside a 3-row
    // sequence (the mat-vec's) in one batch; two tiles and a partial 128-column tile; an odd
    // number of blocks a row (k % 64 ≠ 0: the mat-vec's).
    for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0] {
        for (k, m, seqs) in [(576, 1536, vec![64]), (896, 4864, vec![3, 40]), (640, 33, vec![70]), (608, 100, vec![20])]
        {
            let name = format!("matmul-{}-m{m}-k{k}-{}", ty_name(ty), rows_name(&seqs));
            push(name, OpSpec::Matmul { ty, k, m, seqs });
        }
    }

    // ----- rope. -----
    let rope = |style, n_head, head_dim, n_rot, freq_base, pos: Vec<u32>| OpSpec::Rope {
        style,
        n_head,
        head_dim,
        n_rot,
        freq_base,
        freq_scale: 1.0,
        yarn: None,
        freq_factors: None,
        pos,
    };
    let run = |start: u32, n: u32| (start..start + n).collect::<Vec<u32>>();
    // gpt-oss's YaRN (rope.scaling.factor 32, original context 4096, beta 32 / 1).
    let gpt_oss_yarn = Yarn { ext_factor: 1.0, attn_factor: 1.0, beta_fast: 32.0, beta_slow: 1.0, n_ctx_orig: 4096 };
    // phi3's `rope.scaling.attn_factor` (ext_factor 0: only the magnitude factor).
    let attn_factor =
        Yarn { ext_factor: 0.0, attn_factor: 1.190_239, beta_fast: 32.0, beta_slow: 1.0, n_ctx_orig: 4096 };
    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        let s = match style {
            RopeStyle::Normal => "norm",
            RopeStyle::Neox => "neox",
        };
        let mut specs: Vec<(String, OpSpec)> = vec![
            ("hd64-nh9-n5-p7".into(), rope(style, 9, 64, 64, 100_000.0, run(7, 5))),
            ("hd64-nh14-n5".into(), rope(style, 14, 64, 64, 1_000_000.0, run(0, 5))),
            ("hd64-nh3-n17-p100".into(), rope(style, 3, 64, 64, 10_000.0, run(100, 17))),
            ("hd128-nh4-n1-p511".into(), rope(style, 4, 128, 128, 500_000.0, run(511, 1))),
            ("hd256-nh4-n3-p40".into(), rope(style, 4, 256, 256, 1_000_000.0, run(40, 3))),
            ("hd48-nh3-n7-p3".into(), rope(style, 3, 48, 48, 10_000.0, run(3, 7))),
            ("hd64-nh4-rot32-n5-p9".into(), rope(style, 4, 64, 32, 10_000.0, run(9, 5))),
            ("hd80-nh2-rot20-n3-p60".into(), rope(style, 2, 80, 20, 10_000.0, run(60, 3))),
            // Two sequences in one batch: positions restart.
            ("hd64-nh2-n7-seqs4_3".into(), rope(style, 2, 64, 64, 10_000.0, vec![20, 21, 22, 23, 0, 1, 2])),
        ];
        let with = |f: &dyn Fn(&mut OpSpec), base: OpSpec| {
            let mut o = base;
            f(&mut o);
            o
        };
        let set_fs = |fs: f32| {
            move |o: &mut OpSpec| {
                if let OpSpec::Rope { freq_scale, .. } = o {
                    *freq_scale = fs;
                }
            }
        };
        specs
            .push(("hd64-nh4-fs0_25-n5-p30".into(), with(&set_fs(0.25), rope(style, 4, 64, 64, 10_000.0, run(30, 5)))));
        specs.push((
            "hd64-nh8-yarn-n4-p1000".into(),
            with(
                &|o| {
                    if let OpSpec::Rope { freq_scale, yarn, .. } = o {
                        *freq_scale = 1.0 / 32.0;
                        *yarn = Some(gpt_oss_yarn);
                    }
                },
                rope(style, 8, 64, 64, 150_000.0, vec![1000, 1001, 2047, 3000]),
            ),
        ));
        // LongRoPE: frequency factors (test-backend-ops draws them from [0.9, 1.1]; phi3's long
        // factors reach tens), with and without phi3's attn_factor.
        specs.push((
            "hd96-nh4-ff-n3-p200".into(),
            with(
                &|o| {
                    if let OpSpec::Rope { freq_factors, .. } = o {
                        *freq_factors = Some((0.9, 1.1));
                    }
                },
                rope(style, 4, 96, 96, 10_000.0, run(200, 3)),
            ),
        ));
        specs.push((
            "hd96-nh4-longrope-af-n5-p4".into(),
            with(
                &|o| {
                    if let OpSpec::Rope { freq_factors, yarn, .. } = o {
                        *freq_factors = Some((1.0, 40.0));
                        *yarn = Some(attn_factor);
                    }
                },
                rope(style, 4, 96, 96, 10_000.0, run(4, 5)),
            ),
        ));
        specs.push((
            "hd64-nh2-af-n3-p11".into(),
            with(
                &|o| {
                    if let OpSpec::Rope { yarn, .. } = o {
                        *yarn = Some(attn_factor);
                    }
                },
                rope(style, 2, 64, 64, 10_000.0, run(11, 3)),
            ),
        ));
        for (n, o) in specs {
            push(format!("rope-{s}-{n}"), o);
        }
    }

    // ----- attention through the KV cache. -----
    let attn = |n_head, n_head_kv, hd, seqs: Vec<(usize, usize)>| AttnSpec {
        n_head,
        n_head_kv,
        head_dim: hd,
        v_head_dim: hd,
        scale: 1.0 / (hd as f32).sqrt(),
        window: None,
        softcap: None,
        sinks: false,
        seqs,
        proj: None,
    };
    let mut a: Vec<AttnSpec> = vec![
        attn(4, 4, 64, vec![(37, 3)]),
        attn(4, 4, 64, vec![(5, 5)]),
        attn(9, 3, 64, vec![(20, 20)]),
        attn(9, 3, 64, vec![(37, 1)]),
        attn(14, 2, 64, vec![(37, 1)]),
        attn(14, 2, 64, vec![(37, 3)]),
        attn(8, 2, 128, vec![(33, 4)]),
        attn(6, 2, 48, vec![(21, 3)]),
        attn(6, 6, 48, vec![(9, 1)]),
        attn(4, 1, 256, vec![(40, 2)]),
        // Several sequences of different lengths in one batch.
        attn(4, 4, 64, vec![(37, 3), (5, 5), (20, 1)]),
        attn(9, 3, 64, vec![(1, 1), (16, 4), (7, 2), (33, 1)]),
        // The Qwen2.5-0.5B shape's pp512 prefill: the tile attention's shared memory (its rows'
        // scores over 512 keys) past the 48 KiB a kernel gets without the opt-in — the bench
        // shape no other case reached (stop 44: attention_tile_lpt was refused there on the card).
        attn(14, 2, 64, vec![(512, 512)]),
        // gemma-3's 256-wide heads over a prompt of several row blocks and key tiles (the
        // tensor-core prefill attention's two blocks a head).
        attn(4, 1, 256, vec![(300, 300)]),
        // One decode row past the default staging (64 F16 / 32 f32 keys of gemma-3's 256-wide
        // heads, 256 / 128 of Qwen's 64-wide ones): the rest read from the cache, or with
        // ORCD_CUDA_ATT_STAGE_WIDE=1 (4 and 14 blocks, one an SM) staged in a block's whole
        // shared memory.
        attn(4, 1, 256, vec![(300, 1)]),
        attn(14, 2, 64, vec![(300, 1)]),
    ];
    let mut win = attn(14, 2, 64, vec![(37, 3)]);
    win.window = Some(16);
    a.push(win);
    let mut win = attn(4, 1, 256, vec![(40, 17)]);
    win.window = Some(8);
    a.push(win);
    let mut win = attn(4, 1, 256, vec![(300, 130)]);
    win.window = Some(100);
    a.push(win);
    let mut win = attn(14, 2, 64, vec![(9, 9), (30, 1)]);
    win.window = Some(8);
    a.push(win);
    // Softcap on scores that reach it (scale 1: |q·k| up to ~10).
    let mut cap = attn(8, 4, 64, vec![(25, 3)]);
    cap.scale = 1.0;
    cap.softcap = Some(3.0);
    a.push(cap);
    let mut cap = attn(8, 4, 64, vec![(25, 1), (3, 3)]);
    cap.softcap = Some(0.5);
    a.push(cap);
    // gpt-oss: sinks, with and without its sliding window (128, here 16 over 37 positions).
    let mut s = attn(16, 2, 64, vec![(37, 3)]);
    s.sinks = true;
    a.push(s.clone());
    s.window = Some(16);
    a.push(s.clone());
    s.seqs = vec![(12, 1), (37, 2), (4, 4)];
    a.push(s);
    let mut s = attn(16, 2, 64, vec![(30, 1)]);
    s.sinks = true;
    a.push(s);
    // V heads narrower than K heads.
    let mut vd = attn(4, 2, 64, vec![(19, 2)]);
    vd.v_head_dim = 32;
    a.push(vd);
    // A batched decode's attention into its o projection (the Qwen2.5-0.5B heads; one row a
    // sequence, 4 and 16 sequences): the fast column's attention may round its output to the
    // projection's Q8_0 codes itself.
    for (n, ty) in [(4, GgmlType::Q8_0), (16, GgmlType::Q8_0), (4, GgmlType::Q4_0)] {
        let mut o = attn(14, 2, 64, (0..n).map(|i| (5 + 7 * i, 1)).collect());
        o.proj = Some(ty);
        a.push(o);
    }
    for s in a {
        let mut n = format!("attention-gqa{}-hd{}", s.n_head / s.n_head_kv, s.head_dim);
        if s.v_head_dim != s.head_dim {
            n += &format!("-vd{}", s.v_head_dim);
        }
        n += &format!("-nh{}", s.n_head);
        if let [(kv, q)] = s.seqs[..] {
            n += &format!("-kv{kv}");
            if let Some(w) = s.window {
                n += &format!("-win{w}");
            }
            n += &format!("-n{q}");
        } else {
            let parts: Vec<String> = s.seqs.iter().map(|(kv, q)| format!("{kv}x{q}")).collect();
            n += &format!("-seqs{}", parts.join("_"));
            if let Some(w) = s.window {
                n += &format!("-win{w}");
            }
        }
        if let Some(c) = s.softcap {
            n += &format!("-cap{c}").replace('.', "_");
        }
        if s.scale == 1.0 {
            n += "-scale1";
        }
        if s.sinks {
            n += "-sinks";
        }
        if let Some(ty) = s.proj {
            // The chained cases: named by their batch, not each sequence's lengths.
            n = format!(
                "attention-oproj-{}-gqa{}-hd{}-nh{}-b{}",
                ty_name(ty),
                s.n_head / s.n_head_kv,
                s.head_dim,
                s.n_head,
                s.seqs.len()
            );
        }
        push(n, OpSpec::Attention(s));
    }

    // ----- gpt-oss's MoE ops. -----
    for (n, n_expert, k) in [(5, 32, 4), (17, 8, 2), (3, 128, 8), (1, 32, 1)] {
        push(format!("moe_route-e{n_expert}-top{k}-n{n}"), OpSpec::MoeRoute { n, n_expert, k });
    }
    for (ty, k_in, m, n_expert, k, n, shared, bias) in [
        (GgmlType::F32, 256, 96, 8, 2, 5, true, false),
        (GgmlType::F32, 256, 96, 8, 2, 5, false, true),
        (GgmlType::MXFP4, 2880, 64, 32, 4, 3, true, true),
        (GgmlType::MXFP4, 2880, 64, 32, 4, 8, false, true),
        (GgmlType::MXFP4, 512, 48, 8, 4, 1, true, false),
        (GgmlType::Q8_0, 512, 48, 8, 2, 17, true, true),
        (GgmlType::Q8_0, 512, 48, 8, 2, 5, false, false),
        (GgmlType::Q4_0, 256, 33, 4, 2, 3, true, false),
    ] {
        let input = if shared { "shared" } else { "perslot" };
        let b = if bias { "-bias" } else { "" };
        push(
            format!("matmul_id-{}-m{m}-k{k_in}-e{n_expert}-top{k}-n{n}-{input}{b}", ty_name(ty)),
            OpSpec::MatmulId { ty, k_in, m, n_expert, k, n, shared, bias },
        );
    }
    for (rows, cols) in [(5, 2880), (17, 64), (1, 33)] {
        push(format!("swiglu_oai-c{cols}-n{rows}"), OpSpec::SwigluOai { rows, cols });
    }
    for (n, k, cols) in [(5, 4, 2880), (17, 2, 896), (3, 1, 64), (2, 8, 33)] {
        push(format!("moe_combine-top{k}-c{cols}-n{n}"), OpSpec::MoeCombine { n, k, cols });
    }

    // ----- fused ops (what a backend may do in one kernel), each against the CPU's unfused
    // composition; shapes of a decode step (1 row), a few sequences (3) and a prefill past the
    // mat-vec's 8 rows per weight read (9), with k past one staged tile (4864); every k a whole number of 256-blocks. -----
    for (rows, cols) in [(1, 896), (5, 576), (17, 640)] {
        push(format!("rms_norm_mul-c{cols}-n{rows}"), OpSpec::RmsNormMul { rows, cols, eps: 1e-6 });
    }
    // gemma-3-270m's width: a decode row, a few sequences, a prefill.
    for (rows, cols) in [(1, 640), (5, 576), (17, 640)] {
        push(format!("rms_norm_mul_add-c{cols}-n{rows}"), OpSpec::RmsNormMulAdd { rows, cols, eps: 1e-6 });
    }
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K] {
        for (k, m, rows, bias, res) in [
            (1024, 896, 1, true, true),
            (4864, 896, 1, false, true),
            (768, 128, 3, true, false),
            (512, 1536, 9, false, true),
            (512, 1536, 40, true, true), // a prefill: the GEMM where a type has one
        ] {
            let extra = format!("{}{}", if bias { "-bias" } else { "" }, if res { "-res" } else { "" });
            push(
                format!("matmul_fused-{}-m{m}-k{k}-n{rows}{extra}", ty_name(ty)),
                OpSpec::MatmulFused { ty, k, m, rows, bias, res },
            );
        }
    }
    // A projection, its post-norm and the residual add (gemma-3-270m: o 1,024 → 640, down
    // 2,048 → 640): one decode row through the fused launch (the last block's norm; long rows on
    // 2 columns a block), a bias, and rows the composition takes (a few sequences, a prefill).
    for ty in [GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::F16] {
        for (k, m, rows, bias) in
            [(1024, 640, 1, false), (2048, 640, 1, true), (4096, 896, 1, false), (1024, 640, 5, true)]
        {
            let extra = if bias { "-bias" } else { "" };
            push(
                format!("matmul_norm_add-{}-m{m}-k{k}-n{rows}{extra}", ty_name(ty)),
                OpSpec::MatmulNormAdd { ty, k, m, rows, bias, eps: 1e-6 },
            );
        }
    }
    push(
        "matmul_norm_add-q4_k-m640-k1024-n40".into(),
        OpSpec::MatmulNormAdd { ty: GgmlType::Q4_K, k: 1024, m: 640, rows: 40, bias: false, eps: 1e-6 },
    );
    for ty in [GgmlType::F16, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_K] {
        for (k, m, rows, act, a) in [
            (1024, 4864, 1, Act::Silu, "silu"),
            (512, 2048, 3, Act::Gelu, "gelu"),
            (512, 1536, 9, Act::Silu, "silu"),
            (512, 1536, 24, Act::Silu, "silu"),
        ] {
            push(
                format!("matmul_glu-{a}-{}-m{m}-k{k}-n{rows}", ty_name(ty)),
                OpSpec::MatmulGlu { ty, k, m, rows, act },
            );
        }
    }
    // The norm fused into the projections: q/k/v of the Qwen2.5-0.5B widths (three outputs, one
    // launch), a head-like single projection, and a GLU pair; rows 1, 3 and 9 as above. Q6_K: its
    // 16-element halves in the k-quant GEMM (ORCD_CUDA_MMQ_K) with a pair and three projections.
    for ty in [GgmlType::F16, GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K] {
        for (k, ms, rows, bias) in [
            (1024, vec![896, 128, 128], 1, true),
            (512, vec![100, 36, 20], 1, true), // blocks of 8 or 4 columns straddle the outputs
            (512, vec![260, 68, 4], 2, true),
            (512, vec![256, 64, 64], 3, false),
            (768, vec![1024], 9, false),
            (512, vec![256, 64, 64], 24, true),
            // Wider than the backend's round-once width (16,384, the head): one row and a batch.
            (256, vec![16_448], 1, false),
            (256, vec![16_448], 5, false),
        ] {
            let shape = ms.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("+");
            push(
                format!("norm_matmuls-{}-m{shape}-k{k}-n{rows}{}", ty_name(ty), if bias { "-bias" } else { "" }),
                OpSpec::NormMatmuls { ty, k, ms, rows, bias, last_ty: None },
            );
        }
        if ty == GgmlType::Q4_1 {
            // gemma-3-270m's q, k (Q5_0) and v (Q8_0): the two of one type in one launch, v apart
            // (one launch for all three of a row under ORCD_CUDA_MV_MIXED=1). Also a Q4_K_M file's
            // Q4_K q, k and Q6_K v with biases; q of 100 columns (a block of 8 spans q and k), and
            // q + k of 134 (a block would span both types: two launches even under the switch).
            for (a, c, k, ms, rows, bias) in [
                (GgmlType::Q5_0, GgmlType::Q8_0, 640, vec![1024, 256, 256], 1, false),
                (GgmlType::Q5_0, GgmlType::Q8_0, 640, vec![1024, 256, 256], 3, false),
                (GgmlType::Q5_0, GgmlType::Q8_0, 640, vec![1024, 256, 256], 24, false),
                (GgmlType::Q5_0, GgmlType::Q8_0, 512, vec![100, 36, 20], 1, true),
                (GgmlType::Q5_0, GgmlType::Q8_0, 512, vec![100, 34, 20], 1, false),
                (GgmlType::Q4_K, GgmlType::Q6_K, 768, vec![512, 128, 128], 1, true),
                (GgmlType::Q4_K, GgmlType::Q6_K, 768, vec![512, 128, 128], 2, true),
            ] {
                let shape = ms.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("+");
                push(
                    format!(
                        "norm_matmuls-{}+{}-m{shape}-k{k}-n{rows}{}",
                        ty_name(a),
                        ty_name(c),
                        if bias { "-bias" } else { "" }
                    ),
                    OpSpec::NormMatmuls { ty: a, k, ms, rows, bias, last_ty: Some(c) },
                );
            }
        }
        for (k, m, rows) in [(1024, 4864, 1), (512, 1534, 2), (512, 1536, 9), (512, 1536, 33)] {
            push(
                format!("norm_matmul_glu-silu-{}-m{m}-k{k}-n{rows}", ty_name(ty)),
                OpSpec::NormMatmulGlu { ty, k, m, rows, act: Act::Silu, down: None },
            );
        }
    }
    // The attention's post-norm and residual add, then the FFN's norm and GLU pair (gemma-3's
    // 640 → 2 × 2,048 in Q5_0): one decode row in the GLU's launch where a backend folds it
    // (k up to 1,024, the widest a block's parts take), a row past it, three rows, and a type
    // without the folded kernel (Q4_1) — those compose.
    for ty in [GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q4_1] {
        let k0 = if ty == GgmlType::Q4_K { 512 } else { 640 };
        for (k, m, rows, act) in [(k0, 2048, 1, Act::Gelu), (1024, 1536, 1, Act::Silu), (512, 1536, 3, Act::Silu)] {
            if ty == GgmlType::Q4_1 && rows > 1 {
                continue;
            }
            push(
                format!("norm_add_norm_matmul_glu-{}-m{m}-k{k}-n{rows}", ty_name(ty)),
                OpSpec::NormAddNormMatmulGlu { ty, k, m, rows, act },
            );
        }
    }
    push(
        "norm_add_norm_matmul_glu-q8_0-m1024-k2048-n1".into(),
        OpSpec::NormAddNormMatmulGlu { ty: GgmlType::Q8_0, k: 2048, m: 1024, rows: 1, act: Act::Silu },
    );
    // A batched decode's FFN: the GLU then its down projection with the residual, each row its
    // own sequence (so never the prefill GEMM) — where the GLU may hand the down projection its
    // output already rounded (ORCD_CUDA_GLU_CODES). Q8_0 at 5 rows (matvecqg_, a partial row
    // tile), 16 rows of a wide pair (the tensor-core matvectg_) and 20 (two row tiles); Q4_1's
    // Q8_1 sums at 9; gemma-3's Q5_0 at 4; Q4_0 at 3, the fewest rows batched.
    for (ty, k, m, rows) in [
        (GgmlType::Q8_0, 512, 1536, 5),
        (GgmlType::Q8_0, 1024, 4864, 16),
        (GgmlType::Q8_0, 512, 1536, 20),
        (GgmlType::Q4_1, 512, 1536, 9),
        (GgmlType::Q5_0, 640, 2048, 4),
        (GgmlType::Q4_0, 256, 512, 3),
    ] {
        push(
            format!("norm_matmul_glu-down-silu-{}-m{m}-k{k}-n{rows}", ty_name(ty)),
            OpSpec::NormMatmulGlu { ty, k, m, rows, act: Act::Silu, down: Some(ty) },
        );
    }
    for (style, s) in [(RopeStyle::Normal, "norm"), (RopeStyle::Neox, "neox")] {
        for (n_head, n_head_kv, head_dim, pos) in
            [(14, 2, 64, vec![7, 8, 9, 10, 11]), (4, 1, 256, vec![40]), (8, 8, 128, vec![0, 1, 2])]
        {
            push(
                format!("rope_qk-{s}-hd{head_dim}-nh{n_head}-kv{n_head_kv}-n{}-p{}", pos.len(), pos[0]),
                OpSpec::RopeQk { style, n_head, n_head_kv, head_dim, pos },
            );
        }
        for (n_head, n_head_kv, head_dim, rows) in [(14, 2, 64, 1), (14, 2, 64, 9), (4, 4, 128, 3)] {
            push(
                format!("rope_qk_kv_write-{s}-hd{head_dim}-nh{n_head}-kv{n_head_kv}-n{rows}"),
                OpSpec::RopeQkKv { style, n_head, n_head_kv, head_dim, rows },
            );
        }
        // Head norms, RoPE, the KV store and q's pre-scale in one op: gemma-3-270m's heads (a
        // decode row, a prefill of 5), a wider GQA without the pre-scale.
        for (n_head, n_head_kv, head_dim, rows, q_scale) in
            [(4, 1, 256, 1, true), (4, 1, 256, 5, true), (8, 2, 128, 3, false)]
        {
            push(
                format!(
                    "norm_rope_qk_kv_write-{s}-hd{head_dim}-nh{n_head}-kv{n_head_kv}-n{rows}{}",
                    if q_scale { "-qs" } else { "" }
                ),
                OpSpec::NormRopeQkKv { style, n_head, n_head_kv, head_dim, rows, q_scale },
            );
        }
        // The attention input side in one op: the Qwen2.5-0.5B shape (decode row: the fused
        // launch where a backend has one; two rows: the composition), a wider head without
        // biases, Q5_0 with 256-wide heads, and a type the fused launch does not take.
        for (ty, k, n_head, n_head_kv, head_dim, rows, bias) in [
            (GgmlType::Q8_0, 896, 14, 2, 64, 1, true),
            (GgmlType::Q8_0, 896, 14, 2, 64, 2, true),
            (GgmlType::Q4_1, 576, 9, 3, 64, 1, false),
            (GgmlType::Q4_0, 512, 4, 4, 128, 1, true),
            (GgmlType::Q4_K, 512, 4, 2, 128, 1, true),
            (GgmlType::Q5_0, 640, 4, 1, 256, 1, false), // gemma-3-270m's q and k type, its heads
            // A decode batch (rows of the batched mat-vec, each at its own position): the
            // batched launch with RoPE and the KV store where a backend has one.
            (GgmlType::Q8_0, 896, 14, 2, 64, 5, true),
            (GgmlType::Q8_0, 896, 14, 2, 64, 12, false),
            (GgmlType::Q4_1, 576, 9, 3, 64, 9, true),
            (GgmlType::Q5_0, 640, 4, 1, 256, 3, false),
        ] {
            push(
                format!(
                    "norm_qkv_rope_kv_write-{s}-{}-k{k}-hd{head_dim}-nh{n_head}-kv{n_head_kv}-n{rows}{}",
                    ty_name(ty),
                    if bias { "-bias" } else { "" }
                ),
                OpSpec::NormQkvRopeKv {
                    ty,
                    v_ty: None,
                    head_norm: None,
                    style,
                    k,
                    n_head,
                    n_head_kv,
                    head_dim,
                    rows,
                    bias,
                    pre: false,
                },
            );
        }
        // gemma-3's attention input side in one op (projections, head norms, RoPE, the KV
        // store, q's pre-scale): gemma-3-270m Q4_K_M's types and heads (a decode row: one
        // launch under ORCD_CUDA_FUSE_QKV_NORM=1; two rows: the composition), one type, a
        // Q4_K_M file's Q4_K and Q6_K with biases and 128-wide heads without the pre-scale, and
        // q + k of 100 columns (blocks of 8 would span q's type and v's: the composition).
        // With `pre` (the previous layer's post-norm and residual add first: each case again,
        // named norm_add_norm_…): folded into the one-row projections' launches where a backend
        // does (Q5_0 + Q8_0, Q8_0 alone), composed where not (two rows, Q6_K's v).
        for (ty, v_ty, k, n_head, n_head_kv, head_dim, rows, bias, q_scale, pre) in [
            (GgmlType::Q5_0, GgmlType::Q8_0, 640, 4, 1, 256, 1, false, true, false),
            (GgmlType::Q5_0, GgmlType::Q8_0, 640, 4, 1, 256, 2, false, true, false),
            (GgmlType::Q8_0, GgmlType::Q8_0, 512, 8, 2, 64, 1, false, true, false),
            (GgmlType::Q4_K, GgmlType::Q6_K, 512, 4, 2, 128, 1, true, false, false),
            (GgmlType::Q5_0, GgmlType::Q8_0, 512, 2, 1, 20, 1, false, true, false),
            (GgmlType::Q5_0, GgmlType::Q8_0, 640, 4, 1, 256, 1, false, true, true),
            (GgmlType::Q5_0, GgmlType::Q8_0, 640, 4, 1, 256, 2, false, true, true),
            (GgmlType::Q8_0, GgmlType::Q8_0, 512, 8, 2, 64, 1, true, true, true),
            (GgmlType::Q4_0, GgmlType::Q4_0, 1024, 4, 1, 128, 1, false, true, true),
            (GgmlType::Q4_K, GgmlType::Q6_K, 512, 4, 2, 128, 1, true, false, true),
        ] {
            push(
                format!(
                    "{}norm_qkv_norm_rope_kv_write-{s}-{}+{}-k{k}-hd{head_dim}-nh{n_head}-kv{n_head_kv}-n{rows}{}{}",
                    if pre { "norm_add_" } else { "" },
                    ty_name(ty),
                    ty_name(v_ty),
                    if bias { "-bias" } else { "" },
                    if q_scale { "-qs" } else { "" }
                ),
                OpSpec::NormQkvRopeKv {
                    ty,
                    v_ty: Some(v_ty),
                    head_norm: Some(q_scale),
                    style,
                    k,
                    n_head,
                    n_head_kv,
                    head_dim,
                    rows,
                    bias,
                    pre,
                },
            );
        }
    }
    v
}
