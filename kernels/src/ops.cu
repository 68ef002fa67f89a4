// ops.cu — the CUDA kernels of worker-orcd, compiled at run time by NVRTC
// (`--gpu-architecture=sm_90a --std=c++17 -default-device`, no headers at all). It also compiles
// as host C++ under kernels/emu/emu.h (ORCD_EMU: the few inline PTX statements have a host
// twin there), so the kernels' logic can be run where no GPU is.
//
// The contract with the host (kernel names, parameters, launch shapes, semantics) is
// kernels/ABI.md; the numerics are those of the exact CPU backend (engine/cpu/src/cpu.rs) and of
// the GGUF dequantizers (engine/gguf/src/quant/*.rs).
//
// Invariants:
// - Bounds: every kernel guards its index ranges (grid-stride loops for 1-D kernels, blockIdx
//   checks for per-row kernels) and indexes with 64-bit offsets where a product can pass 2^31.
//   Nothing reads or writes outside the ranges the ABI gives (the one exception the ABI cannot
//   express: expert / row ids in `ids` and `idx` are trusted to be in range).
// - Block sizes are multiples of 32 (full-warp shuffles); per-row kernels accept any such size.
// - Determinism: every reduction has a fixed order (per-thread strided sums, then a fixed
//   xor-shuffle tree, then the warps' partials in warp order), so a result depends only on the
//   inputs and the launch shape, never on timing.
// - Exactness: dequantization reproduces the Rust f32 values bit for bit. NVRTC contracts
//   `a*b + c` into an FMA by default, so wherever the reference rounds twice the code spells the
//   operations out with __fmul_rn / __fadd_rn (f32) or __dmul_rn / __dadd_rn (f64). Math the CPU
//   backend does in f64 is done in f64 here.

typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;
typedef unsigned long long u64;

#define FULL_MASK 0xffffffffu

// Programmatic dependent launch (sm_90): a mat-vec launched with the host's PDL attribute may
// start while the kernel before it runs; it loads only its weights (never written) before
// pdl_wait(), which returns once that kernel has finished and its writes are visible. Kernels a
// mat-vec follows call pdl_trigger() first thing, so the mat-vec's blocks can be scheduled (and
// fetch weights) while they run. Without the attribute, or before sm_90, both are no-ops.
__device__ __forceinline__ void pdl_wait() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
// A hint: the 128-byte lines of [p, p + n) into L2 (no value depends on it; nothing off the device).
__device__ __forceinline__ void prefetch_l2(const void* p, i64 n) {
#if __CUDA_ARCH__ >= 900
    const u64 a = reinterpret_cast<u64>(p);
    for (u64 l = a & ~(u64)127; l < a + (u64)n; l += 128) asm volatile("prefetch.global.L2 [%0];" ::"l"(l));
#else
    (void)p;
    (void)n;
#endif
}
#define F32_NEG_INF __int_as_float(0xff800000)
#define F32_NAN __int_as_float(0x7fc00000)
#define F32_POS_INF __int_as_float(0x7f800000)
#define F64_NEG_INF __longlong_as_double(0xfff0000000000000LL)

// 1-D kernels: a grid-stride loop, so any 1-D launch covers `n` exactly once.
#define GRID_LOOP(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (i64)(n); i += (i64)gridDim.x * blockDim.x)

// ---------------------------------------------------------------------------------------------
// Scalar conversions (engine/gguf/src/quant/float.rs)
// ---------------------------------------------------------------------------------------------

// IEEE half -> f32. NaNs keep their payload (signalling bit included), as numpy / float.rs do;
// everything else is the exact hardware conversion. Here and in f32_to_f16 NaN takes a select,
// not a branch (the same values): a decode step runs each kernel's code once a layer, fetched
// cold, so short straight paths pay (GPU.md seventeenth block).
__device__ __forceinline__ float f16_to_f32(u16 h) {
#ifdef ORCD_EMU
    const float f = emu_f16_to_f32(h);
#else
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
#endif
    const float n = __uint_as_float(((u32)(h & 0x8000u) << 16) | 0x7f800000u | ((u32)(h & 0x03ffu) << 13));
    return (h & 0x7fffu) > 0x7c00u ? n : f;
}

// f32 -> IEEE half, round to nearest even; a NaN keeps the top 10 bits of its payload and stays
// a NaN if those are all zero (float.rs `f32_to_f16`).
__device__ __forceinline__ u16 f32_to_f16(float x) {
#ifdef ORCD_EMU
    const u16 h = emu_f32_to_f16(x);
#else
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x));
#endif
    const u32 b = __float_as_uint(x);
    const u32 pl = (b & 0x007fffffu) >> 13;
    const u16 n = (u16)(((b >> 16) & 0x8000u) | 0x7c00u | (pl != 0u ? pl : 1u));
    return x != x ? n : h;
}

__device__ __forceinline__ float bf16_to_f32(u16 b) { return __uint_as_float((u32)b << 16); }

// Little-endian loads from byte pointers: quantized blocks sit at any byte offset.
__device__ __forceinline__ u16 rd16(const u8* p) { return (u16)(p[0] | (p[1] << 8)); }
__device__ __forceinline__ u32 rd32(const u8* p) {
    return (u32)p[0] | ((u32)p[1] << 8) | ((u32)p[2] << 16) | ((u32)p[3] << 24);
}
__device__ __forceinline__ float rdf16(const u8* p) { return f16_to_f32(rd16(p)); }

// A KV-cache element: f32, or IEEE half when `f16`.
__device__ __forceinline__ float kv_load(const void* base, i64 i, int f16) {
    return f16 ? f16_to_f32(((const u16*)base)[i]) : ((const float*)base)[i];
}

// ---------------------------------------------------------------------------------------------
// Dequantization: one function per type, chunk `c` (32 elements) of a row into out[32]
// (legacy.rs, kquants.rs, mxfp4.rs; same block layouts, same f32 operations in the same order).
// ---------------------------------------------------------------------------------------------

// IQ4_NL's non-linear grid and MXFP4's E2M1 values times two (legacy.rs / mxfp4.rs KVALUES).
__device__ const i8 kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
__device__ const i8 kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// Legacy blocks: the low nibbles of qs[0..16] are elements 0..16, the high nibbles 16..32.

// Q4_0 (18 B: d f16, qs[16]): w = d * (q - 8).
__device__ __forceinline__ void dq_q4_0(const u8* row, int c, float* out) {
    const u8* b = row + (i64)c * 18;
    const float d = rdf16(b);
#pragma unroll
    for (int l = 0; l < 16; ++l) {
        const u32 q = b[2 + l];
        out[l] = __fmul_rn(d, (float)((int)(q & 15u) - 8));
        out[l + 16] = __fmul_rn(d, (float)((int)(q >> 4) - 8));
    }
}

// Q4_1 (20 B: d, m f16, qs[16]): w = d * q + m (two roundings).
__device__ __forceinline__ void dq_q4_1(const u8* row, int c, float* out) {
    const u8* b = row + (i64)c * 20;
    const float d = rdf16(b), m = rdf16(b + 2);
#pragma unroll
    for (int l = 0; l < 16; ++l) {
        const u32 q = b[4 + l];
        out[l] = __fadd_rn(__fmul_rn(d, (float)(q & 15u)), m);
        out[l + 16] = __fadd_rn(__fmul_rn(d, (float)(q >> 4)), m);
    }
}

// Q5_0 (22 B: d, qh u32 LE, qs[16]): bit 4 of element j is bit j of qh; w = d * (q - 16).
__device__ __forceinline__ void dq_q5_0(const u8* row, int c, float* out) {
    const u8* b = row + (i64)c * 22;
    const float d = rdf16(b);
    const u32 qh = rd32(b + 2);
#pragma unroll
    for (int l = 0; l < 16; ++l) {
        const u32 q = b[6 + l];
        const u32 lo = (q & 15u) | (((qh >> l) & 1u) << 4);
        const u32 hi = (q >> 4) | (((qh >> (l + 16)) & 1u) << 4);
        out[l] = __fmul_rn(d, (float)((int)lo - 16));
        out[l + 16] = __fmul_rn(d, (float)((int)hi - 16));
    }
}

// Q5_1 (24 B: d, m, qh, qs[16]): w = d * q + m.
__device__ __forceinline__ void dq_q5_1(const u8* row, int c, float* out) {
    const u8* b = row + (i64)c * 24;
    const float d = rdf16(b), m = rdf16(b + 2);
    const u32 qh = rd32(b + 4);
#pragma unroll
    for (int l = 0; l < 16; ++l) {
        const u32 q = b[8 + l];
        const u32 lo = (q & 15u) | (((qh >> l) & 1u) << 4);
        const u32 hi = (q >> 4) | (((qh >> (l + 16)) & 1u) << 4);
        out[l] = __fadd_rn(__fmul_rn(d, (float)lo), m);
        out[l + 16] = __fadd_rn(__fmul_rn(d, (float)hi), m);
    }
}

// Q8_0 (34 B: d, qs[32] i8): w = q * d. With Q8_GROUPED (the host's ORCD_CUDA_Q8_GROUPED=1,
// kernels/ABI.md "Q8_0 grouped") a row's blocks sit regrouped by four: the four f16 scales
// (8 bytes), then the four blocks' 32 codes each (136 bytes a group, 8-byte aligned; a row's last
// group may hold fewer blocks, its header still 8 bytes), so a part's 8 codes are one 8-byte load.
#ifdef Q8_GROUPED
#define Q8G 1
#else
#define Q8G 0
#endif
__device__ __forceinline__ const u8* q8_codes(const u8* row, int c) {
    return Q8G ? row + (i64)(c >> 2) * 136 + 8 + 32 * (c & 3) : row + (i64)c * 34 + 2;
}
__device__ __forceinline__ u16 q8_scale(const u8* row, int c) {
    return Q8G ? *(const u16*)(row + (i64)(c >> 2) * 136 + 2 * (c & 3)) : *(const u16*)(row + (i64)c * 34);
}
__device__ __forceinline__ void dq_q8_0(const u8* row, int c, float* out) {
    const u8* b = q8_codes(row, c);
    const float d = f16_to_f32(q8_scale(row, c));
#pragma unroll
    for (int l = 0; l < 32; ++l) out[l] = __fmul_rn((float)(i8)b[l], d);
}

// IQ4_NL (18 B: d, qs[16]): w = d * grid[q].
__device__ __forceinline__ void dq_iq4_nl(const u8* row, int c, float* out) {
    const u8* b = row + (i64)c * 18;
    const float d = rdf16(b);
#pragma unroll
    for (int l = 0; l < 16; ++l) {
        const u32 q = b[2 + l];
        out[l] = __fmul_rn(d, (float)kIq4nlValues[q & 15u]);
        out[l + 16] = __fmul_rn(d, (float)kIq4nlValues[q >> 4]);
    }
}

// E8M0 scale halved: 2^(e - 128), exact (e = 0, 1 are f32 subnormals).
__device__ __forceinline__ float e8m0_half(u32 e) {
    return __uint_as_float(e < 2u ? (0x00200000u << e) : ((e - 1u) << 23));
}

// MXFP4 (17 B: e u8, qs[16]): w = e8m0_half(e) * kvalues[q].
__device__ __forceinline__ void dq_mxfp4(const u8* row, int c, float* out) {
    const u8* b = row + (i64)c * 17;
    const float d = e8m0_half(b[0]);
#pragma unroll
    for (int l = 0; l < 16; ++l) {
        const u32 q = b[1 + l];
        out[l] = __fmul_rn(d, (float)kMxfp4Values[q & 15u]);
        out[l + 16] = __fmul_rn(d, (float)kMxfp4Values[q >> 4]);
    }
}

// K-quants: 256-element super-blocks; chunk c is sub-chunk cc = c % 8 of super-block c / 8.
// For element j = 32 cc + t, the 2-bit "crumb" arrays (Q2_K/Q3_K qs, Q6_K qh) hold it at byte
// 32 (j / 128) + t, shift 2 ((j % 128) / 32) = 2 (cc % 4).

// Q2_K (84 B: scales[16] @0, qs[64] @16, d @80, dmin @82): w = (d*sc) * q - dmin*m.
__device__ __forceinline__ void dq_q2_k(const u8* row, int c, float* out) {
    const int cc = c & 7;
    const u8* b = row + (i64)(c >> 3) * 84;
    const float d = rdf16(b + 80), dmin = rdf16(b + 82);
    const u8* qs = b + 16 + 32 * (cc >> 2);
    const int sh = 2 * (cc & 3);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const u32 s = b[2 * cc + half];
        const float dl = __fmul_rn(d, (float)(s & 15u));
        const float ml = __fmul_rn(dmin, (float)(s >> 4));
#pragma unroll
        for (int t = 16 * half; t < 16 * half + 16; ++t) {
            out[t] = __fsub_rn(__fmul_rn(dl, (float)((qs[t] >> sh) & 3u)), ml);
        }
    }
}

// Q3_K (110 B: hmask[32] @0, qs[64] @32, scales[12] @96, d @108): signed 6-bit scales (sc - 32);
// q = crumb - 4 where the hmask bit (bit j/32 = cc of hmask[t]) is clear; w = (d*sc) * q.
__device__ __forceinline__ void dq_q3_k(const u8* row, int c, float* out) {
    const int cc = c & 7;
    const u8* b = row + (i64)(c >> 3) * 110;
    const float d = rdf16(b + 108);
    const u8* qs = b + 32 + 32 * (cc >> 2);
    const u8* sc = b + 96;
    const int sh = 2 * (cc & 3);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int i = 2 * cc + half;  // sub-block of 16
        const u32 lo = (sc[i % 8] >> (4 * (i / 8))) & 15u;
        const u32 hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 3u;
        const float dl = __fmul_rn(d, (float)((int)(lo | (hi << 4)) - 32));
#pragma unroll
        for (int t = 16 * half; t < 16 * half + 16; ++t) {
            const int high_clear = (int)(((b[t] >> cc) & 1u) ^ 1u);
            const int q = (int)((qs[t] >> sh) & 3u) - (high_clear << 2);
            out[t] = __fmul_rn(dl, (float)q);
        }
    }
}

// The 6-bit scale and min of sub-block i of Q4_K / Q5_K (kquants.rs `scale_min_k4`).
__device__ __forceinline__ void scale_min_k4(const u8* s, int i, u32* sc, u32* m) {
    if (i < 4) {
        *sc = s[i] & 63u;
        *m = s[i + 4] & 63u;
    } else {
        *sc = (s[i + 4] & 15u) | ((s[i - 4] >> 2) & 0x30u);
        *m = (s[i + 4] >> 4) | ((s[i] >> 2) & 0x30u);
    }
}

// Q4_K (144 B: d @0, dmin @2, scales[12] @4, qs[128] @16): sub-block cc (32 elements) uses
// nibble 4 (cc % 2) of qs[32 (cc / 2) + t]; w = (d*sc) * q - (dmin*m).
__device__ __forceinline__ void dq_q4_k(const u8* row, int c, float* out) {
    const int cc = c & 7;
    const u8* b = row + (i64)(c >> 3) * 144;
    u32 sc, m;
    scale_min_k4(b + 4, cc, &sc, &m);
    const float dl = __fmul_rn(rdf16(b), (float)sc);
    const float ml = __fmul_rn(rdf16(b + 2), (float)m);
    const u8* qs = b + 16 + 32 * (cc >> 1);
    const int sh = 4 * (cc & 1);
#pragma unroll
    for (int t = 0; t < 32; ++t) out[t] = __fsub_rn(__fmul_rn(dl, (float)((qs[t] >> sh) & 15u)), ml);
}

// Q5_K (176 B: d, dmin, scales[12] @4, qh[32] @16, qs[128] @48): Q4_K plus bit cc of qh[t].
__device__ __forceinline__ void dq_q5_k(const u8* row, int c, float* out) {
    const int cc = c & 7;
    const u8* b = row + (i64)(c >> 3) * 176;
    u32 sc, m;
    scale_min_k4(b + 4, cc, &sc, &m);
    const float dl = __fmul_rn(rdf16(b), (float)sc);
    const float ml = __fmul_rn(rdf16(b + 2), (float)m);
    const u8* qh = b + 16;
    const u8* qs = b + 48 + 32 * (cc >> 1);
    const int sh = 4 * (cc & 1);
#pragma unroll
    for (int t = 0; t < 32; ++t) {
        const u32 q = ((qs[t] >> sh) & 15u) | (((qh[t] >> cc) & 1u) << 4);
        out[t] = __fsub_rn(__fmul_rn(dl, (float)q), ml);
    }
}

// Q6_K (210 B: ql[128] @0, qh[64] @128, scales[16] i8 @192, d @208): element j = 32 cc + t has
// its low nibble 4 ((cc % 4) / 2) in ql[64 (cc / 4) + 32 (cc % 2) + t], its high 2 bits in the
// qh crumb; w = (d*sc) * (q - 32).
__device__ __forceinline__ void dq_q6_k(const u8* row, int c, float* out) {
    const int cc = c & 7;
    const u8* b = row + (i64)(c >> 3) * 210;
    const float d = rdf16(b + 208);
    const u8* ql = b + 64 * (cc >> 2) + 32 * (cc & 1);
    const int lsh = 4 * ((cc & 3) >> 1);
    const u8* qh = b + 128 + 32 * (cc >> 2);
    const int hsh = 2 * (cc & 3);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const float dl = __fmul_rn(d, (float)(i8)b[192 + 2 * cc + half]);
#pragma unroll
        for (int t = 16 * half; t < 16 * half + 16; ++t) {
            const u32 q = ((ql[t] >> lsh) & 15u) | (((qh[t] >> hsh) & 3u) << 4);
            out[t] = __fmul_rn(dl, (float)((int)q - 32));
        }
    }
}

// Type traits for the templates: quantized types dequantize whole chunks, float types single
// elements (their rows may have any length).
// Part decoders (the mat-vec's 8-element parts: elements 8q .. 8q + 7 of chunk c), the same
// values as the chunk decoders above, reading only the part's bytes: `raw_*` loads them (2-byte
// loads: every block of these types starts on an even offset) so a thread can have several
// columns' parts in flight before it decodes any (`dec_*`).
struct MvRaw {
    u32 a, b;  // the part's 8 quant bytes, little-endian
    u32 s;     // the block's f16 scale (low half) and, for Q4_1, its f16 min (high half)
    u32 t;     // the k-quants' sub-block scale, min and shifts (unused by the others)
};
__device__ __forceinline__ u32 ld2x16(const u8* p) {
    return (u32)((const u16*)p)[0] | ((u32)((const u16*)p)[1] << 16);
}
__device__ __forceinline__ MvRaw raw_q8_0(const u8* row, int c, int q) {
    if (Q8G) {  // the part's codes: one 8-byte load (a group's codes start on 8 bytes)
        const uint2 v = *(const uint2*)(q8_codes(row, c) + 8 * q);
        return MvRaw{v.x, v.y, (u32)q8_scale(row, c)};
    }
    const u8* b = row + (i64)c * 34;
    return MvRaw{ld2x16(b + 2 + 8 * q), ld2x16(b + 6 + 8 * q), (u32)*(const u16*)b};
}
__device__ __forceinline__ void dec_q8_0(MvRaw r, int, float* out) {
    const float d = f16_to_f32((u16)(r.s & 0xffffu));
#pragma unroll
    for (int l = 0; l < 8; ++l) out[l] = __fmul_rn((float)(i8)(((l < 4 ? r.a : r.b) >> (8 * (l & 3))) & 0xffu), d);
}
// Q4_0 / Q4_1: parts 0, 1 are the low nibbles of qs[0..8), qs[8..16); parts 2, 3 the high ones.
__device__ __forceinline__ MvRaw raw_q4_0(const u8* row, int c, int q) {
    const u8* b = row + (i64)c * 18 + 2 + 8 * (q & 1);
    return MvRaw{ld2x16(b), ld2x16(b + 4), (u32)*(const u16*)(row + (i64)c * 18)};
}
__device__ __forceinline__ void dec_q4_0(MvRaw r, int q, float* out) {
    const float d = f16_to_f32((u16)(r.s & 0xffffu));
    const int sh = 4 * (q >> 1);
#pragma unroll
    for (int l = 0; l < 8; ++l) {
        const u32 byte = ((l < 4 ? r.a : r.b) >> (8 * (l & 3))) & 0xffu;
        out[l] = __fmul_rn(d, (float)((int)((byte >> sh) & 15u) - 8));
    }
}
__device__ __forceinline__ MvRaw raw_q4_1(const u8* row, int c, int q) {
    const u8* b = row + (i64)c * 20;
    return MvRaw{ld2x16(b + 4 + 8 * (q & 1)), ld2x16(b + 8 + 8 * (q & 1)), ld2x16(b)};
}
__device__ __forceinline__ void dec_q4_1(MvRaw r, int q, float* out) {
    const float d = f16_to_f32((u16)(r.s & 0xffffu)), m = f16_to_f32((u16)(r.s >> 16));
    const int sh = 4 * (q >> 1);
#pragma unroll
    for (int l = 0; l < 8; ++l) {
        const u32 byte = ((l < 4 ? r.a : r.b) >> (8 * (l & 3))) & 0xffu;
        out[l] = __fadd_rn(__fmul_rn(d, (float)((byte >> sh) & 15u)), m);
    }
}
// Q5_0: Q4_0's parts with a fifth bit a code — element e's is bit e of qh, so part q's eight are
// qh's byte q, carried in the raw's high half (Q5_0 has no min). Codes 0..31 less 16.
__device__ __forceinline__ MvRaw raw_q5_0(const u8* row, int c, int q) {
    const u8* b = row + (i64)c * 22;
    const u32 qh = ld2x16(b + 2);
    return MvRaw{ld2x16(b + 6 + 8 * (q & 1)), ld2x16(b + 10 + 8 * (q & 1)),
                 (u32)*(const u16*)b | (((qh >> (8 * q)) & 0xffu) << 16)};
}
__device__ __forceinline__ void dec_q5_0(MvRaw r, int q, float* out) {
    const float d = f16_to_f32((u16)(r.s & 0xffffu));
    const u32 hb = r.s >> 16;
    const int sh = 4 * (q >> 1);
#pragma unroll
    for (int l = 0; l < 8; ++l) {
        const u32 byte = ((l < 4 ? r.a : r.b) >> (8 * (l & 3))) & 0xffu;
        const u32 code = ((byte >> sh) & 15u) | (((hb >> l) & 1u) << 4);
        out[l] = __fmul_rn(d, (float)((int)code - 16));
    }
}
__device__ __forceinline__ u32 fifth_bits(u32 h4) {  // 4 bits → bit 4 of each of 4 bytes
    return ((h4 & 1u) << 4) | ((h4 & 2u) << 11) | ((h4 & 4u) << 18) | ((h4 & 8u) << 25);
}
// The k-quants' parts (elements 8q .. 8q + 7 of 32-element sub-block c: super-block c / 8, its
// sub-block cc = c % 8), the values of dq_q4_k / dq_q5_k / dq_q6_k. The fast numerics round their
// activation to Q8_K (xq 1: float products, never the codes), so they have no `dot`.
// Q4_K: the part's 8 bytes of qs, d and dmin in s, t = sc | m << 8 | the nibble's shift << 16.
__device__ __forceinline__ MvRaw raw_q4_k(const u8* row, int c, int q) {
    const int cc = c & 7;
    const u8* b = row + (i64)(c >> 3) * 144;
    const u8* qs = b + 16 + 32 * (cc >> 1) + 8 * q;
    u32 sc, m;
    scale_min_k4(b + 4, cc, &sc, &m);
    return MvRaw{ld2x16(qs), ld2x16(qs + 4), ld2x16(b), sc | (m << 8) | ((u32)(4 * (cc & 1)) << 16)};
}
__device__ __forceinline__ void dec_q4_k(MvRaw r, int, float* out) {
    const float dl = __fmul_rn(f16_to_f32((u16)(r.s & 0xffffu)), (float)(r.t & 0xffu));
    const float ml = __fmul_rn(f16_to_f32((u16)(r.s >> 16)), (float)((r.t >> 8) & 0xffu));
    const int sh = (int)(r.t >> 16);
#pragma unroll
    for (int l = 0; l < 8; ++l) {
        const u32 byte = ((l < 4 ? r.a : r.b) >> (8 * (l & 3))) & 0xffu;
        out[l] = __fsub_rn(__fmul_rn(dl, (float)((byte >> sh) & 15u)), ml);
    }
}
// Q5_K: Q4_K's, with the part's 8 fifth bits (bit cc of qh[8q + l]) in t's top byte.
__device__ __forceinline__ MvRaw raw_q5_k(const u8* row, int c, int q) {
    const int cc = c & 7;
    const u8* b = row + (i64)(c >> 3) * 176;
    const u8* qs = b + 48 + 32 * (cc >> 1) + 8 * q;
    const u32 h0 = ld2x16(b + 16 + 8 * q), h1 = ld2x16(b + 20 + 8 * q);
    u32 hb = 0;
#pragma unroll
    for (int l = 0; l < 8; ++l) hb |= (((l < 4 ? h0 : h1) >> (8 * (l & 3) + cc)) & 1u) << l;
    u32 sc, m;
    scale_min_k4(b + 4, cc, &sc, &m);
    return MvRaw{ld2x16(qs), ld2x16(qs + 4), ld2x16(b), sc | (m << 8) | ((u32)(4 * (cc & 1)) << 16) | (hb << 24)};
}
__device__ __forceinline__ void dec_q5_k(MvRaw r, int, float* out) {
    const float dl = __fmul_rn(f16_to_f32((u16)(r.s & 0xffffu)), (float)(r.t & 0xffu));
    const float ml = __fmul_rn(f16_to_f32((u16)(r.s >> 16)), (float)((r.t >> 8) & 0xffu));
    const int sh = (int)((r.t >> 16) & 0xffu);
#pragma unroll
    for (int l = 0; l < 8; ++l) {
        const u32 byte = ((l < 4 ? r.a : r.b) >> (8 * (l & 3))) & 0xffu;
        const u32 code = ((byte >> sh) & 15u) | (((r.t >> (24 + l)) & 1u) << 4);
        out[l] = __fsub_rn(__fmul_rn(dl, (float)code), ml);
    }
}
// Q6_K: the part's 8 bytes of ql, d and the 8 high crumbs in s, t = the 16-element half's i8
// scale | the nibble's shift << 8.
__device__ __forceinline__ MvRaw raw_q6_k(const u8* row, int c, int q) {
    const int cc = c & 7;
    const u8* b = row + (i64)(c >> 3) * 210;
    const u8* ql = b + 64 * (cc >> 2) + 32 * (cc & 1) + 8 * q;
    const u8* qh = b + 128 + 32 * (cc >> 2) + 8 * q;
    const u32 h0 = ld2x16(qh), h1 = ld2x16(qh + 4);
    const int hsh = 2 * (cc & 3);
    u32 cr = 0;
#pragma unroll
    for (int l = 0; l < 8; ++l) cr |= (((l < 4 ? h0 : h1) >> (8 * (l & 3) + hsh)) & 3u) << (2 * l);
    return MvRaw{ld2x16(ql), ld2x16(ql + 4), (u32)rd16(b + 208) | (cr << 16),
                 (u32)b[192 + 2 * cc + (q >> 1)] | ((u32)(4 * ((cc & 3) >> 1)) << 8)};
}
__device__ __forceinline__ void dec_q6_k(MvRaw r, int, float* out) {
    const float dl = __fmul_rn(f16_to_f32((u16)(r.s & 0xffffu)), (float)(i8)(r.t & 0xffu));
    const int sh = (int)(r.t >> 8);
#pragma unroll
    for (int l = 0; l < 8; ++l) {
        const u32 byte = ((l < 4 ? r.a : r.b) >> (8 * (l & 3))) & 0xffu;
        const u32 code = ((byte >> sh) & 15u) | (((r.s >> (16 + 2 * l)) & 3u) << 4);
        out[l] = __fmul_rn(dl, (float)((int)code - 32));
    }
}
// The fast numerics' integer products (llama.cpp's mmvq, `vec_dot_q8_0_q8_1` and kin): a part's
// activation rounded to Q8_0 codes (MvX: the 8 codes packed little-endian as in MvRaw, the chunk's
// f16-rounded scale, the codes' sum) meets the part's weight codes in two dp4a, exactly; the
// integer sum then scales once, acc = fma(d_w · d_x, Σ, acc) (Q4_1 adds its min's term the same
// way). Exact, the integer sum equals the sum of the products of the dequantized values; only
// the float roundings differ from the float path (8 products there, 1 here).
struct MvX {
    u32 a, b;  // the part's 8 activation codes (int8), little-endian
    float d;   // the chunk's scale (f16-rounded, as Q8_0 stores it)
    float s;   // Q4_1's min term: Q8_1's s = f16(d' · Σ codes of the chunk), d' = amax/127 unrounded
};
__device__ __forceinline__ float dot_q8_0(MvRaw r, int, MvX x, float acc) {
    const int sumi = __dp4a((int)r.b, (int)x.b, __dp4a((int)r.a, (int)x.a, 0));
    return fmaf(__fmul_rn(f16_to_f32((u16)(r.s & 0xffffu)), x.d), (float)sumi, acc);
}
__device__ __forceinline__ float dot_q4_0(MvRaw r, int q, MvX x, float acc) {
    const int sh = 4 * (q >> 1);
    // Codes 0..15 less 8, per byte (modulo 256: -8..7 as int8).
    const u32 qa = __vsub4((r.a >> sh) & 0x0f0f0f0fu, 0x08080808u), qb = __vsub4((r.b >> sh) & 0x0f0f0f0fu, 0x08080808u);
    const int sumi = __dp4a((int)qb, (int)x.b, __dp4a((int)qa, (int)x.a, 0));
    return fmaf(__fmul_rn(f16_to_f32((u16)(r.s & 0xffffu)), x.d), (float)sumi, acc);
}
__device__ __forceinline__ float dot_q4_1(MvRaw r, int q, MvX x, float acc) {
    const int sh = 4 * (q >> 1);
    const u32 qa = (r.a >> sh) & 0x0f0f0f0fu, qb = (r.b >> sh) & 0x0f0f0f0fu;  // codes 0..15
    const int sumi = __dp4a((int)qb, (int)x.b, __dp4a((int)qa, (int)x.a, 0));
    const float d = f16_to_f32((u16)(r.s & 0xffffu)), m = f16_to_f32((u16)(r.s >> 16));
    acc = fmaf(__fmul_rn(d, x.d), (float)sumi, acc);
    // Σ (d q + m) x = d Σ q x + m Σ x: the chunk's m · s once, on its first part, with s as
    // llama.cpp's Q8_1 block keeps it (f16), so the min term is llama.cpp's product.
    return q == 0 ? fmaf(m, x.s, acc) : acc;
}
__device__ __forceinline__ float dot_q5_0(MvRaw r, int q, MvX x, float acc) {
    const int sh = 4 * (q >> 1);
    const u32 hb = r.s >> 16;
    // Codes 0..31 less 16, per byte (modulo 256: -16..15 as int8).
    const u32 qa = __vsub4(((r.a >> sh) & 0x0f0f0f0fu) | fifth_bits(hb & 15u), 0x10101010u);
    const u32 qb = __vsub4(((r.b >> sh) & 0x0f0f0f0fu) | fifth_bits((hb >> 4) & 15u), 0x10101010u);
    const int sumi = __dp4a((int)qb, (int)x.b, __dp4a((int)qa, (int)x.a, 0));
    return fmaf(__fmul_rn(f16_to_f32((u16)(r.s & 0xffffu)), x.d), (float)sumi, acc);
}
#define NO_RAW(row, c, q) MvRaw{0u, 0u, 0u}
#define NO_DEC(r, q, out) ((void)0)
#define NO_DOT(r, q, x, acc) (acc)

#define QUANT_TYPE(NAME, HAS_PART, RAW_FN, DEC_FN, DOT_FN, HAS_MIN)                       \
    struct T_##NAME {                                                                     \
        static constexpr bool FLOAT = false;                                              \
        static constexpr bool MIN = HAS_MIN; /* dot reads MvX::s */                       \
        static constexpr bool PART = HAS_PART;                                            \
        static __device__ __forceinline__ void chunk(const u8* row, int c, float* out) { \
            dq_##NAME(row, c, out);                                                       \
        }                                                                                 \
        static __device__ __forceinline__ MvRaw raw(const u8* row, int c, int q) {        \
            return RAW_FN(row, c, q);                                                     \
        }                                                                                 \
        static __device__ __forceinline__ void dec(MvRaw r, int q, float* out) {          \
            DEC_FN(r, q, out);                                                            \
        }                                                                                 \
        static __device__ __forceinline__ void part(const u8* row, int c, int q, float* out) { \
            DEC_FN(RAW_FN(row, c, q), q, out);                                            \
        }                                                                                 \
        static __device__ __forceinline__ float dot(MvRaw r, int q, MvX x, float acc) {  \
            return DOT_FN(r, q, x, acc);                                                  \
        }                                                                                 \
        static __device__ __forceinline__ float elem(const u8*, i64) { return 0.0f; }     \
    };
QUANT_TYPE(q4_0, true, raw_q4_0, dec_q4_0, dot_q4_0, false)
QUANT_TYPE(q4_1, true, raw_q4_1, dec_q4_1, dot_q4_1, true)
QUANT_TYPE(q5_0, true, raw_q5_0, dec_q5_0, dot_q5_0, false)
QUANT_TYPE(q5_1, false, NO_RAW, NO_DEC, NO_DOT, false)
QUANT_TYPE(q8_0, true, raw_q8_0, dec_q8_0, dot_q8_0, false)
QUANT_TYPE(q2_k, false, NO_RAW, NO_DEC, NO_DOT, false)
QUANT_TYPE(q3_k, false, NO_RAW, NO_DEC, NO_DOT, false)
QUANT_TYPE(q4_k, true, raw_q4_k, dec_q4_k, NO_DOT, false)
QUANT_TYPE(q5_k, true, raw_q5_k, dec_q5_k, NO_DOT, false)
QUANT_TYPE(q6_k, true, raw_q6_k, dec_q6_k, NO_DOT, false)
QUANT_TYPE(iq4_nl, false, NO_RAW, NO_DEC, NO_DOT, false)
QUANT_TYPE(mxfp4, false, NO_RAW, NO_DEC, NO_DOT, false)

// The activation rounding (`xq`) the fast numerics give a part-decodable type's mat-vec: the
// Q8_0 codes (0) for the 32-element types, Q8_K (1) for the k-quants (backend.rs matmul_rounding).
template <class T> struct FastXq { static constexpr int v = 0; };
template <> struct FastXq<T_q4_k> { static constexpr int v = 1; };
template <> struct FastXq<T_q5_k> { static constexpr int v = 1; };
template <> struct FastXq<T_q6_k> { static constexpr int v = 1; };

#define FLOAT_TYPE(NAME, EXPR)                                                       \
    struct T_##NAME {                                                                \
        static constexpr bool FLOAT = true;                                          \
        static constexpr bool PART = false;                                          \
        static __device__ __forceinline__ void chunk(const u8*, int, float*) {}      \
        static __device__ __forceinline__ MvRaw raw(const u8*, int, int) { return MvRaw{0u, 0u, 0u}; } \
        static __device__ __forceinline__ void dec(MvRaw, int, float*) {}            \
        static __device__ __forceinline__ void part(const u8*, int, int, float*) {}  \
        static __device__ __forceinline__ float elem(const u8* row, i64 i) { return EXPR; } \
    };
FLOAT_TYPE(f32, ((const float*)row)[i])
FLOAT_TYPE(f16, f16_to_f32(((const u16*)row)[i]))
FLOAT_TYPE(bf16, bf16_to_f32(((const u16*)row)[i]))

// ---------------------------------------------------------------------------------------------
// Reductions (fixed order: strided per-thread partials, xor tree 16..1, warps in order)
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = __dadd_rn(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

__device__ __forceinline__ double warp_max_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

// Block-wide sum / max of a double; every thread of the block must call it. `red` holds 32
// entries of static shared memory; the trailing barrier lets the caller reuse `red` at once.
__device__ double block_sum_d(double v, double* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum_d(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        double t = lane < nw ? red[lane] : 0.0;
        t = warp_sum_d(t);
        if (lane == 0) red[0] = t;
    }
    __syncthreads();
    const double r = red[0];
    __syncthreads();
    return r;
}

__device__ double block_max_d(double v, double* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_max_d(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        double t = lane < nw ? red[lane] : F64_NEG_INF;
        t = warp_max_d(t);
        if (lane == 0) red[0] = t;
    }
    __syncthreads();
    const double r = red[0];
    __syncthreads();
    return r;
}

// block_sum_d / block_max_d for blocks of at most 8 warps, with one barrier fewer and no serial
// second stage: after the warps' partials are in `red`, every thread reduces them itself. The
// sum replays warp 0's xor tree: lanes 8..31 hold 0.0, so levels 16 and 8 add 0.0 to lanes
// 0..7 (x + 0.0 is x, but -0.0 becomes +0.0: kept), then levels 4, 2, 1 (lane l < o adds lane
// l + o). The same additions in the same order, so the same value. Reusable `red` on return.
__device__ double block_sum8_d(double v, double* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_sum_d(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    double t[8];
#pragma unroll
    for (int l = 0; l < 8; ++l) t[l] = __dadd_rn(l < nw ? red[l] : 0.0, 0.0);
#pragma unroll
    for (int l = 0; l < 4; ++l) t[l] = __dadd_rn(t[l], t[l + 4]);
    t[0] = __dadd_rn(t[0], t[2]);
    t[1] = __dadd_rn(t[1], t[3]);
    t[0] = __dadd_rn(t[0], t[1]);
    __syncthreads();
    return t[0];
}
// The maximum is the same in any order (fmax ignores NaN).
__device__ double block_max8_d(double v, double* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_max_d(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    double m = F64_NEG_INF;
    for (int l = 0; l < nw; ++l) m = fmax(m, red[l]);
    __syncthreads();
    return m;
}

// Ranking keys for argmax / top-k: (key, idx) pairs, larger key first, ties to the lower index;
// idx < 0 is "no candidate". Candidates are totally ordered, so the reduction is exact.
__device__ __forceinline__ bool pair_better(int k1, int i1, int k2, int i2) {
    if (i2 < 0) return i1 >= 0;
    if (i1 < 0) return false;
    return k1 > k2 || (k1 == k2 && i1 < i2);
}

// Rust's f32::total_cmp as a signed integer key (-NaN < -inf < ... < -0 < +0 < ... < +inf < NaN).
__device__ __forceinline__ int total_key(float v) {
    const int k = __float_as_int(v);
    return k ^ (int)((u32)(k >> 31) >> 1);
}

// argmax_rows' order (kv.rs `argmax_rows`): NaN loses to every number, -0 equals +0.
__device__ __forceinline__ int argmax_key(float v) {
    if (v != v) return (int)0x80000000;
    return total_key(v == 0.0f ? 0.0f : v);
}

// Block-wide best pair; every thread must call it; `rk`, `ri` hold 32 entries of shared memory.
__device__ void block_best(int* key, int* idx, int* rk, int* ri) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    int k = *key, i = *idx;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const int k2 = __shfl_xor_sync(FULL_MASK, k, o), i2 = __shfl_xor_sync(FULL_MASK, i, o);
        if (pair_better(k2, i2, k, i)) { k = k2; i = i2; }
    }
    if (lane == 0) { rk[warp] = k; ri[warp] = i; }
    __syncthreads();
    if (warp == 0) {
        k = lane < nw ? rk[lane] : 0;
        i = lane < nw ? ri[lane] : -1;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const int k2 = __shfl_xor_sync(FULL_MASK, k, o), i2 = __shfl_xor_sync(FULL_MASK, i, o);
            if (pair_better(k2, i2, k, i)) { k = k2; i = i2; }
        }
        if (lane == 0) { rk[0] = k; ri[0] = i; }
    }
    __syncthreads();
    *key = rk[0];
    *idx = ri[0];
    __syncthreads();
}

// ---------------------------------------------------------------------------------------------
// Row normalizations (grid rows, one block per row; f64 as cpu.rs)
// ---------------------------------------------------------------------------------------------

// rms_norm's value of `x` at the row's scale `sc`: the product in f64, rounded to f32 (cpu.rs's
// order). The kernels that normalize a row as rms_norm does take their values from here, but for
// the `rope` kernel's head norm, which spells the product out (its code stays as the card ran it).
__device__ __forceinline__ float rms_value(float x, double sc) { return (float)__dmul_rn((double)x, sc); }
// The same value times its weight `w`, then added to the residual `res` (a post-norm: gemma-3's
// `h = res + rms_norm(y)·w`), each step rounded in f32 as rms_norm with `w` and `res` rounds it.
__device__ __forceinline__ float rms_value_add(float x, double sc, float w, float res) {
    return __fadd_rn(res, __fmul_rn(rms_value(x, sc), w));
}

// With `w` (may be null), each value is then multiplied by w[col] in f32: mul_row fused, same bits;
// with `res` (may be null), added to res[row, col] in f32 after: `add(res, ·)` fused, same bits.
extern "C" __global__ void rms_norm(const float* x, float* y, int rows, int cols, float eps, const float* w,
                                    const float* res) {
    __shared__ double red[32];
    pdl_trigger();
    pdl_wait();  // x and res belong to the kernels before this one (a no-op without PDL)
    const int r = blockIdx.x;
    if (r >= rows) return;
    const float* xr = x + (i64)r * cols;
    float* yr = y + (i64)r * cols;
    double s = 0.0;
#ifndef X_SERIAL
    // Four strides' loads together, summed in order (as rms_scale_256's: the same values).
    for (int i0 = threadIdx.x; i0 < cols; i0 += 4 * blockDim.x) {
        float v4[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int i = i0 + j * blockDim.x;
            v4[j] = i < cols ? xr[i] : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const double v = v4[j];
            s = __dadd_rn(s, __dmul_rn(v, v));
        }
    }
#else
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        const double v = xr[i];
        s = __dadd_rn(s, __dmul_rn(v, v));
    }
#endif
    s = block_sum_d(s, red);  // its barriers also order the reads above before any write below
    const double sc = 1.0 / sqrt(s / (double)cols + (double)eps);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        const float v = rms_value(xr[i], sc);
        const float vw = w ? __fmul_rn(v, w[i]) : v;
        yr[i] = res ? __fadd_rn(res[(i64)r * cols + i], vw) : vw;
    }
}

extern "C" __global__ void layer_norm(const float* x, float* y, int rows, int cols, float eps) {
    __shared__ double red[32];
    const int r = blockIdx.x;
    if (r >= rows) return;
    const float* xr = x + (i64)r * cols;
    float* yr = y + (i64)r * cols;
    const double n = (double)cols;
    double s = 0.0;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) s = __dadd_rn(s, (double)xr[i]);
    const double mean = block_sum_d(s, red) / n;
    double v = 0.0;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        const double dv = (double)xr[i] - mean;
        v = __dadd_rn(v, __dmul_rn(dv, dv));
    }
    const double sc = 1.0 / sqrt(block_sum_d(v, red) / n + (double)eps);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        yr[i] = (float)__dmul_rn((double)xr[i] - mean, sc);
    }
}

// ---------------------------------------------------------------------------------------------
// Elementwise (1-D, grid-stride). add / scale / mul_row / add_row are single f32 operations.
// ---------------------------------------------------------------------------------------------

extern "C" __global__ void mul_row(const float* x, const float* w, float* y, long long n, int cols) {
    if (cols <= 0) return;
    GRID_LOOP(i, n) y[i] = __fmul_rn(x[i], w[i % cols]);
}

extern "C" __global__ void add_row(const float* x, const float* w, float* y, long long n, int cols) {
    if (cols <= 0) return;
    GRID_LOOP(i, n) y[i] = __fadd_rn(x[i], w[i % cols]);
}

extern "C" __global__ void add(const float* a, const float* b, float* y, long long n) {
    GRID_LOOP(i, n) y[i] = __fadd_rn(a[i], b[i]);
}

extern "C" __global__ void scale(const float* x, float* y, long long n, float s) {
    GRID_LOOP(i, n) y[i] = __fmul_rn(x[i], s);
}

// cap * tanh(x / cap) in f64.
extern "C" __global__ void softcap(const float* x, float* y, long long n, float cap) {
    const double c = cap;
    GRID_LOOP(i, n) y[i] = (float)__dmul_rn(c, tanh(__ddiv_rn((double)x[i], c)));
}

// x / (1 + exp(-x)) in f64.
__device__ __forceinline__ float silu_f(float xf) {
    const double x = xf;
    return (float)__ddiv_rn(x, __dadd_rn(1.0, exp(-x)));
}

// ggml's GELU: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in f64, each product rounded.
__device__ __forceinline__ float gelu_tanh_f(float xf) {
    const double x = xf;
    const double c = sqrt(2.0 / 3.141592653589793);
    const double x3 = __dmul_rn(__dmul_rn(__dmul_rn(0.044715, x), x), x);
    const double t = tanh(__dmul_rn(c, __dadd_rn(x, x3)));
    return (float)__dmul_rn(__dmul_rn(0.5, x), __dadd_rn(1.0, t));
}

// y = f(g) * u in f32 after f in f64; u == nullptr means ones (the CPU's `act` is glu(x, 1)).
// ggml's GELU of the fast numerics (GGML_GELU_FP16, engine/cpu/src/cpu_fast.rs `gelu`): 0 at or
// below -10, the identity at or above 10, else gelu_f32 of the input rounded to f16, rounded to
// f16 (ggml's table), with gelu_f32's `1 + A·x·x` as one FMA as GCC compiles it.
__device__ __forceinline__ float gelu_ggml_f16(float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    const float h = f16_to_f32(f32_to_f16(x));
    const float inner = __fmul_rn(__fmul_rn(0.7978846f, h), fmaf(__fmul_rn(0.044715f, h), h, 1.0f));
    const float g = __fmul_rn(__fmul_rn(0.5f, h), __fadd_rn(1.0f, tanhf(inner)));
    return f16_to_f32(f32_to_f16(g));
}

// act: 0 silu, 1 gelu-tanh (exact, f64), 2 ggml's f16-table GELU (fast numerics).
__device__ __forceinline__ float glu_value(float g, float u, int act) {
    const float f = act == 2 ? gelu_ggml_f16(g) : act == 1 ? gelu_tanh_f(g) : silu_f(g);
    return __fmul_rn(f, u);
}

// glu_value out of line: a GEMM epilogue inlined it once per accumulator (32 copies, ~8,000 of
// mmq_q8_0's 10,784 instructions), code every block fetched cold. The same function, the same
// values (every operation in it is an explicit rounding).
__device__ __noinline__ float glu_value_call(float g, float u, int act) { return glu_value(g, u, act); }

extern "C" __global__ void glu(const float* g, const float* u, float* y, long long n, int act) {
    GRID_LOOP(i, n) y[i] = glu_value(g[i], u ? u[i] : 1.0f, act);
}

// ggml's swiglu_oai: x = min(g, limit), y = clamp(u, -limit, limit),
// x / (1 + exp(-alpha x)) * (y + 1) in f64.
extern "C" __global__ void swiglu_oai(const float* g, const float* u, float* y, long long n, float alpha,
                                      float limit) {
    const double na = -(double)alpha;
    GRID_LOOP(i, n) {
        const double x = (double)fminf(g[i], limit);  // f32::min: a NaN g gives `limit`
        float uf = u[i];
        if (uf < -limit) uf = -limit;  // f32::clamp keeps NaN
        if (uf > limit) uf = limit;
        const double yy = uf;
        const double s = __ddiv_rn(x, __dadd_rn(1.0, exp(__dmul_rn(na, x))));
        y[i] = (float)__dmul_rn(s, __dadd_rn(yy, 1.0));
    }
}

extern "C" __global__ void slice_cols(const float* x, float* y, int rows, int cols, int start, int len) {
    if (len <= 0) return;
    GRID_LOOP(i, (i64)rows * len) {
        const i64 r = i / len, c = i % len;
        y[i] = x[r * cols + start + c];
    }
}

extern "C" __global__ void gather_rows(const float* x, const unsigned* idx, float* y, int n_out, int cols) {
    if (cols <= 0) return;
    GRID_LOOP(i, (i64)n_out * cols) {
        const i64 r = i / cols, c = i % cols;
        y[i] = x[(i64)idx[r] * cols + c];
    }
}

// ---------------------------------------------------------------------------------------------
// RoPE (grid rows, block 128): copy the row, rotate pairs i < n_rot/2 of every head; the angle
// is cpu.rs `rope`'s, in f64 (freq_factors divides; YaRN ramp blend when yarn_ramp).
// ---------------------------------------------------------------------------------------------

#define ROPE_MAX_HALF 256  // rotated pairs per head (head_dim ≤ 512)

// Pair i's mscale · sin and mscale · cos at position p (cpu.rs `rope`'s angle, f64): the rope
// kernel's and the mat-vec's fused RoPE (matvec8r_) share it, so both rotate by the same values.
__device__ __forceinline__ void rope_angle(int i, unsigned p, int n_rot, float freq_base, float freq_scale,
                                           int yarn_ramp, float ext_factor, float corr0, float corr1,
                                           double mscale, const float* freq_factors, double* s, double* c) {
    const double ps = (double)p, fs = freq_scale;
    double extrap = __dmul_rn(ps, pow((double)freq_base, __ddiv_rn(-2.0 * (double)i, (double)n_rot)));
    if (freq_factors) extrap = __ddiv_rn(extrap, (double)freq_factors[i]);
    double theta;
    if (yarn_ramp) {
        const double lo = corr0;
        double yv = __ddiv_rn((double)i - lo, fmax((double)corr1 - lo, 0.001));
        yv = yv < 0.0 ? 0.0 : (yv > 1.0 ? 1.0 : yv);
        const double ramp = __dmul_rn(1.0 - yv, (double)ext_factor);
        theta = __dadd_rn(__dmul_rn(__dmul_rn(fs, extrap), 1.0 - ramp), __dmul_rn(extrap, ramp));
    } else {
        theta = __dmul_rn(fs, extrap);
    }
    double sn, cn;
    sincos(theta, &sn, &cn);
    *s = __dmul_rn(sn, mscale);
    *c = __dmul_rn(cn, mscale);
}
// The rotated pair (a, b) by (s, c), as the rope kernel writes it.
__device__ __forceinline__ void rope_pair(float a, float b, double s, double c, float* ra, float* rb) {
    *ra = (float)__dsub_rn(__dmul_rn((double)a, c), __dmul_rn((double)b, s));
    *rb = (float)__dadd_rn(__dmul_rn((double)a, s), __dmul_rn((double)b, c));
}

// rope_table (grid rows, block 128, under PDL): each row's pairs i < head_dim/2 as rope_angle gives
// them (head_dim here = the rotated dims n_rot) at its position, tab[2 (r · head_dim/2 + i)] =
// mscale · sin, + 1 = mscale · cos — once a forward for all of its layers' matvec8r_, matvec8h_
// and rope launches (which otherwise compute their pairs' angles, f64 pow and sincos, before
// their waits: on the chain, stop 50's MV_WARM).
extern "C" __global__ void rope_table(const unsigned* pos, int rows, int head_dim, float freq_base, float freq_scale,
                                      int yarn_ramp, float ext_factor, float corr0, float corr1, double mscale,
                                      const float* freq_factors, double* tab) {
    pdl_trigger();
    const int r = blockIdx.x, half = head_dim / 2;
    if (r >= rows || head_dim <= 0 || half > ROPE_MAX_HALF || blockDim.x != 128) return;  // not the ABI's launch
    double sn[2], cs[2];  // half ≤ 256 pairs: at most 2 a thread
#pragma unroll
    for (int q = 0; q < 2; ++q) {
        const int i = (int)threadIdx.x + q * 128;
        sn[q] = cs[q] = 0.0;
        if (i < half) {
            rope_angle(i, pos[r], head_dim, freq_base, freq_scale, yarn_ramp, ext_factor, corr0, corr1, mscale,
                       freq_factors, &sn[q], &cs[q]);
        }
    }
    pdl_wait();  // nothing of the step before may still read the table
#pragma unroll
    for (int q = 0; q < 2; ++q) {
        const int i = (int)threadIdx.x + q * 128;
        if (i < half) {
            tab[2 * ((i64)r * half + i)] = sn[q];
            tab[2 * ((i64)r * half + i) + 1] = cs[q];
        }
    }
}

// With x2 (grid (rows, 2)), blocks with blockIdx.y = 1 rotate x2 (n_head2 heads) into y2 with the
// same angles: q and k in one launch.
#define ROPE_MAX_HEADS 128  // heads a row of norm_rope_qk_kv_write (the host checks)
extern "C" __global__ void rope(const float* x, float* y, const unsigned* pos, int rows, int n_head, int head_dim,
                                int n_rot, int neox, float freq_base, float freq_scale, int yarn_ramp,
                                float ext_factor, float corr0, float corr1, double mscale,
                                const float* freq_factors, const float* x2, float* y2, int n_head2, void* kc,
                                void* vc, const float* v, const unsigned* seq, int il, int n_seq, int n_ctx,
                                int v_cols, int kv_f16, const float* hnq, const float* hnk, float hn_eps,
                                float q_scale, const double* rtab) {
    pdl_trigger();
    const int r = blockIdx.x;
    if (r >= rows || head_dim <= 0) return;
    // Launched with PDL: pos, seq and freq_factors come from before the step (uploads, not
    // kernels), so they are read before pdl_wait; x, v and every write come after it.
    // With kc (rope_qk_kv_write): plane 1 also stores the rotated keys into the cache and plane 2
    // stores v, exactly as kv_write does (rows outside the cache are not stored).
    i64 kslot = -1;
    if (kc && blockIdx.y >= 1) {
        const u32 s = seq[r], p = pos[r];
        if (s < (u32)n_seq && p < (u32)n_ctx) kslot = ((i64)il * n_seq + s) * n_ctx + p;
    }
    if (blockIdx.y == 2) {
        if (!kc || kslot < 0) return;
        pdl_wait();
        const float* vr = v + (i64)r * v_cols;
        const i64 vb = kslot * v_cols;
        for (int i = threadIdx.x; i < v_cols; i += blockDim.x) {
            if (kv_f16) ((u16*)vc)[vb + i] = f32_to_f16(vr[i]);
            else ((float*)vc)[vb + i] = vr[i];
        }
        return;
    }
    if (blockIdx.y == 1) {
        if (!x2) return;
        x = x2;
        y = y2;
        n_head = n_head2;
    }
    // With head norms (norm_rope_qk_kv_write; launched with 256 threads): each head of q (plane
    // 0) and of k (plane 1) first `rms_norm`ed with its weight, as the rms_norm kernel computes a
    // [rows·heads, head_dim] tensor with 256 threads (the same sums, the same bits); plane 0's
    // values then times q_scale (1 without one: exact), as the `scale` kernel.
    const float* hn = blockIdx.y == 0 ? hnq : hnk;
    const float osc = blockIdx.y == 0 ? q_scale : 1.0f;
    if (hn && (n_head > ROPE_MAX_HEADS || blockDim.x != 256)) return;  // not the ABI's launch
    const i64 kb = (blockIdx.y == 1 && kslot >= 0) ? kslot * (i64)n_head2 * head_dim : -1;
    // y[e] = val, and for the keys with a cache the cache's copy of it.
    auto put = [&](float* yr, i64 e, float val) {
        yr[e] = val;
        if (kb >= 0) {
            if (kv_f16) ((u16*)kc)[kb + e] = f32_to_f16(val);
            else ((float*)kc)[kb + e] = val;
        }
    };
    const i64 cols = (i64)n_head * head_dim;
    const float* xr = x + (i64)r * cols;
    float* yr = y + (i64)r * cols;
    int half = n_rot / 2;
    if (2 * half > head_dim) half = head_dim / 2;  // guard: never rotate past the head
    // The angles once per row (in shared memory), before the wait: they need pos alone, so they
    // are computed while the kernel before this one finishes.
    __shared__ double rs_s[ROPE_MAX_HALF], rs_c[ROPE_MAX_HALF];
    if (half > ROPE_MAX_HALF) {  // the host refuses such heads; copy the rest all the same
        pdl_wait();
        for (i64 e = threadIdx.x; e < cols; e += blockDim.x) {
            if (e % head_dim >= 2 * half) put(yr, e, xr[e]);
        }
        return;
    }
    // With rtab (the step's rope_table at n_rot: n_rot / 2 pairs a row, the same values) they
    // are read after the wait instead; a barrier comes before their first use either way.
    if (!rtab) {
        for (int i = threadIdx.x; i < half; i += blockDim.x) {
            rope_angle(i, pos[r], n_rot, freq_base, freq_scale, yarn_ramp, ext_factor, corr0, corr1, mscale,
                       freq_factors, &rs_s[i], &rs_c[i]);
        }
    }
    pdl_wait();  // x is the previous kernel's output; the caches and y may still be read by it
    if (rtab) {
        const double* t = rtab + 2 * (i64)r * (n_rot / 2);
        for (int i = threadIdx.x; i < half; i += blockDim.x) {
            rs_s[i] = t[2 * i];
            rs_c[i] = t[2 * i + 1];
        }
    }
    __shared__ double hn_sc[ROPE_MAX_HEADS];
    __shared__ double hn_part[ROPE_MAX_HEADS][8];  // each head's 8 warps' partial sums
    if (hn) {  // uniform
        // Every head's sum as block_sum_d gives it (each thread's strided partial, the warp's
        // xor tree, then warp h % 8 replays block_sum_d's second stage over the 8 partials:
        // the same additions in the same order, so the rms_norm kernel's bits), all heads at
        // once: one barrier for the row, where a block_sum_d a head put 3 barriers and a
        // serial reciprocal square root on the chain once per head.
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        for (int h0 = 0; h0 < n_head; h0 += 4) {
            double s[4] = {0.0, 0.0, 0.0, 0.0};
            for (int i = threadIdx.x; i < head_dim; i += blockDim.x) {
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    if (h0 + u < n_head) {
                        const double v = xr[(i64)(h0 + u) * head_dim + i];
                        s[u] = __dadd_rn(s[u], __dmul_rn(v, v));
                    }
                }
            }
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                const double t = warp_sum_d(s[u]);
                if (lane == 0 && h0 + u < n_head) hn_part[h0 + u][warp] = t;
            }
        }
        __syncthreads();
        for (int h = warp; h < n_head; h += 8) {  // 256 threads: 8 warps
            const double t = warp_sum_d(lane < 8 ? hn_part[h][lane] : 0.0);
            if (lane == 0) hn_sc[h] = 1.0 / sqrt(t / (double)head_dim + (double)hn_eps);
        }
        __syncthreads();
    }
    // Element e's input: x, or its head's normalized value times the norm's weight.
    auto xin = [&](i64 e) -> float {
        if (!hn) return xr[e];
        // rms_value's product, spelled out: through the helper NVRTC schedules this kernel otherwise.
        const float v = (float)__dmul_rn((double)xr[e], hn_sc[e / head_dim]);
        return __fmul_rn(v, hn[e % head_dim]);
    };
    // Elements outside the rotated pairs are copied; the pairs are written below (disjoint).
    for (i64 e = threadIdx.x; e < cols; e += blockDim.x) {
        if (e % head_dim >= 2 * half) put(yr, e, __fmul_rn(xin(e), osc));
    }
    __syncthreads();
    // Every (head, pair) in parallel: the loads of a row's pairs are all in flight together.
    const int np = n_head * half, bd = blockDim.x;
    for (int q0 = threadIdx.x; q0 < np; q0 += 4 * bd) {
        float x0[4], x1[4];
        i64 ia[4], ib[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const int q = q0 + u * bd;
            if (q < np) {
                const int h = q / half, i = q % half;
                const i64 base = (i64)h * head_dim;
                ia[u] = neox ? base + i : base + 2 * i;
                ib[u] = neox ? ia[u] + half : ia[u] + 1;
                x0[u] = xin(ia[u]);
                x1[u] = xin(ib[u]);
            }
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const int q = q0 + u * bd;
            if (q < np) {
                const int i = q % half;
                float ra, rb;
                rope_pair(x0[u], x1[u], rs_s[i], rs_c[i], &ra, &rb);
                put(yr, ia[u], __fmul_rn(ra, osc));
                put(yr, ib[u], __fmul_rn(rb, osc));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// KV cache: layout [layer][seq][slot][cols], f32 or IEEE half (round to nearest even).
// ---------------------------------------------------------------------------------------------

extern "C" __global__ void kv_write(const float* k, const float* v, void* kc, void* vc, const unsigned* pos,
                                    const unsigned* seq, int rows, int il, int n_seq, int n_ctx, int k_cols,
                                    int v_cols, int f16) {
    const int r = blockIdx.x;
    if (r >= rows) return;
    const u32 s = seq[r], p = pos[r];
    if (s >= (u32)n_seq || p >= (u32)n_ctx) return;  // out-of-range rows are not stored
    const i64 slot = ((i64)il * n_seq + s) * n_ctx + p;
    const float* kr = k + (i64)r * k_cols;
    const float* vr = v + (i64)r * v_cols;
    const i64 kb = slot * k_cols, vb = slot * v_cols;
    for (int i = threadIdx.x; i < k_cols; i += blockDim.x) {
        if (f16) ((u16*)kc)[kb + i] = f32_to_f16(kr[i]);
        else ((float*)kc)[kb + i] = kr[i];
    }
    for (int i = threadIdx.x; i < v_cols; i += blockDim.x) {
        if (f16) ((u16*)vc)[vb + i] = f32_to_f16(vr[i]);
        else ((float*)vc)[vb + i] = vr[i];
    }
}

// ---------------------------------------------------------------------------------------------
// Attention (grid (rows, n_head), block 128, dynamic shared (max pos + 1) floats).
// Scores: q·k in f32 in cpu.rs `dot`'s exact order (8 accumulators, then the tail, then a fixed
// tree), kept raw in shared memory; score = dot·scale (then softcap) in f64 is recomputed from it
// wherever needed, so every use sees the same f64 value. Softmax and Σ w·v are in f64.
// ---------------------------------------------------------------------------------------------

#define ATT_WARPS 8   // the most warps per block (the launch uses blockDim ≤ 32 · ATT_WARPS)
// Two blocks an SM: 128 registers a thread.
#define ATT_BOUNDS __launch_bounds__(32 * ATT_WARPS, 2)
// ORCD_NVRTC_DEFINES=ATT_AHEAD (off until a card times it; X_SERIAL wins over it): the one-row
// attention's query loads go out with pos's and seq's, and its keys' and values' staging is one
// loop (att_stage_kv) — the same bytes. Its `attention` / `attention_h` are bounded to two
// blocks an SM: a batched decode's blocks (256 threads, up to 64 KiB of staging each) keep two
// an SM, where the loads ahead would otherwise take 147 registers.
#if defined(ATT_AHEAD) && !defined(X_SERIAL)
#define ATT_LOADS_AHEAD
#define ATT_ROW_BOUNDS ATT_BOUNDS
#else
#define ATT_ROW_BOUNDS
#endif
#define ATT_DIMS 4    // output dims per lane per pass (d = d0 + lane + 32u)
#define ATT_QMAX 512  // the widest query head
#define ATT_EC 4      // keys a thread of `attention` keeps its exponential for (j = tid + u·256)

__device__ __forceinline__ unsigned dynamic_smem_bytes() {
#ifdef ORCD_EMU
    return (unsigned)g_emu->dyn.size();
#else
    unsigned s;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(s));
    return s;
#endif
}

// cpu.rs `dot`'s last step: the 8 accumulators in a fixed tree, then the tail's sum.
__device__ __forceinline__ float dot8_total(const float* acc, float tail) {
    const float t = __fadd_rn(__fadd_rn(__fadd_rn(acc[0], acc[4]), __fadd_rn(acc[1], acc[5])),
                              __fadd_rn(__fadd_rn(acc[2], acc[6]), __fadd_rn(acc[3], acc[7])));
    return __fadd_rn(t, tail);
}


// cpu.rs `dot`: acc[l] += a[8c + l] * b[8c + l] (two roundings), tail sum, fixed combination.
__device__ __forceinline__ float dot_cpu_order(const float* a, const void* kc, i64 kofs, int n, int f16) {
    float acc[8];
#pragma unroll
    for (int l = 0; l < 8; ++l) acc[l] = 0.0f;
    const int chunks = n / 8;
    if (((kofs & 7) == 0) && ((reinterpret_cast<u64>(kc) & 15) == 0)) {
        // A key row starting on 8 elements: a chunk is one 16-byte load (F16) or two (f32), all
        // of a 64-wide head's in flight together (a decode row's keys are latency-bound). The
        // same products in the same order as the element loop below. Not unrolled: attention's
        // code is fetched cold at each launch, an unrolled copy once per use (seventeenth block).
#pragma unroll 1
        for (int c = 0; c < chunks; ++c) {
            float kf[8];
            if (f16) {
                const uint4 w = ((const uint4*)((const u16*)kc + kofs))[c];
                const u32 ws[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
                for (int l = 0; l < 8; ++l) kf[l] = f16_to_f32((u16)(ws[l >> 1] >> (16 * (l & 1))));
            } else {
                const float4 u = ((const float4*)((const float*)kc + kofs))[2 * c];
                const float4 v = ((const float4*)((const float*)kc + kofs))[2 * c + 1];
                kf[0] = u.x; kf[1] = u.y; kf[2] = u.z; kf[3] = u.w; kf[4] = v.x; kf[5] = v.y; kf[6] = v.z; kf[7] = v.w;
            }
#pragma unroll
            for (int l = 0; l < 8; ++l) acc[l] = __fadd_rn(acc[l], __fmul_rn(a[8 * c + l], kf[l]));
        }
    } else {
        // Unrolled so several chunks' loads are in flight.
#pragma unroll 1
        for (int c = 0; c < chunks; ++c) {
#pragma unroll
            for (int l = 0; l < 8; ++l) {
                acc[l] = __fadd_rn(acc[l], __fmul_rn(a[8 * c + l], kv_load(kc, kofs + 8 * c + l, f16)));
            }
        }
    }
    float s = 0.0f;
    for (int i = chunks * 8; i < n; ++i) s = __fadd_rn(s, __fmul_rn(a[i], kv_load(kc, kofs + i, f16)));
    return dot8_total(acc, s);
}

// Rows `row0 + r·stride` (elements) for r < n, `w` elements each of `es` bytes, from a cache into
// contiguous rows of dst (shared memory): 16-byte copies where the rows allow, all in flight at
// once; the bytes unchanged (a staged row is read as the cache row would be).
__device__ __forceinline__ void att_stage_raw(u8* dst, const void* src, i64 row0, i64 stride, int w, int n, int es) {
    const int tid = threadIdx.x, bd = blockDim.x, rb = w * es;
    const bool vec = rb % 16 == 0 && (row0 * es) % 16 == 0 && (stride * es) % 16 == 0 &&
                     (reinterpret_cast<u64>(src) & 15) == 0 && (reinterpret_cast<u64>(dst) & 15) == 0;
    if (vec) {
        const int per = rb / 16, cnt = n * per;
#ifndef X_SERIAL
        // Eight trips' 16-byte loads go out before their stores (the same bytes) — the rolled
        // loop below (ORCD_NVRTC_DEFINES=X_SERIAL, the A/B) stores each before the next load
        // issues, one cache round trip a trip (a 132-key F16 row of 64: eight for the keys, eight
        // for the values).
        constexpr int AH = 8;
#pragma unroll 1
        for (int e0 = tid; e0 < cnt; e0 += AH * bd) {
            uint4 v[AH];
#pragma unroll
            for (int j = 0; j < AH; ++j) {
                const int e = e0 + j * bd, r = e / per, ch = e - r * per;
                if (e < cnt) v[j] = ((const uint4*)((const u8*)src + (row0 + (i64)r * stride) * es))[ch];
            }
#pragma unroll
            for (int j = 0; j < AH; ++j) {
                const int e = e0 + j * bd, r = e / per, ch = e - r * per;
                if (e < cnt) ((uint4*)(dst + (i64)r * rb))[ch] = v[j];
            }
        }
#else
#pragma unroll 1
        for (int e = tid; e < cnt; e += bd) {
            const int r = e / per, ch = e - r * per;
            ((uint4*)(dst + (i64)r * rb))[ch] = ((const uint4*)((const u8*)src + (row0 + (i64)r * stride) * es))[ch];
        }
#endif
    } else if (es == 2) {
        for (int e = tid; e < n * w; e += bd) {
            const int r = e / w, d = e - r * w;
            ((u16*)dst)[(i64)r * w + d] = ((const u16*)src)[row0 + (i64)r * stride + d];
        }
    } else {
        for (int e = tid; e < n * w; e += bd) {
            const int r = e / w, d = e - r * w;
            ((float*)dst)[(i64)r * w + d] = ((const float*)src)[row0 + (i64)r * stride + d];
        }
    }
}

#ifdef ATT_LOADS_AHEAD
// att_stage_raw of a row's keys (k*) and values (v*), n cache rows each. Both copies go in one loop
// (ATT_AHEAD): up to 8 of a thread's 16-byte key loads and 8 value loads in flight before
// their stores — up to 2,048 chunks each (256 F16 keys of a 64-wide head) one cache round trip,
// where two att_stage_raw calls are one round trip each. A thread's chunks sit a whole number of
// rows apart (a row of 2^s chunks, 2^s dividing the block), so their addresses are a stride, not
// a division each (code fetched cold at each launch: seventeenth block). Other rows keep the two
// calls, as the default does. The same bytes either way.
__device__ __forceinline__ void att_stage_kv(u8* kdst, const void* ksrc, i64 krow0, i64 kstride, int kw, u8* vdst,
                                             const void* vsrc, i64 vrow0, i64 vstride, int vw, int n, int es) {
    const int tid = threadIdx.x, bd = blockDim.x, kb = kw * es, vb = vw * es;
    int ksh = 0, vsh = 0;  // log2 of a row's chunks
    while ((16 << ksh) < kb) ++ksh;
    while ((16 << vsh) < vb) ++vsh;
    auto al = [](const void* a) { return (reinterpret_cast<u64>(a) & 15) == 0; };
    if ((16 << ksh) == kb && (16 << vsh) == vb && bd % (1 << ksh) == 0 && bd % (1 << vsh) == 0 &&
        (krow0 * es) % 16 == 0 && (kstride * es) % 16 == 0 && (vrow0 * es) % 16 == 0 && (vstride * es) % 16 == 0 &&
        al(ksrc) && al(vsrc) && al(kdst) && al(vdst)) {
        const int kcnt = n << ksh, vcnt = n << vsh;
        // Chunk e = t0 + tid + j·bd: row e >> sh, chunk tid's low bits (bd a multiple of the row's
        // chunks); shared memory holds the rows contiguously, so its place is e itself.
        const i64 kjs = (i64)(bd >> ksh) * kstride * es / 16, vjs = (i64)(bd >> vsh) * vstride * es / 16;
        const uint4* const kf = (const uint4*)((const u8*)ksrc + krow0 * es) + (tid & ((1 << ksh) - 1));
        const uint4* const vf = (const uint4*)((const u8*)vsrc + vrow0 * es) + (tid & ((1 << vsh) - 1));
        constexpr int AH = 8;
#pragma unroll 1
        for (int t0 = 0; t0 < kcnt || t0 < vcnt; t0 += AH * bd) {
            uint4 a[AH], b[AH];
            const uint4* const kt = kf + ((t0 + tid) >> ksh) * (kstride * es / 16);
            const uint4* const vt = vf + ((t0 + tid) >> vsh) * (vstride * es / 16);
#pragma unroll
            for (int j = 0; j < AH; ++j) {
                if (t0 + tid + j * bd < kcnt) a[j] = kt[j * kjs];
                if (t0 + tid + j * bd < vcnt) b[j] = vt[j * vjs];
            }
#pragma unroll
            for (int j = 0; j < AH; ++j) {
                const int e = t0 + tid + j * bd;
                if (e < kcnt) ((uint4*)kdst)[e] = a[j];
                if (e < vcnt) ((uint4*)vdst)[e] = b[j];
            }
        }
        return;
    }
    att_stage_raw(kdst, ksrc, krow0, kstride, kw, n, es);
    att_stage_raw(vdst, vsrc, vrow0, vstride, vw, n, es);
}
#endif

// The softcap's tanh out of line: ~1,000 instructions no uncapped model runs, kept out of the
// passes' code.
__device__ __noinline__ double att_cap(double s, double cap) { return __dmul_rn(cap, tanh(__ddiv_rn(s, cap))); }
__device__ __forceinline__ double att_score(float dot, double scale, double cap) {
    double s = __dmul_rn((double)dot, scale);
    if (cap > 0.0) s = att_cap(s, cap);
    return s;
}

// ATT_ANAT_* (ORCD_NVRTC_DEFINES, diagnostics for timing only: the values are WRONG): leave one
// stage of the one-row attention out, so a kernel's time difference is that stage's cost —
// NO_DOTS pass 1's q·k products, NO_EXP the f64 exponentials (a subtraction instead), NO_P3 pass
// 3's Σ w·v.
#ifdef ATT_ANAT_NO_EXP
#define ATT_EXP(v) (1.0 + (v))
#else
#define ATT_EXP(v) exp(v)
#endif
#ifdef ATT_ANAT_NO_P3
#define ATT_P3_KEYS 0
#else
#define ATT_P3_KEYS nk
#endif
// One (row, head) of `attention`; F ≥ 0 fixes the cache type at compile time (1: F16), F < 0
// reads it from f16_arg.
template <int F>
__device__ __forceinline__ void attention_row(const float* q, const void* kc, const void* vc, const unsigned* pos,
                                              const unsigned* seq, const float* sinks, float* out, int rows, int il,
                                              int n_seq, int n_ctx, int n_head, int n_head_kv, int head_dim,
                                              int v_head_dim, float scale, int window, float softcap, int f16_arg,
                                              float* dots, double* red, double (*part)[32 * ATT_DIMS], float* qsh) {
    const int f16 = F < 0 ? f16_arg : F;
    // ATT1_PROF (ORCD_NVRTC_DEFINES=ATT1_PROF, diagnostics): thread 0's clock at each phase of
    // row 0, head 0 of layer 0 printed (`att1prof …`; ci/gpu-quick.sh PROF=1 sums them up).
#ifdef ATT1_PROF
    long long a1_t[7];
#define A1_T(k) a1_t[k] = clock64()
#else
#define A1_T(k)
#endif
    A1_T(0);
    pdl_wait();  // launched with PDL: q and the cache are the kernels' before this one
    A1_T(1);
    const int r = blockIdx.x, h = blockIdx.y;
    if (r >= rows || h >= n_head || v_head_dim <= 0) return;
    const int tid = threadIdx.x, bd = blockDim.x;
    float* o = out + ((i64)r * n_head + h) * v_head_dim;
#ifdef ATT_LOADS_AHEAD
    const float* qg = q + ((i64)r * n_head + h) * head_dim;
    // The query's first two elements a thread go out with pos's and seq's loads (their address
    // needs neither) and stay in flight through the staging's; the default loads the query after
    // the staging, a round trip of its own.
    float qv[2];
#pragma unroll
    for (int u = 0; u < 2; ++u) {
        const int d = tid + u * bd;
        qv[u] = d < head_dim ? qg[d] : 0.0f;
    }
#endif
    const u32 p = pos[r], sq = seq[r];
    const int group = n_head_kv > 0 ? n_head / n_head_kv : 0;
    // A row the cache or the shared allocation cannot hold gives NaN (visible, never a stray
    // read); the condition is uniform over the block, so the early return is safe.
    if (group <= 0 || h / group >= n_head_kv || sq >= (u32)n_seq || p >= (u32)n_ctx || bd > 32 * ATT_WARPS ||
        (bd & 31) != 0 ||
        head_dim > ATT_QMAX || ((u64)p + 1) * 4 > (u64)dynamic_smem_bytes()) {
        for (int d = tid; d < v_head_dim; d += bd) o[d] = F32_NAN;
        return;
    }
    const int kh = h / group;
    const int nk = (int)p + 1;
    const i64 slot0 = ((i64)il * n_seq + sq) * n_ctx;  // slot 0 of this layer and sequence
    const i64 k_cols = (i64)n_head_kv * head_dim, v_cols = (i64)n_head_kv * v_head_dim;
#ifndef ATT_LOADS_AHEAD
    // An F16 cache is the fast numerics: llama.cpp rounds q to F16 (the K cache's vec_dot_type).
    const float* qg = q + ((i64)r * n_head + h) * head_dim;
#endif
    // Staging (the host's ORCD_CUDA_ATT_STAGE: dynamic shared memory past the context's scores):
    // the first `ns` keys' and values' cache rows copied at once, beside the query's load, so
    // passes 1 and 3 read them from shared memory instead of a chain of cache round trips
    // (pass 3 took several a warp). The same bytes, the same values.
    const int es = f16 ? 2 : 4;
    const u64 st_off = (((u64)n_ctx * 4 + 15) / 16) * 16, st_row = (u64)(head_dim + v_head_dim) * es;
    const u64 dyn = dynamic_smem_bytes();
    const u64 st_cap = dyn > st_off ? (dyn - st_off) / st_row : 0;
    const int ns = st_cap < (u64)nk ? (int)st_cap : nk;
    u8* const kst = (u8*)dots + st_off;
    u8* const vst = kst + (u64)ns * head_dim * es;
#ifdef ATT_LOADS_AHEAD
    if (ns > 0) {
        att_stage_kv(kst, kc, slot0 * k_cols + (i64)kh * head_dim, k_cols, head_dim, vst, vc,
                     slot0 * v_cols + (i64)kh * v_head_dim, v_cols, v_head_dim, ns, es);
    }
#pragma unroll
    for (int u = 0; u < 2; ++u) {
        const int d = tid + u * bd;
        if (d < head_dim) qsh[d] = f16 ? f16_to_f32(f32_to_f16(qv[u])) : qv[u];
    }
    for (int d = tid + 2 * bd; d < head_dim; d += bd) qsh[d] = f16 ? f16_to_f32(f32_to_f16(qg[d])) : qg[d];
#else
    if (ns > 0) {
        att_stage_raw(kst, kc, slot0 * k_cols + (i64)kh * head_dim, k_cols, head_dim, ns, es);
        att_stage_raw(vst, vc, slot0 * v_cols + (i64)kh * v_head_dim, v_cols, v_head_dim, ns, es);
    }
    for (int d = tid; d < head_dim; d += bd) qsh[d] = f16 ? f16_to_f32(f32_to_f16(qg[d])) : qg[d];
#endif
    __syncthreads();
    A1_T(2);
    const float* qh = qsh;
    const double sc = scale, cap = softcap;
    // Key j is masked when window > 0 and pos - j >= window.
#define VISIBLE(j) (window <= 0 || (int)p - (j) < window)

    // Pass 1: dots and the max score.
    double mx = F64_NEG_INF;
#ifndef ATT_P1SERIAL
    // The default since stop 49 (H100: gemma-3 decode +4.5%, SmolLM2 ±0; every gate metric the
    // same; ORCD_NVRTC_DEFINES=ATT_P1SERIAL is the one-thread-a-key A/B): a key's dot by 8 lanes, lane l
    // keeping cpu.rs `dot`'s accumulator l (elements 8c + l, c in order, two roundings each), then
    // dot8_total's tree by shuffles — xor 4 gives acc_l + acc_{l+4}, xor 1 the two pairs' sums,
    // xor 2 their sum — and its `+ 0` tail (head_dim a multiple of 8: no tail elements). At a
    // short context one warp held every key, each thread a 64-long dot; here 32 keys go at once
    // on 8-long chains. The loop runs whole rounds of 32 keys on every lane (shuffles).
    if (head_dim % 8 == 0 && (bd & 7) == 0) {  // uniform
        const int g = tid >> 3, l = tid & 7, ng = bd >> 3, chunks = head_dim >> 3;
        for (int j0 = 0; j0 < nk; j0 += ng) {
            const int j = j0 + g;
            const bool live = j < nk && VISIBLE(j);
            float a = 0.0f;
            if (live) {
                const bool stg = j < ns;
                const void* const src = stg ? (const void*)kst : kc;
                const i64 off = stg ? (i64)j * head_dim : (slot0 + j) * k_cols + (i64)kh * head_dim;
                for (int c = 0; c < chunks; ++c)
                    a = __fadd_rn(a, __fmul_rn(qh[8 * c + l], kv_load(src, off + 8 * c + l, f16)));
            }
            a = __fadd_rn(a, __shfl_xor_sync(FULL_MASK, a, 4));
            a = __fadd_rn(a, __shfl_xor_sync(FULL_MASK, a, 1));
            a = __fadd_rn(a, __shfl_xor_sync(FULL_MASK, a, 2));
            if (l == 0 && j < nk) {
                const float dt = live ? __fadd_rn(a, 0.0f) : 0.0f;
                if (live) mx = fmax(mx, att_score(dt, sc, cap));  // fmax, like f64::max, ignores NaN
                dots[j] = dt;
            }
        }
    } else
#endif
    for (int j = tid; j < nk; j += bd) {
        float dt = 0.0f;
        if (VISIBLE(j)) {
#ifdef ATT_ANAT_NO_DOTS
            dt = qh[j % head_dim];
#else
            if constexpr (F >= 0) {
                const bool stg = j < ns;  // one inlined dot: the staged row or the cache's
                dt = dot_cpu_order(qh, stg ? (const void*)kst : kc,
                                   stg ? (i64)j * head_dim : (slot0 + j) * k_cols + (i64)kh * head_dim, head_dim, f16);
            } else {
                dt = j < ns ? dot_cpu_order(qh, kst, (i64)j * head_dim, head_dim, f16)
                            : dot_cpu_order(qh, kc, (slot0 + j) * k_cols + (i64)kh * head_dim, head_dim, f16);
            }
#endif
            mx = fmax(mx, att_score(dt, sc, cap));  // fmax, like f64::max, ignores NaN
        }
        dots[j] = dt;
    }
    mx = block_max8_d(mx, red);  // also the barrier after the writes to dots[]
    A1_T(3);
    const double sink = sinks ? (double)sinks[h] : 0.0;
    if (sinks) mx = fmax(mx, sink);

    // Pass 2: the denominator (the sink joins it, not the value sum). Non-finite scores weigh 0.
    // A thread's first ATT_EC keys keep their e = exp(s − mx) in registers for the weights below
    // (0 for a masked or non-finite score: weight 0 either way), so each key's score and f64
    // exponential are computed once; the sum's order is the loop's, j = tid, tid + bd, ….
#ifdef ATT_ROLL2
    // ORCD_NVRTC_DEFINES=ATT_ROLL2 (untimed; the same values): one rolled loop, each of the first
    // 1,024 keys' e kept in shared memory (pass 3's `part`, unused until after the weights: 1,024
    // doubles) instead of ATT_EC unrolled register copies — one exponential's code, not four.
    double* const esh = &part[0][0];
    constexpr int ESH = ATT_WARPS * 32 * ATT_DIMS;
    double sum = 0.0;
#pragma unroll 1
    for (int j = tid; j < nk; j += bd) {
        double e = 0.0;
        if (VISIBLE(j)) {
            const double s = att_score(dots[j], sc, cap);
            if (isfinite(s)) {
                e = ATT_EXP(s - mx);
                sum = __dadd_rn(sum, e);
            }
        }
        if (j < ESH) esh[j] = e;
    }
#else
    double sum = 0.0, ec[ATT_EC];
#pragma unroll
    for (int u = 0; u < ATT_EC; ++u) {
        const int j = tid + u * bd;
        double e = 0.0;
        if (j < nk && VISIBLE(j)) {
            const double s = att_score(dots[j], sc, cap);
            if (isfinite(s)) {
                e = ATT_EXP(s - mx);
                sum = __dadd_rn(sum, e);
            }
        }
        ec[u] = e;
    }
    for (int j = tid + ATT_EC * bd; j < nk; j += bd) {
        if (!VISIBLE(j)) continue;
        const double s = att_score(dots[j], sc, cap);
        if (isfinite(s)) sum = __dadd_rn(sum, ATT_EXP(s - mx));
    }
#endif
    sum = block_sum8_d(sum, red);  // also the barrier before dots[] is rewritten below
    A1_T(4);
    if (sinks) sum = __dadd_rn(exp(sink - mx), sum);

    // The weights e_j / sum replace the dots (each thread rewrites only the entries it read);
    // masked or underflowed keys weigh 0 and are skipped, like the CPU's `sc == 0.0`. An F16
    // cache is the fast numerics: llama.cpp rounds the probabilities to F16 (the V cache's
    // vec_dot_type) before V·p.
#ifdef ATT_ROLL2
#pragma unroll 1
    for (int j = tid; j < nk; j += bd) {
        double e = 0.0;
        if (j < ESH) {
            e = esh[j];
        } else if (VISIBLE(j)) {
            const double s = att_score(dots[j], sc, cap);
            if (isfinite(s)) e = ATT_EXP(s - mx);
        }
        float w = e != 0.0 ? (float)__ddiv_rn(e, sum) : 0.0f;
        if (f16) w = f16_to_f32(f32_to_f16(w));
        dots[j] = w;
    }
#else
#pragma unroll
    for (int u = 0; u < ATT_EC; ++u) {
        const int j = tid + u * bd;
        if (j < nk) {
            float w = ec[u] != 0.0 ? (float)__ddiv_rn(ec[u], sum) : 0.0f;
            if (f16) w = f16_to_f32(f32_to_f16(w));
            dots[j] = w;
        }
    }
    for (int j = tid + ATT_EC * bd; j < nk; j += bd) {
        float w = 0.0f;
        if (VISIBLE(j)) {
            const double s = att_score(dots[j], sc, cap);
            if (isfinite(s)) {
                const double e = ATT_EXP(s - mx);
                if (e != 0.0) w = (float)__ddiv_rn(e, sum);
                if (f16) w = f16_to_f32(f32_to_f16(w));
            }
        }
        dots[j] = w;
    }
#endif
    __syncthreads();
    A1_T(5);

    // Pass 3: out[d] = Σ_j w_j · v[j][d] in f64. Warp `wp` takes keys j = wp, wp + nw, ... (so
    // the chain of dependent loads per thread is nk / nw long, not nk), lane takes dims
    // d = d0 + lane + 32u; the warps' partial sums are then added in warp order (fixed: the
    // result does not depend on timing).
    const int lane = tid & 31, wp = tid >> 5, nw = bd >> 5;
    for (int d0 = 0; d0 < v_head_dim; d0 += 32 * ATT_DIMS) {
        double acc[ATT_DIMS];
#pragma unroll
        for (int u = 0; u < ATT_DIMS; ++u) acc[u] = 0.0;
        // Every key's values are loaded (all j < nk lie in the cache), so the loads of several
        // keys are in flight together; keys of weight 0 (masked, underflowed) are not added, as
        // the CPU skips them (0 · inf would be NaN).
#pragma unroll 2  // two keys' loads in flight; more is code fetched cold
        for (int j = wp; j < ATT_P3_KEYS; j += nw) {
            const float w = dots[j];
            const bool stg = j < ns;
            const void* const vsrc = stg ? (const void*)vst : vc;
            const i64 vrow = stg ? (i64)j * v_head_dim : (slot0 + j) * v_cols + (i64)kh * v_head_dim;
            float vv[ATT_DIMS];
#pragma unroll
            for (int u = 0; u < ATT_DIMS; ++u) {
                const int d = d0 + lane + 32 * u;
                vv[u] = d < v_head_dim ? kv_load(vsrc, vrow + d, f16) : 0.0f;
            }
            if (w != 0.0f) {  // uniform over the warp
#pragma unroll
                for (int u = 0; u < ATT_DIMS; ++u) {
                    if (d0 + lane + 32 * u < v_head_dim) acc[u] = __dadd_rn(acc[u], __dmul_rn((double)w, (double)vv[u]));
                }
            }
        }
#pragma unroll
        for (int u = 0; u < ATT_DIMS; ++u) part[wp][lane + 32 * u] = acc[u];
        __syncthreads();
        for (int i = tid; i < 32 * ATT_DIMS; i += bd) {
            const int d = d0 + i;
            if (d < v_head_dim) {
                double t = 0.0;
                for (int w2 = 0; w2 < nw; ++w2) t = __dadd_rn(t, part[w2][i]);
                o[d] = (float)t;
            }
        }
        __syncthreads();  // part[] is rewritten by the next pass over the dims
    }
    A1_T(6);
#ifdef ATT1_PROF
    if (tid == 0 && il == 0 && h == 0 && r == 0)
        printf("att1prof nk %d staged %d wait %lld q %lld p1 %lld p2 %lld w %lld p3 %lld\n", nk, ns, a1_t[1] - a1_t[0],
               a1_t[2] - a1_t[1], a1_t[3] - a1_t[2], a1_t[4] - a1_t[3], a1_t[5] - a1_t[4], a1_t[6] - a1_t[5]);
#endif
#undef A1_T
#undef VISIBLE
}

// attention and attention_h share their launch, shared memory and the row's code.
#ifdef ORCD_EMU
#define ATT_DOTS float* dots = (float*)g_emu->dyn.data();
#else
#define ATT_DOTS extern __shared__ float dots[];  // raw q·k of key j (0 for masked keys)
#endif
#define ATT_KERNEL_SHARED                                                                          \
    ATT_DOTS                                                                                       \
    __shared__ double red[32];                        /* block reductions */                      \
    __shared__ double part[ATT_WARPS][32 * ATT_DIMS]; /* per-warp partial value sums */           \
    __shared__ float qsh[ATT_QMAX];                   /* the row's query (F16-rounded for F16) */ \
    pdl_trigger();
#define ATT_ROW_ARGS(F16V)                                                                                          \
    q, kc, vc, pos, seq, sinks, out, rows, il, n_seq, n_ctx, n_head, n_head_kv, head_dim, v_head_dim, scale, window, \
        softcap, F16V, dots, red, part, qsh
#define ATT_PARAMS                                                                                             \
    const float *q, const void *kc, const void *vc, const unsigned *pos, const unsigned *seq, const float *sinks, \
        float *out, int rows, int il, int n_seq, int n_ctx, int n_head, int n_head_kv, int head_dim,             \
        int v_head_dim, float scale, int window, float softcap, int f16, i8 *qc, float *qcd, float *qcs
// With qc (a batched decode's rows, the fast numerics): the block's head of the output also as
// quant_x_q8's codes, scales and Q8_1 sums (the o projection's activation rounded once where it
// is produced; defined with the mat-vec's rounding below).
__device__ void att_head_codes(const float* out, int rows, int n_head, int vd, i8* qc, float* qd, float* qs);

extern "C" __global__ void ATT_ROW_BOUNDS attention(ATT_PARAMS) {
    ATT_KERNEL_SHARED
#ifdef ATT_PREFETCH
    // ORCD_NVRTC_DEFINES=ATT_PREFETCH (a hint, no value depends on it; not yet timed): the row's
    // earlier keys and values into L2 first. A decode step's weights stream through L2 and evict
    // the cache rows earlier steps wrote, so pass 1's key loads and pass 3's value loads would
    // be DRAM round trips behind the reductions; prefetched here, before the PDL wait (pos and
    // seq are uploads, before every kernel of the step), they overlap the kernel before this
    // one (with PDL on attention) and passes 1–2. The group's first head prefetches for all of
    // its heads; the newest slot is the previous kernel's write, in L2 already.
    if (blockIdx.x < (unsigned)rows && n_head_kv > 0 && n_head >= n_head_kv && (int)blockIdx.y < n_head &&
        (int)blockIdx.y % (n_head / n_head_kv) == 0) {
        const u32 p = pos[blockIdx.x], sq = seq[blockIdx.x];
        if (sq < (u32)n_seq && p < (u32)n_ctx) {
            const int kh = (int)blockIdx.y / (n_head / n_head_kv), es = f16 ? 2 : 4;
            const i64 slot0 = ((i64)il * n_seq + sq) * n_ctx;
            const int j0 = window > 0 && (int)p >= window ? (int)p - window + 1 : 0;
            for (int j = j0 + (int)threadIdx.x; j < (int)p; j += (int)blockDim.x) {
                prefetch_l2((const u8*)kc + ((slot0 + j) * n_head_kv + kh) * (i64)head_dim * es, (i64)head_dim * es);
                prefetch_l2((const u8*)vc + ((slot0 + j) * n_head_kv + kh) * (i64)v_head_dim * es, (i64)v_head_dim * es);
            }
        }
    }
#endif
    // An F16 cache (the fast numerics) runs the row compiled for it: no F16/f32 branches on its
    // path and a key's dot one inlined body, staged or not — less code fetched cold at each
    // launch (seventeenth block: fast +3.5%; compiled for f32 as well, exact measured −2.8%, so
    // an f32 cache keeps the generic row). ORCD_NVRTC_DEFINES=ATT_GENERIC: the generic row for
    // both (the A/B).
#ifndef ATT_GENERIC
    if (f16)
        attention_row<1>(ATT_ROW_ARGS(1));
    else
#endif
        attention_row<-1>(ATT_ROW_ARGS(f16));
    if (qc) att_head_codes(out, rows, n_head, v_head_dim, qc, qcd, qcs);
}

// attention_h (the host's ORCD_CUDA_ATT_H=1, being timed): `attention` for an F16 cache alone —
// the row compiled for F16 in a kernel of its own, so neither cache type's launch carries the
// other's code (with ATT_GENERIC, `attention` is then the generic row alone). f16 must be 1.
extern "C" __global__ void ATT_ROW_BOUNDS attention_h(ATT_PARAMS) {
    ATT_KERNEL_SHARED
    attention_row<1>(ATT_ROW_ARGS(1));
    if (qc) att_head_codes(out, rows, n_head, v_head_dim, qc, qcd, qcs);
}

// ---------------------------------------------------------------------------------------------
// Attention split over the keys (the host's ORCD_CUDA_ATT_SPLIT=S with the fast numerics' F16
// cache; off until a card has timed it). Not `attention`'s bits: f32 scores and exponentials in
// another order, for the tolerance column only, and then for every row (prefill rows too), so a
// row's value never depends on its batch. attention_split: grid (rows, n_head, S), block 128,
// dynamic shared ceil(n_ctx / S)·4 bytes (at least the split's keys); split s takes keys
// [s·c, min(pos + 1, (s + 1)·c)) with c = ceil((pos + 1) / S): q rounded to F16, scores
// dot_cpu_order(q, k)·scale (softcap·tanh(score/softcap) with a softcap), the split's max m,
// l = Σ exp(score − m), o = Σ exp(score − m)·v (keys j ≡ w mod 4 for warp w, the warps' sums
// added (0 + 1) + (2 + 3)), written as part[((r·n_head + h)·S + s)·(v_head_dim + 2) + {0, 1, 2 + d}] = m, l, o[d]
// (l = 0: no visible key). attention_combine: grid (rows, n_head), block 128: M = the largest m
// of the splits with l > 0 (and the sink), L = Σ l·exp(m − M) (+ exp(sink − M)), out = Σ
// o·exp(m − M) / L, the splits in order. A row the cache cannot hold gives NaN.
// ---------------------------------------------------------------------------------------------

#define ATS_THREADS 128

extern "C" __global__ void attention_split(const float* q, const void* kc, const void* vc, const unsigned* pos,
                                           const unsigned* seq, float* part, int rows, int il, int n_seq, int n_ctx,
                                           int n_head, int n_head_kv, int head_dim, int v_head_dim, float scale,
                                           int window, float softcap, int n_split) {
#ifdef ORCD_EMU
    float* es = (float*)g_emu->dyn.data();
#else
    extern __shared__ float es[];  // the split's scores, then their exponentials
#endif
    __shared__ float qsh[ATT_QMAX];
    __shared__ float ats_red[ATS_THREADS / 32];
    __shared__ float ats_o[ATS_THREADS / 32][ATT_QMAX];
    pdl_trigger();
    pdl_wait();
    const int r = blockIdx.x, h = blockIdx.y, sp = blockIdx.z, tid = threadIdx.x;
    const int lane = tid & 31, wp = tid >> 5;
    if (r >= rows || h >= n_head || sp >= n_split || v_head_dim <= 0 || v_head_dim > ATT_QMAX) return;
    float* pr = part + (((i64)r * n_head + h) * n_split + sp) * (v_head_dim + 2);
    const u32 p = pos[r], sq = seq[r];
    const int group = n_head_kv > 0 ? n_head / n_head_kv : 0;
    const int nk = (int)p + 1, c = (nk + n_split - 1) / n_split;
    // Uniform over the block: a row the cache cannot hold, or not the ABI's launch, gives NaN.
    if (group <= 0 || h / group >= n_head_kv || sq >= (u32)n_seq || p >= (u32)n_ctx || head_dim > ATT_QMAX ||
        blockDim.x != ATS_THREADS || (u64)c * 4 > (u64)dynamic_smem_bytes()) {
        for (int d = tid; d < v_head_dim + 2; d += ATS_THREADS) pr[d] = F32_NAN;
        return;
    }
    const int kh = h / group, j0 = sp * c, j1 = nk < j0 + c ? nk : j0 + c;
    const i64 slot0 = ((i64)il * n_seq + sq) * n_ctx;
    const i64 k_cols = (i64)n_head_kv * head_dim, v_cols = (i64)n_head_kv * v_head_dim;
    const float* qg = q + ((i64)r * n_head + h) * head_dim;
    for (int d = tid; d < head_dim; d += ATS_THREADS) qsh[d] = f16_to_f32(f32_to_f16(qg[d]));
    __syncthreads();
    float mx = F32_NEG_INF;
    for (int j = j0 + tid; j < j1; j += ATS_THREADS) {
        float sc = F32_NEG_INF;
        if (window <= 0 || (int)p - j < window) {
            sc = __fmul_rn(dot_cpu_order(qsh, kc, (slot0 + j) * k_cols + (i64)kh * head_dim, head_dim, 1), scale);
            if (softcap > 0.0f) sc = __fmul_rn(softcap, tanhf(__fdiv_rn(sc, softcap)));
            if (isnan(sc) || sc == F32_POS_INF) sc = F32_NEG_INF;  // weighs 0, as attention's non-finite scores
        }
        es[j - j0] = sc;
        mx = fmaxf(mx, sc);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(FULL_MASK, mx, o));
    if (lane == 0) ats_red[wp] = mx;
    __syncthreads();
    mx = fmaxf(fmaxf(ats_red[0], ats_red[1]), fmaxf(ats_red[2], ats_red[3]));
    __syncthreads();  // ats_red is reused for the sum
    float l = 0.0f;
    for (int j = j0 + tid; j < j1; j += ATS_THREADS) {
        const float sc = es[j - j0];
        const float e = sc == F32_NEG_INF ? 0.0f : expf(__fadd_rn(sc, -mx));
        es[j - j0] = e;
        l = __fadd_rn(l, e);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) l = __fadd_rn(l, __shfl_xor_sync(FULL_MASK, l, o));
    if (lane == 0) ats_red[wp] = l;
    __syncthreads();  // also: every exponential is in es[]
    l = __fadd_rn(__fadd_rn(ats_red[0], ats_red[1]), __fadd_rn(ats_red[2], ats_red[3]));
    // Σ e·v: warp w takes keys j0 + w, j0 + w + 4, …; lane l dims d0 + 2l and d0 + 2l + 1 (one
    // 4-byte load of two halves where aligned: a warp reads a 64-wide row's 128 bytes at once).
    for (int d0 = 0; d0 < v_head_dim; d0 += 64) {
        const int d = d0 + 2 * lane;
        if (d < v_head_dim) {  // no shuffles below: lanes may differ
            const bool two = d + 1 < v_head_dim;
            float a0 = 0.0f, a1 = 0.0f;
#pragma unroll 8
            for (int j = j0 + wp; j < j1; j += ATS_THREADS / 32) {
                const i64 vi = (slot0 + j) * v_cols + (i64)kh * v_head_dim + d;
                float v0, v1 = 0.0f;
                if (two && (vi & 1) == 0) {
                    const u32 u = ((const u32*)vc)[vi >> 1];
                    v0 = f16_to_f32((u16)(u & 0xffffu));
                    v1 = f16_to_f32((u16)(u >> 16));
                } else {
                    v0 = kv_load(vc, vi, 1);
                    if (two) v1 = kv_load(vc, vi + 1, 1);
                }
                const float e = es[j - j0];
                if (e != 0.0f) {  // a weight of 0 never meets an inf value
                    a0 = fmaf(e, v0, a0);
                    a1 = fmaf(e, v1, a1);
                }
            }
            ats_o[wp][d] = a0;
            if (two) ats_o[wp][d + 1] = a1;
        }
    }
    __syncthreads();
    if (tid == 0) {
        pr[0] = mx;
        pr[1] = l;
    }
    for (int d = tid; d < v_head_dim; d += ATS_THREADS)
        pr[2 + d] = __fadd_rn(__fadd_rn(ats_o[0][d], ats_o[1][d]), __fadd_rn(ats_o[2][d], ats_o[3][d]));
}

extern "C" __global__ void attention_combine(const float* part, const float* sinks, float* out, int rows,
                                             int n_head, int v_head_dim, int n_split) {
    pdl_trigger();
    pdl_wait();
    const int r = blockIdx.x, h = blockIdx.y;
    if (r >= rows || h >= n_head || v_head_dim <= 0) return;
    const i64 st = (i64)v_head_dim + 2;
    const float* pp = part + ((i64)r * n_head + h) * n_split * st;
    float* o = out + ((i64)r * n_head + h) * v_head_dim;
    float M = sinks ? sinks[h] : F32_NEG_INF;
    bool nan = false;
    for (int s = 0; s < n_split; ++s) {
        const float m = pp[s * st], l = pp[s * st + 1];
        nan |= isnan(m) || isnan(l);
        if (l > 0.0f) M = fmaxf(M, m);
    }
    float L = 0.0f;
    for (int s = 0; s < n_split; ++s) {
        const float l = pp[s * st + 1];
        if (l > 0.0f) L = fmaf(l, expf(__fadd_rn(pp[s * st], -M)), L);
    }
    if (sinks) L = __fadd_rn(L, expf(__fadd_rn(sinks[h], -M)));
    for (int d = threadIdx.x; d < v_head_dim; d += blockDim.x) {
        float acc = 0.0f;
        for (int s = 0; s < n_split; ++s) {
            if (pp[s * st + 1] > 0.0f) acc = fmaf(pp[s * st + 2 + d], expf(__fadd_rn(pp[s * st], -M)), acc);
        }
        o[d] = nan ? F32_NAN : __fdiv_rn(acc, L);
    }
}

// ---------------------------------------------------------------------------------------------
// Attention over a tile of query rows (prefill): grid (ceil(rows / ATT_TR), n_head), block 256,
// dynamic shared att_tile_floats(head_dim, v_head_dim, ld) floats with ld ≥ every row's pos + 1.
// Each row's output has the bits `attention` gives it: the same dots (dot_cpu_order's order),
// the same max, the denominator summed as `attention`'s 256 threads sum it (thread t: keys
// j ≡ t mod 256 in order; the warp's xor tree; block_sum8_d's combination of the 8 warps), the
// same weights, and Σ w·v as its 8 warps sum it (keys j ≡ w mod 8 in order, the 8 partials added
// in order). What the tile shares: when its rows are of one sequence, tiles of ATT_KT keys and
// values are staged in shared memory with coalesced loads, once for its 16 rows; and a
// 512-token layer's 7,168 blocks become 448.
// ---------------------------------------------------------------------------------------------

#define ATT_TR 16  // query rows a tile
#define ATT_CK 2   // outputs a thread sums at once

// Keys (or values) a staged tile holds: ~16 KiB of floats, a multiple of 8 in 8 .. 64.
__device__ __forceinline__ int att_kt(int head_dim, int v_head_dim) {
    const int w = head_dim > v_head_dim ? head_dim : v_head_dim;
    const int kt = (4096 / (w > 0 ? w : 1)) & ~7;
    return kt < 8 ? 8 : (kt > 64 ? 64 : kt);
}
// The tile's dynamic shared memory in floats: queries, scores, one staged tile (rows padded by 4
// so a warp's 16-byte reads of 32 key rows do not share banks).
__device__ __forceinline__ u64 att_tile_floats(int head_dim, int v_head_dim, int ld) {
    const int w = head_dim > v_head_dim ? head_dim : v_head_dim;
    return (u64)ATT_TR * ((u64)head_dim + (u64)ld) + (u64)att_kt(head_dim, v_head_dim) * (u64)(w + 4);
}

// Rows kt .. kt + n of one sequence's cache (`base` + row · cols, `cols_off` into the row, `w`
// elements a row) as floats into S (rows `stride` apart): 16-byte loads where the rows allow,
// several in flight a thread.
__device__ void att_stage(float* S, int stride, const void* c, i64 base, i64 cols, i64 cols_off, int kt, int n,
                          int w, int f16) {
    const int tid = threadIdx.x, bd = blockDim.x;
    const bool vec = ((cols & 7) == 0) && ((cols_off & 7) == 0) && ((w & 7) == 0) &&
                     ((reinterpret_cast<u64>(c) & 15) == 0);
    if (vec && f16) {
        const int per = w / 8, cnt = n * per;
#pragma unroll 4
        for (int e = tid; e < cnt; e += bd) {
            const int r = e / per, ch = e - r * per;
            const uint4 u = *(const uint4*)((const u16*)c + (base + kt + r) * cols + cols_off + 8 * ch);
            const u32 ws[4] = {u.x, u.y, u.z, u.w};
            float f[8];
#pragma unroll
            for (int l = 0; l < 8; ++l) f[l] = f16_to_f32((u16)(ws[l >> 1] >> (16 * (l & 1))));
            // Two 16-byte stores (strides are multiples of 4 floats): 2-way bank conflicts at
            // most, where eight 4-byte stores 8 floats apart were 8-way.
            float4* o = (float4*)(S + r * stride + 8 * ch);
            o[0] = make_float4(f[0], f[1], f[2], f[3]);
            o[1] = make_float4(f[4], f[5], f[6], f[7]);
        }
    } else if (vec) {
        const int per = w / 4, cnt = n * per;
#pragma unroll 4
        for (int e = tid; e < cnt; e += bd) {
            const int r = e / per, ch = e - r * per;
            const float4 u = *(const float4*)((const float*)c + (base + kt + r) * cols + cols_off + 4 * ch);
            *(float4*)(S + r * stride + 4 * ch) = u;
        }
    } else {
        for (int e = tid; e < n * w; e += bd) {
            const int r = e / w, d = e - r * w;
            S[r * stride + d] = kv_load(c, (base + kt + r) * cols + cols_off + d, f16);
        }
    }
}

// dot_cpu_order with the key row in shared memory (as floats).
__device__ __forceinline__ float dot_cpu_order_s(const float* a, const float* k, int n) {
    float acc[8];
#pragma unroll
    for (int l = 0; l < 8; ++l) acc[l] = 0.0f;
    const int chunks = n / 8;
    if ((n & 7) == 0) {
        // 16-byte reads: q is the same address across the warp (a broadcast); key rows are
        // head_dim + 4 floats apart, so a quarter warp's eight reads fall in distinct banks.
#pragma unroll 4
        for (int c = 0; c < chunks; ++c) {
            const float4 a0 = ((const float4*)a)[2 * c], a1 = ((const float4*)a)[2 * c + 1];
            const float4 k0 = ((const float4*)k)[2 * c], k1 = ((const float4*)k)[2 * c + 1];
            const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            const float kv[8] = {k0.x, k0.y, k0.z, k0.w, k1.x, k1.y, k1.z, k1.w};
#pragma unroll
            for (int l = 0; l < 8; ++l) acc[l] = __fadd_rn(acc[l], __fmul_rn(av[l], kv[l]));
        }
    } else {
        for (int c = 0; c < chunks; ++c) {
#pragma unroll
            for (int l = 0; l < 8; ++l) acc[l] = __fadd_rn(acc[l], __fmul_rn(a[8 * c + l], k[8 * c + l]));
        }
    }
    float s = 0.0f;
    for (int i = chunks * 8; i < n; ++i) s = __fadd_rn(s, __fmul_rn(a[i], k[i]));
    return dot8_total(acc, s);
}

// attention_tile's pass 2 for one row (a warp): the max, the denominator in `attention`'s order,
// the weights over the dots (keys jlo .. nkmax; masked ones, and those past the row's own, weigh
// 0). CAP: the softcap is on (a template, so the hot loops carry no branch on it).
// ATT_TILE_SLIM (ORCD_NVRTC_DEFINES, untimed; the same values: the same functions of the same
// arguments): pass 2's f64 exp, division and the softcap's tanh called out of line — unrolled 8 keys a lane
// over three sweeps they were ~6,000 of attention_tile's 15,320 instructions, fetched cold by
// each block's warps.
#ifdef ATT_TILE_SLIM
__device__ __noinline__ double att_exp_call(double x) { return exp(x); }
__device__ __noinline__ double att_div_call(double a, double b) { return __ddiv_rn(a, b); }
#define ATT_TEXP(x) att_exp_call(x)
#define ATT_TDIV(a, b) att_div_call(a, b)
#else
#define ATT_TEXP(x) exp(x)
#define ATT_TDIV(a, b) __ddiv_rn(a, b)
#endif
template <bool CAP>
__device__ __forceinline__ double att_score_t(float dot, double scale, double cap) {
    double s = __dmul_rn((double)dot, scale);
#ifdef ATT_TILE_SLIM
    if (CAP) s = att_cap(s, cap);
#else
    if (CAP) s = __dmul_rn(cap, tanh(__ddiv_rn(s, cap)));
#endif
    return s;
}

template <bool CAP>
__device__ __forceinline__ void att_row_weights(float* Wi, int nk, int vlo, int jlo, int nkmax, int lane, double sc,
                                                double cap, const float* sinks, int h, int f16) {
    // Three passes over the row's keys, 8 a lane at a time without branches (a masked key's
    // lanes compute and drop), so each lane's exps and divisions overlap. (Each pass spells its
    // score out: this is the compiled code measured on the card; a shared lambda changed it.)
    const int jb0 = min(vlo, jlo) & ~255;
    double mx = F64_NEG_INF;
    for (int jb = jb0; jb < nk; jb += 256) {
#pragma unroll
        for (int u = 0; u < ATT_WARPS; ++u) {
            const int j = jb + 32 * u + lane;
            const bool vis = j >= vlo && j < nk;
            const double s = att_score_t<CAP>(vis ? Wi[j] : 0.0f, sc, cap);
            mx = fmax(mx, vis ? s : F64_NEG_INF);  // fmax, like f64::max, ignores NaN
        }
    }
    mx = warp_max_d(mx);
    const double sink = sinks ? (double)sinks[h] : 0.0;
    if (sinks) mx = fmax(mx, sink);
    // Lane l stands for `attention`'s threads l + 32u (u = its warp): keys j ≡ l + 32u mod 256.
    // A masked or non-finite key adds +0.0, which leaves the (never -0) partial as it is.
    double ps[ATT_WARPS];
#pragma unroll
    for (int u = 0; u < ATT_WARPS; ++u) ps[u] = 0.0;
    for (int jb = jb0; jb < nk; jb += 256) {
#pragma unroll
        for (int u = 0; u < ATT_WARPS; ++u) {
            const int j = jb + 32 * u + lane;
            const bool vis = j >= vlo && j < nk;
            const double s = att_score_t<CAP>(vis ? Wi[j] : 0.0f, sc, cap);
            const double e = ATT_TEXP(s - mx);
            ps[u] = __dadd_rn(ps[u], (vis && isfinite(s)) ? e : 0.0);
        }
    }
    // block_sum8_d: each warp's xor tree, then its fixed combination of the 8.
    double t[ATT_WARPS];
#pragma unroll
    for (int u = 0; u < ATT_WARPS; ++u) t[u] = __dadd_rn(warp_sum_d(ps[u]), 0.0);
#pragma unroll
    for (int l = 0; l < 4; ++l) t[l] = __dadd_rn(t[l], t[l + 4]);
    t[0] = __dadd_rn(t[0], t[2]);
    t[1] = __dadd_rn(t[1], t[3]);
    double sum = __dadd_rn(t[0], t[1]);
    if (sinks) sum = __dadd_rn(ATT_TEXP(sink - mx), sum);
    // The weights, over the dots: each lane rewrites only keys it read (j ≡ lane mod 32), so
    // no barrier is needed. Keys jlo .. nkmax are written (masked ones, and those past the
    // row's own, weigh 0): pass 3 reads them unguarded.
    for (int jb = jb0; jb < nkmax; jb += 256) {
#pragma unroll
        for (int u = 0; u < ATT_WARPS; ++u) {
            const int j = jb + 32 * u + lane;
            const bool vis = j >= vlo && j < nk;
            const double s = att_score_t<CAP>(vis ? Wi[j] : 0.0f, sc, cap);
            const double e = ATT_TEXP(s - mx);
            float w = (vis && isfinite(s) && e != 0.0) ? (float)ATT_TDIV(e, sum) : 0.0f;
            if (f16) w = f16_to_f32(f32_to_f16(w));
            if (j >= jlo && j < nkmax) Wi[j] = w;
        }
    }
}

// attention_tile's pass 3 over one staged tile of values (keys kt .. jend, kt on a class-0
// boundary): acc[k][j mod 8] += w · v for the thread's ATT_CK outputs (weights row wo[k] of W,
// dim od[k]). F16: the values and weights are halves, so the f32 product is exact (the f64
// product). SHARE: the outputs share one dim (one value read a key). CHECK: a partial tile.
// A weight of 0 adds +0.0: the sum (of terms > 0 or < 0, never -0) stays as `attention`'s skip
// leaves it, and 0 · inf never enters.
template <bool F16, bool SHARE, bool CHECK>
__device__ __forceinline__ void att_pv(double (&acc)[ATT_CK][8], const float* W, const int* wo, const float* S,
                                       const int* od, int vd, int kt, int jend) {
    for (int j0 = kt; j0 < jend; j0 += 8) {
#pragma unroll
        for (int u = 0; u < 8; ++u) {
            const int j = j0 + u;
            const bool in = !CHECK || j < jend;
            const float* Sj = S + (j - kt) * vd;
            const float vs = SHARE ? Sj[od[0]] : 0.0f;
#pragma unroll
            for (int k = 0; k < ATT_CK; ++k) {
                const float w = in ? W[wo[k] + j] : 0.0f;
                const float v = SHARE ? vs : (in ? Sj[od[k]] : 0.0f);
                const double pr = F16 ? (double)__fmul_rn(w, v) : __dmul_rn((double)w, (double)v);
                acc[k][u] = __dadd_rn(acc[k][u], w != 0.0f ? pr : 0.0);
            }
        }
    }
}

// One tile (`tile`: rows tile·ATT_TR ..) of one head `h` — attention_tile's block, whichever
// way its grid enumerates them.
__device__ __forceinline__ void attention_tile_t(int tile, int h, const float* q, const void* kc, const void* vc,
                                                 const unsigned* pos, const unsigned* seq, const float* sinks,
                                                 float* out, int rows, int il, int n_seq, int n_ctx, int n_head,
                                                 int n_head_kv, int head_dim, int v_head_dim, float scale, int window,
                                                 float softcap, int f16, int ld) {
#ifdef ORCD_EMU
    float* sm = (float*)g_emu->dyn.data();
#else
    extern __shared__ float sm[];  // qs [ATT_TR][head_dim], W [ATT_TR][ld] (dots, then weights), S
#endif
    __shared__ int rpos[ATT_TR], rseq[ATT_TR], rok[ATT_TR];
    pdl_trigger();
    pdl_wait();
    const int r0 = tile * ATT_TR, tid = threadIdx.x;
    if (r0 >= rows || h >= n_head || v_head_dim <= 0) return;
    const int nr = min(ATT_TR, rows - r0);
    const int group = n_head_kv > 0 ? n_head / n_head_kv : 0;
    // Uniform over the block: a head or launch the tile cannot take gives NaN rows, as
    // `attention` does for a row it cannot take.
    const bool head_ok = group > 0 && h / group < n_head_kv && head_dim > 0 && head_dim <= ATT_QMAX &&
                         v_head_dim <= ATT_QMAX && blockDim.x == 32 * ATT_WARPS && ld > 0 &&
                         att_tile_floats(head_dim, v_head_dim, ld) * 4 <= (u64)dynamic_smem_bytes();
    if (tid < ATT_TR) {
        u32 p = 0, s = 0;
        int ok = 0;
        if (tid < nr) {
            p = pos[r0 + tid];
            s = seq[r0 + tid];
            ok = head_ok && s < (u32)n_seq && p < (u32)n_ctx && p < (u32)ld;
        }
        rpos[tid] = (int)p;
        rseq[tid] = (int)s;
        rok[tid] = ok;
    }
    __syncthreads();
    if (!head_ok) {
        for (int e = tid; e < nr * v_head_dim; e += blockDim.x)
            out[((i64)(r0 + e / v_head_dim) * n_head + h) * v_head_dim + e % v_head_dim] = F32_NAN;
        return;
    }
#ifdef ATT_PROF  // diagnostics (ORCD_NVRTC_DEFINES=ATT_PROF): thread 0's clock at each phase
    long long att_t[5];
#define ATT_T(k) att_t[k] = clock64()
    ATT_T(0);
#else
#define ATT_T(k)
#endif
    const int kh = h / group, KT = att_kt(head_dim, v_head_dim);
    const i64 k_cols = (i64)n_head_kv * head_dim, v_cols = (i64)n_head_kv * v_head_dim;
    float* qs = sm;
    float* W = sm + ATT_TR * head_dim;
    float* S = W + (i64)ATT_TR * ld;
    const int ks = head_dim + 4;
    // The first key any row sees (a window hides the earlier ones; rounded down to 8, so staged
    // tiles start on a class boundary of Σ w·v), the keys the tile spans, whether its rows share
    // one sequence (then staged tiles serve them all).
    int jlo = 0x7fffffff, nkmax = 0, first = -1;
    bool one = true;
    for (int i = 0; i < nr; ++i) {
        if (!rok[i]) continue;
        const int p = rpos[i];
        jlo = min(jlo, window > 0 ? max(0, p - window + 1) : 0);
        nkmax = max(nkmax, p + 1);
        if (first < 0) first = i;
        else if (rseq[i] != rseq[first]) one = false;
    }
    jlo &= ~7;
    const i64 slot0 = first >= 0 ? ((i64)il * n_seq + rseq[first]) * n_ctx : 0;  // with `one`
    // An F16 cache is the fast numerics: q rounded to F16, as `attention`.
    for (int e = tid; e < nr * head_dim; e += blockDim.x) {
        float v = q[((i64)(r0 + e / head_dim) * n_head + h) * head_dim + e % head_dim];
        if (f16) v = f16_to_f32(f32_to_f16(v));
        qs[e] = v;
    }
    __syncthreads();
    ATT_T(1);
#define VIS(i, j) ((j) <= rpos[i] && (window <= 0 || rpos[i] - (j) < window))

    // Pass 1: raw dots of the visible (row, key) pairs into W.
    if (first >= 0 && one) {
        for (int kt = jlo; kt < nkmax; kt += KT) {
            const int nkt = min(KT, nkmax - kt);
            att_stage(S, ks, kc, slot0, k_cols, (i64)kh * head_dim, kt, nkt, head_dim, f16);
            __syncthreads();
            const int jj = tid % KT, j = kt + jj;
            if (jj < nkt) {
                for (int i = tid / KT; i < nr; i += 32 * ATT_WARPS / KT) {
                    if (rok[i] && VIS(i, j)) W[(i64)i * ld + j] = dot_cpu_order_s(qs + (i64)i * head_dim, S + jj * ks, head_dim);
                }
            }
            __syncthreads();  // S is restaged next
        }
    } else if (first >= 0) {
        for (int i = 0; i < nr; ++i) {
            if (!rok[i]) continue;
            const i64 si = ((i64)il * n_seq + rseq[i]) * n_ctx;
            for (int j = jlo + tid; j <= rpos[i]; j += blockDim.x) {
                if (VIS(i, j)) {
                    W[(i64)i * ld + j] =
                        dot_cpu_order(qs + (i64)i * head_dim, kc, (si + j) * k_cols + (i64)kh * head_dim, head_dim, f16);
                }
            }
        }
        __syncthreads();
    }

    ATT_T(2);
    // Pass 2, a warp per row: the max, the denominator in `attention`'s order, the weights
    // (written over the dots for keys jlo .. pos; masked and underflowed keys weigh 0).
    const int lane = tid & 31, wp = tid >> 5;
    const double sc = scale, cap = softcap;
    for (int i = wp; i < nr; i += ATT_WARPS) {
        if (!rok[i]) continue;
        float* Wi = W + (i64)i * ld;
        const int nk = rpos[i] + 1;
        const int vlo = window > 0 ? max(0, nk - window) : 0;  // the row's first visible key
        if (cap > 0.0) att_row_weights<true>(Wi, nk, vlo, jlo, nkmax, lane, sc, cap, sinks, h, f16);
        else att_row_weights<false>(Wi, nk, vlo, jlo, nkmax, lane, sc, cap, sinks, h, f16);
    }
    __syncthreads();
    ATT_T(3);

    // Pass 3: out = Σ_j w_j · v_j, ATT_CK outputs a thread at a time, 8 partial sums each (keys
    // j ≡ u mod 8 in order, then added u = 0..7). On the F16 cache w and v are halves, so the
    // f32 product is exact: it is the f64 product. With one sequence the values come from staged
    // tiles (KT keys, a multiple of 8, from jlo: each tile starts on class 0). Without branches:
    // a weight of 0 (masked, underflowed, past the row's keys) adds +0.0, which leaves a sum of
    // positive terms as it is — what `attention`'s skip gives — and keeps 0 · inf out.
    const int nout = nr * v_head_dim;
    const bool vshare = one && (32 * ATT_WARPS) % v_head_dim == 0;  // a thread's outputs share d
    for (int base = 0; base < nout; base += 32 * ATT_WARPS * ATT_CK) {
        int wo[ATT_CK], od[ATT_CK], oi[ATT_CK];  // the output's weights row in W, dim, row
#pragma unroll
        for (int k = 0; k < ATT_CK; ++k) {
            const int o = base + tid + 32 * ATT_WARPS * k;
            oi[k] = o < nout ? o / v_head_dim : 0;
            od[k] = o < nout ? o % v_head_dim : 0;
            wo[k] = oi[k] * ld;
        }
        double acc[ATT_CK][8];
#pragma unroll
        for (int k = 0; k < ATT_CK; ++k)
#pragma unroll
            for (int u = 0; u < 8; ++u) acc[k][u] = 0.0;
        if (first >= 0 && one) {
            for (int kt = jlo; kt < nkmax; kt += KT) {  // uniform over the block
                __syncthreads();  // the last tile's readers are done
                att_stage(S, v_head_dim, vc, slot0, v_cols, (i64)kh * v_head_dim, kt, min(KT, nkmax - kt), v_head_dim, f16);
                __syncthreads();
                const int jend = min(kt + KT, nkmax);
                // The hot loop without branches on the launch's flags: one instance per case.
                if (jend - kt == KT) {
                    if (vshare) {
                        if (f16) att_pv<true, true, false>(acc, W, wo, S, od, v_head_dim, kt, jend);
                        else att_pv<false, true, false>(acc, W, wo, S, od, v_head_dim, kt, jend);
                    } else {
                        if (f16) att_pv<true, false, false>(acc, W, wo, S, od, v_head_dim, kt, jend);
                        else att_pv<false, false, false>(acc, W, wo, S, od, v_head_dim, kt, jend);
                    }
                } else {
                    if (f16) att_pv<true, false, true>(acc, W, wo, S, od, v_head_dim, kt, jend);
                    else att_pv<false, false, true>(acc, W, wo, S, od, v_head_dim, kt, jend);
                }
            }
        } else if (first >= 0) {
            // Rows of several sequences: each output's values from its own sequence's cache (a
            // row out of range reads sequence 0; its output is NaN).
            for (int j0 = jlo; j0 < nkmax; j0 += 8) {
#pragma unroll
                for (int u = 0; u < 8; ++u) {
                    const int j = j0 + u;
                    if (j >= nkmax) continue;
#pragma unroll
                    for (int k = 0; k < ATT_CK; ++k) {
                        const float w = W[wo[k] + j];
                        const i64 sq = rok[oi[k]] ? rseq[oi[k]] : 0;
                        const float v =
                            kv_load(vc, (((i64)il * n_seq + sq) * n_ctx + j) * v_cols + (i64)kh * v_head_dim + od[k], f16);
                        const double pr = f16 ? (double)__fmul_rn(w, v) : __dmul_rn((double)w, (double)v);
                        acc[k][u] = __dadd_rn(acc[k][u], w != 0.0f ? pr : 0.0);
                    }
                }
            }
        }
#pragma unroll
        for (int k = 0; k < ATT_CK; ++k) {
            const int o = base + tid + 32 * ATT_WARPS * k;
            if (o >= nout) continue;
            double t = 0.0;
#pragma unroll
            for (int u = 0; u < 8; ++u) t = __dadd_rn(t, acc[k][u]);
            out[((i64)(r0 + oi[k]) * n_head + h) * v_head_dim + od[k]] = rok[oi[k]] ? (float)t : F32_NAN;
        }
    }
#ifdef ATT_PROF
    ATT_T(4);
    if (tid == 0 && il == 0 && h == 0)
        printf("attprof tile %d nkmax %d q %lld p1 %lld p2 %lld p3 %lld\n", tile, nkmax, att_t[1] - att_t[0],
               att_t[2] - att_t[1], att_t[3] - att_t[2], att_t[4] - att_t[3]);
#endif
#undef ATT_T
#undef VIS
}

#define ATT_TILE_PARAMS                                                                                           \
    const float *q, const void *kc, const void *vc, const unsigned *pos, const unsigned *seq, const float *sinks, \
        float *out, int rows, int il, int n_seq, int n_ctx, int n_head, int n_head_kv, int head_dim,              \
        int v_head_dim, float scale, int window, float softcap, int f16, int ld
#define ATT_TILE_ARGS                                                                                        \
    q, kc, vc, pos, seq, sinks, out, rows, il, n_seq, n_ctx, n_head, n_head_kv, head_dim, v_head_dim, scale, \
        window, softcap, f16, ld
// grid (ceil(rows / ATT_TR), n_head): tile blockIdx.x of head blockIdx.y.
extern "C" __global__ void ATT_BOUNDS attention_tile(ATT_TILE_PARAMS) {
    attention_tile_t(blockIdx.x, blockIdx.y, ATT_TILE_ARGS);
}
// The same tiles, the heaviest first (the host's default, ORCD_CUDA_ATT_LPT=0 the grid's order): grid (n_head,
// ceil(rows / ATT_TR)), tile gridDim.y − 1 − blockIdx.y of head blockIdx.x. A prefill's last
// tiles see the most keys (a causal row sees its position + 1); blocks start in the order of
// their linear index, so with the heads fastest every head's heaviest tile starts in the first
// wave and the light ones fill the tail — longest-first scheduling. Each tile's values are
// attention_tile's (the same body).
extern "C" __global__ void ATT_BOUNDS attention_tile_lpt(ATT_TILE_PARAMS) {
    attention_tile_t(gridDim.y - 1 - blockIdx.y, blockIdx.x, ATT_TILE_ARGS);
}

// ---------------------------------------------------------------------------------------------
// attention_mma (the host's default where it takes the batch, ORCD_CUDA_ATT_MMA=0 off; the fast numerics' prefill only): the
// F16 cache's attention with its two products on the f16 tensor cores (attention_tile computes
// them one f32 product at a time: ~3 TFLOPS, 34.6% of a pp512, stop 43). Two passes over the
// keys, as `attention`: pass 1 each row's max and Σ exp(s − max) (online, f32); pass 2 the
// weights exp(s − max) / Σ rounded to f16 — `attention`'s F16 weights (llama.cpp's CPU rounds
// its probabilities so), here in f32 where it has f64 — and out = Σ w·v in mma.m16n8k16 with
// f32 sums; q rounded to f16 as `attention` does, q·k in mma too. Not attention_tile's bits (the
// sums' order and width; exp in f32): held to suite `ops`'s attention threshold
// (test-backend-ops's NMSE 5e-4) against the CPU, and on the emulator within 1e-8 of the ABI's
// loops (kernels/emu/attn_check). (A one-pass flash form with f16 probabilities, llama.cpp's FLASH_ATTN_EXT, cost the
// synthetic gemma3's logits a mean KL of 2.6e-2 against the goldens, past the fast column's 5e-3.)
// A block: 64 query rows of one sequence (4 warps × 16; or 32 rows, 2 warps: block 64) and one
// head, the keys in tiles of 64 (K, and V in pass 2, staged as halves in shared memory); grid
// (n_head, ceil(rows / rows a block)), the tiles the heaviest first (attention_tile_lpt's order). The host sends it only
// rows of one sequence, an F16 cache and head_dim = v_head_dim ∈ {64, 128, 256}; any other
// launch gives NaN rows. Heads of 256 (gemma-3): keys in tiles of 32 (the same shared memory),
// and a block writes one half of the output (grid (2 · n_head, …): block x takes head x / 2,
// dims 128 · (x % 2) ..) — q's fragments and a whole head's sums would not fit a thread's
// registers; both halves compute the same scores, max and Σ (the same code on the same data),
// so a row's weights are one set.
// ---------------------------------------------------------------------------------------------

#define AMMA_ROWS 64  // the most query rows a block takes: 16 a warp, up to 4 warps
#define AMMA_KT 64    // keys a staged tile
#define AMMA_DMAX 128
#define AMMA_STR (AMMA_DMAX + 8)  // halves a staged row (16-byte aligned; banks spread)

// D = A·B + C (f16, 16×16 by 16×8, f32 sums): lane (g = lane / 4, t = lane % 4) holds A rows g
// and g + 8 at columns 2t, 2t + 1 (a0: g, a1: g + 8) and 2t + 8, 2t + 9 (a2: g, a3: g + 8), B
// column g at rows 2t, 2t + 1 (b0) and 2t + 8, 2t + 9 (b1), C/D (g, 2t), (g, 2t + 1),
// (g + 8, 2t), (g + 8, 2t + 1); the lower half of a register the lower index (kernels/emu/emu.h).
__device__ __forceinline__ void mma_f16_16816(float* d, const u32* a, const u32* b) {
#ifdef ORCD_EMU
    emu_mma_f16_16816(d, a, b);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

__device__ __forceinline__ u32 amma_pack(float lo, float hi) {
    return (u32)f32_to_f16(lo) | ((u32)f32_to_f16(hi) << 16);
}

// The block's shared memory (the kernel's, so both head sizes' instances share it).
struct AmmaShared {
    u16 k[AMMA_KT * AMMA_STR], v[AMMA_KT * AMMA_STR];  // staged keys and values (halves)
    int rpos[AMMA_ROWS], rok[AMMA_ROWS];
    int span[2];  // the block's first key (the earliest any row sees) and its keys' end
};

template <int D>
__device__ void attention_mma_t(AmmaShared& sh, int tile, int h, int part, ATT_TILE_PARAMS) {
    // Keys a staged tile, halves a staged row, output dims a block (its part of the head).
    constexpr int KT = D > 128 ? 32 : AMMA_KT, STR = D > 128 ? D + 8 : AMMA_STR, DO = D > 128 ? 128 : D;
    static_assert(KT * STR <= AMMA_KT * AMMA_STR && KT % 16 == 0, "attention_mma: the staged tile fits");
    const int d0 = part * DO;
    u16* Ks = sh.k;
    u16* Vs = sh.v;
    int* rpos = sh.rpos;
    int* rok = sh.rok;
    int* span = sh.span;
    const int tid = threadIdx.x, lane = tid & 31, wp = tid >> 5, g = lane >> 2, t = lane & 3;
    // Blocks of 2 or 4 warps: 32 or 64 rows (the host's choice: twice the blocks at 32).
    const int nt = blockDim.x, brows = 16 * (nt / 32);
    const int r0 = tile * brows, nr = min(brows, rows - r0);
    const int group = n_head_kv > 0 ? n_head / n_head_kv : 0;
    const bool head_ok = group > 0 && h / group < n_head_kv && head_dim == D && v_head_dim == D && f16 == 1 &&
                         (nt == 64 || nt == 128) && nr > 0;
    if (nr <= 0) return;
    const u32 s0 = seq[r0];
    if (tid < AMMA_ROWS) {
        int ok = 0, p = 0;
        if (tid < nr) {
            p = (int)pos[r0 + tid];
            ok = head_ok && seq[r0 + tid] == s0 && s0 < (u32)n_seq && pos[r0 + tid] < (u32)n_ctx;
        }
        rpos[tid] = p;
        rok[tid] = ok;
    }
    __syncthreads();
    if (tid == 0) {
        int lo = 0x7fffffff, hi = 0;
        for (int i = 0; i < nr; ++i) {
            if (!rok[i]) continue;
            lo = min(lo, window > 0 ? max(0, rpos[i] - window + 1) : 0);
            hi = max(hi, rpos[i] + 1);
        }
        span[0] = hi > 0 ? lo : 0;
        span[1] = hi;
    }
    __syncthreads();
    const int kh = head_ok ? h / group : 0;
    const i64 cols = (i64)n_head_kv * D;
    const i64 slot0 = ((i64)il * n_seq + (s0 < (u32)n_seq ? s0 : 0)) * n_ctx;
    // The warp's rows: ra (its lane's g) and rb (g + 8).
    const int ia = wp * 16 + g, ib = ia + 8;
    const bool oka = ia < nr && rok[ia], okb = ib < nr && rok[ib];
    const int pa = rpos[ia < AMMA_ROWS ? ia : 0], pb = rpos[ib < AMMA_ROWS ? ib : 0];
    // q rounded to f16 (as `attention` on an F16 cache), in A fragments: 16 columns a step.
    u32 qa[D / 16][4];
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
        float v[8];
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            const int row = (e & 2) ? ib : ia, col = 16 * ks + 2 * t + (e & 1) + ((e & 4) ? 8 : 0);
            v[e] = ((e & 2) ? okb : oka) ? q[((i64)(r0 + row) * n_head + h) * D + col] : 0.0f;
        }
        qa[ks][0] = amma_pack(v[0], v[1]);
        qa[ks][1] = amma_pack(v[2], v[3]);
        qa[ks][2] = amma_pack(v[4], v[5]);
        qa[ks][3] = amma_pack(v[6], v[7]);
    }
    const float sc = scale;
    const int jlo = span[0], jend = span[1];
    // One key tile: staged (K; V too with `val`), then the warp's 16 rows × 64 keys of scaled,
    // softcapped, masked scores in C fragments (8 tiles of 8 keys).
    auto scores = [&](int kt, int nk, bool val, float (*s)[4]) {
        __syncthreads();  // the last tile's readers are done
        // Tiles start at the block's first key, so no key before every row's window is read,
        // and rows past the keys are zeros: a weight of 0 times such a value must not make a
        // NaN (an infinite value there).
        for (int e = tid; e < KT * (D / 8); e += nt) {
            const int r = e / (D / 8), c = e - r * (D / 8);
            uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
            if (r < nk && head_ok) {
                const i64 off = (slot0 + kt + r) * cols + (i64)kh * D + 8 * c;
                kv = *(const uint4*)((const u16*)kc + off);
                if (DO == D && val) vv = *(const uint4*)((const u16*)vc + off);
            }
            *(uint4*)(Ks + r * STR + 8 * c) = kv;
            if (DO == D && val) *(uint4*)(Vs + r * STR + 8 * c) = vv;
        }
        if (DO < D && val) {  // the block's part of the values only
            for (int e = tid; e < KT * (DO / 8); e += nt) {
                const int r = e / (DO / 8), c = e - r * (DO / 8);
                uint4 vv = make_uint4(0, 0, 0, 0);
                if (r < nk && head_ok) vv = *(const uint4*)((const u16*)vc + (slot0 + kt + r) * cols + (i64)kh * D + d0 + 8 * c);
                *(uint4*)(Vs + r * STR + 8 * c) = vv;
            }
        }
        __syncthreads();
#pragma unroll
        for (int n = 0; n < KT / 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) s[n][e] = 0.0f;
#pragma unroll
            for (int ks = 0; ks < D / 16; ++ks) {
                const u16* kr = Ks + (8 * n + g) * STR + 16 * ks + 2 * t;
                const u32 b[2] = {*(const u32*)kr, *(const u32*)(kr + 8)};
                mma_f16_16816(s[n], qa[ks], b);
            }
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int j = kt + 8 * n + 2 * t + (e & 1);
                const bool hi = e >= 2;
                const int p = hi ? pb : pa;
                const bool vis = (hi ? okb : oka) && j < kt + nk && j <= p && (window <= 0 || p - j < window);
                float v = s[n][e] * sc;
                if (softcap > 0.0f) v = softcap * tanhf(v / softcap);
                s[n][e] = vis ? v : F32_NEG_INF;
            }
        }
    };
    // Pass 1: each row's max and Σ exp(s − max) (online, f32).
    float ma = F32_NEG_INF, mb = F32_NEG_INF, la = 0.0f, lb = 0.0f;
    for (int kt = jlo; kt < jend; kt += KT) {  // uniform over the block
        float s[KT / 8][4];
        scores(kt, min(KT, jend - kt), false, s);
        float ta = F32_NEG_INF, tb = F32_NEG_INF;
#pragma unroll
        for (int n = 0; n < KT / 8; ++n) {
            ta = fmaxf(ta, fmaxf(s[n][0], s[n][1]));
            tb = fmaxf(tb, fmaxf(s[n][2], s[n][3]));
        }
#pragma unroll
        for (int x = 1; x < 4; x <<= 1) {  // a row's 64 scores are on its 4 lanes
            ta = fmaxf(ta, __shfl_xor_sync(0xffffffffu, ta, x));
            tb = fmaxf(tb, __shfl_xor_sync(0xffffffffu, tb, x));
        }
        const float na = fmaxf(ma, ta), nb = fmaxf(mb, tb);
        float sa = 0.0f, sb = 0.0f;
#pragma unroll
        for (int n = 0; n < KT / 8; ++n) {
            sa += (s[n][0] == F32_NEG_INF ? 0.0f : expf(s[n][0] - na)) + (s[n][1] == F32_NEG_INF ? 0.0f : expf(s[n][1] - na));
            sb += (s[n][2] == F32_NEG_INF ? 0.0f : expf(s[n][2] - nb)) + (s[n][3] == F32_NEG_INF ? 0.0f : expf(s[n][3] - nb));
        }
#pragma unroll
        for (int x = 1; x < 4; x <<= 1) {
            sa += __shfl_xor_sync(0xffffffffu, sa, x);
            sb += __shfl_xor_sync(0xffffffffu, sb, x);
        }
        // A row with no visible key yet keeps m = −inf and l = 0.
        la = (na == F32_NEG_INF ? 0.0f : la * expf(ma - na)) + sa;
        lb = (nb == F32_NEG_INF ? 0.0f : lb * expf(mb - nb)) + sb;
        ma = na;
        mb = nb;
    }
    // The sink (gpt-oss): one more logit in the max and the denominator.
    if (sinks) {
        const float sk = sinks[h];
        const float xa = fmaxf(ma, sk), xb = fmaxf(mb, sk);
        la = (ma == F32_NEG_INF ? 0.0f : la * expf(ma - xa)) + expf(sk - xa);
        lb = (mb == F32_NEG_INF ? 0.0f : lb * expf(mb - xb)) + expf(sk - xb);
        ma = xa;
        mb = xb;
    }
    // Pass 2: the weights as `attention` gives them, exp(s − max) / Σ rounded to f16 (llama.cpp's
    // CPU rounds its probabilities so on an F16 cache), then out = Σ w·v on the tensor cores.
    float o[DO / 8][4];
#pragma unroll
    for (int n = 0; n < DO / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[n][e] = 0.0f;
    for (int kt = jlo; kt < jend; kt += KT) {
        float s[KT / 8][4];
        scores(kt, min(KT, jend - kt), true, s);
#pragma unroll
        for (int n = 0; n < KT / 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const bool hi = e >= 2;
                s[n][e] = s[n][e] == F32_NEG_INF ? 0.0f : __fdiv_rn(expf(s[n][e] - (hi ? mb : ma)), hi ? lb : la);
            }
#pragma unroll
        for (int ks = 0; ks < KT / 16; ++ks) {
            // The weights' A fragment of keys 16·ks ..: two score tiles.
            const u32 pa4[4] = {amma_pack(s[2 * ks][0], s[2 * ks][1]), amma_pack(s[2 * ks][2], s[2 * ks][3]),
                                amma_pack(s[2 * ks + 1][0], s[2 * ks + 1][1]),
                                amma_pack(s[2 * ks + 1][2], s[2 * ks + 1][3])};
#pragma unroll
            for (int n = 0; n < DO / 8; ++n) {
                const u16* v0 = Vs + (16 * ks + 2 * t) * STR + 8 * n + g;
                const u32 b[2] = {(u32)v0[0] | ((u32)v0[STR] << 16),
                                  (u32)v0[8 * STR] | ((u32)v0[9 * STR] << 16)};
                mma_f16_16816(o[n], pa4, b);
            }
        }
    }
#pragma unroll
    for (int n = 0; n < DO / 8; ++n) {
        const int d = d0 + 8 * n + 2 * t;
        if (ia < nr) {
            float* y = out + ((i64)(r0 + ia) * n_head + h) * D + d;
            y[0] = oka ? o[n][0] : F32_NAN;
            y[1] = oka ? o[n][1] : F32_NAN;
        }
        if (ib < nr) {
            float* y = out + ((i64)(r0 + ib) * n_head + h) * D + d;
            y[0] = okb ? o[n][2] : F32_NAN;
            y[1] = okb ? o[n][3] : F32_NAN;
        }
    }
}

// grid (n_head, ceil(rows / 64)) (heads of 256: (2 · n_head, …), two parts a head): tile
// gridDim.y − 1 − blockIdx.y of head blockIdx.x (the heaviest first). head_dim 64, 128 or 256
// (other shapes: NaN rows; the host does not send them).
#define AMMA_BOUNDS __launch_bounds__(128)
extern "C" __global__ void AMMA_BOUNDS attention_mma(ATT_TILE_PARAMS) {
    __shared__ __align__(16) AmmaShared sh;
    const int tile = gridDim.y - 1 - blockIdx.y;
    if (head_dim == 256) attention_mma_t<256>(sh, tile, blockIdx.x >> 1, blockIdx.x & 1, ATT_TILE_ARGS);
    else if (head_dim == 128) attention_mma_t<128>(sh, tile, blockIdx.x, 0, ATT_TILE_ARGS);
    else attention_mma_t<64>(sh, tile, blockIdx.x, 0, ATT_TILE_ARGS);
}

// ---------------------------------------------------------------------------------------------
// Selection: argmax, top-k, MoE routing and combination
// ---------------------------------------------------------------------------------------------

// First index of the maximum (NaN loses to numbers; an all-NaN row gives 0), in two stages so a
// 150k-wide logits row is spread over many blocks: argmax_part (grid (nb, rows)) leaves each
// block's best pair of its strided share in part_k / part_i [rows, nb]; argmax_final (grid rows)
// takes the best of a row's nb pairs. The best pair (largest key, then lowest index) is unique,
// so the result does not depend on nb.
extern "C" __global__ void argmax_part(const float* x, int* part_k, int* part_i, int rows, int cols) {
    __shared__ int rk[32], ri[32];
    const int r = blockIdx.y;
    if (r >= rows) return;
    const float* xr = x + (i64)r * cols;
    int key = 0, idx = -1;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < cols; i += (i64)gridDim.x * blockDim.x) {
        const int k = argmax_key(xr[i]);
        if (pair_better(k, (int)i, key, idx)) { key = k; idx = (int)i; }
    }
    block_best(&key, &idx, rk, ri);
    if (threadIdx.x == 0) {
        part_k[(i64)r * gridDim.x + blockIdx.x] = key;
        part_i[(i64)r * gridDim.x + blockIdx.x] = idx;
    }
}

extern "C" __global__ void argmax_final(const int* part_k, const int* part_i, unsigned* out, int rows, int nb) {
    __shared__ int rk[32], ri[32];
    const int r = blockIdx.x;
    if (r >= rows) return;
    int key = 0, idx = -1;
    for (int b = threadIdx.x; b < nb; b += blockDim.x) {
        const int k = part_k[(i64)r * nb + b], i = part_i[(i64)r * nb + b];
        if (pair_better(k, i, key, idx)) { key = k; idx = i; }
    }
    block_best(&key, &idx, rk, ri);
    if (threadIdx.x == 0) out[r] = idx < 0 ? 0u : (u32)idx;
}

// The k largest (f32::total_cmp order), largest first, ties to the lower index. Pass p takes the
// best entry ranked after pass p-1's pick, so no entry is chosen twice and the scratch copy of
// the row is never modified (marking picks with -inf would collide with -inf logits).
extern "C" __global__ void topk_rows(const float* x, float* scratch, unsigned* idx, float* val, int rows, int cols,
                                     int k) {
    __shared__ int rk[32], ri[32];
    const int r = blockIdx.x;
    if (r >= rows || k <= 0) return;
    const float* xr = x + (i64)r * cols;
    float* sr = scratch + (i64)r * cols;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) sr[i] = xr[i];
    __syncthreads();
    int pk = 0, pi = -1;  // the previous pick (none yet)
    for (int pass = 0; pass < k; ++pass) {
        int key = 0, id = -1;
        for (int i = threadIdx.x; i < cols; i += blockDim.x) {
            const int kk = total_key(sr[i]);
            const bool after = pi < 0 || kk < pk || (kk == pk && i > pi);
            if (after && pair_better(kk, i, key, id)) { key = kk; id = i; }
        }
        block_best(&key, &id, rk, ri);
        if (threadIdx.x == 0) {
            const i64 o = (i64)r * k + pass;
            idx[o] = id < 0 ? 0xffffffffu : (u32)id;  // k > cols: the rest are marked invalid
            val[o] = id < 0 ? F32_NEG_INF : sr[id];
        }
        if (id >= 0) { pk = key; pi = id; }  // nothing found: every entry is taken already
    }
}

// Per row (one thread): the k largest logits (total_cmp, ties to the lower id), then a softmax
// over them in f64 with max = the first.
extern "C" __global__ void moe_route(const float* logits, unsigned* ids, float* w, int rows, int n_exp, int k) {
    if (k <= 0 || k > n_exp) return;
    GRID_LOOP(r, rows) {
        const float* lr = logits + r * n_exp;
        unsigned* ir = ids + r * k;
        float* wr = w + r * k;
        int pk = 0, pi = -1;
        for (int p = 0; p < k; ++p) {
            int key = 0, id = -1;
            for (int i = 0; i < n_exp; ++i) {
                const int kk = total_key(lr[i]);
                const bool after = pi < 0 || kk < pk || (kk == pk && i > pi);
                if (after && pair_better(kk, i, key, id)) { key = kk; id = i; }
            }
            ir[p] = (u32)id;
            pk = key;
            pi = id;
        }
        const double mx = lr[ir[0]];
        double sum = 0.0;
        for (int p = 0; p < k; ++p) sum = __dadd_rn(sum, exp((double)lr[ir[p]] - mx));
        for (int p = 0; p < k; ++p) wr[p] = (float)__ddiv_rn(exp((double)lr[ir[p]] - mx), sum);
    }
}

// y[t, d] = Σ_j e[t·k + j, d] · w[t·k + j] in f64, slot order.
extern "C" __global__ void moe_combine(const float* e, const float* w, float* y, int n, int k, int cols) {
    if (cols <= 0) return;
    GRID_LOOP(i, (i64)n * cols) {
        const i64 t = i / cols, d = i % cols;
        double acc = 0.0;
        for (int j = 0; j < k; ++j) {
            const i64 s = t * k + j;
            acc = __dadd_rn(acc, __dmul_rn((double)e[s * cols + d], (double)w[s]));
        }
        y[i] = (float)acc;
    }
}

// ---------------------------------------------------------------------------------------------
// Activation rounding
// ---------------------------------------------------------------------------------------------

// The activation rounding of llama.cpp's fast path, kept dequantized (y = q * d), as
// engine/cpu/src/cpu_fast/act.rs rounds it for the weight type's vec_dot_type (the mat-vec
// applies it to each 8-element part it reads, mv_round, or round_x once for a wide output):
// - Q8_0/Q8_1 (blocks of 32): amax = max |x|, d = amax / 127, id = 127 / amax (0 when amax is
//   0), q = round_half_even(x * id) clamped to [-128, 127], d kept as f16;
// - Q8_K (blocks of 256): max = the element of largest magnitude (first on ties),
//   iscale = -127 / max, q = min(127, round_half_even(iscale * x)), d = 1 / iscale (f32).
// One value of a Q8_0 block with inverse scale `id` and scale `d` (f16-rounded), dequantized.
__device__ __forceinline__ float q8_0_value(float v, float id, float d) {
    return __fmul_rn(fminf(fmaxf(rintf(__fmul_rn(v, id)), -128.0f), 127.0f), d);
}
// The scale and inverse scale of a Q8_0 block whose largest magnitude is `amax`.
__device__ __forceinline__ void q8_0_scales(float amax, float* d, float* id) {
    *d = f16_to_f32(f32_to_f16(__fdiv_rn(amax, 127.0f)));
    *id = amax != 0.0f ? __fdiv_rn(127.0f, amax) : 0.0f;
}
// One value of a Q8_K block whose element of largest magnitude is `max` (nonzero), dequantized.
__device__ __forceinline__ float q8_k_value(float v, float max) {
    const float iscale = __fdiv_rn(-127.0f, max);
    const float d = __fdiv_rn(1.0f, iscale);
    return __fmul_rn(fminf(rintf(__fmul_rn(iscale, v)), 127.0f), d);
}

// ---------------------------------------------------------------------------------------------
// matvec and dequant_rows, instantiated per weight type
// ---------------------------------------------------------------------------------------------

#define MV_MAX_ROWS 8  // rows per block (rpb ≤ 8): each weight read serves all of them
#define MV_THREADS 128 // threads per block: one output column per block for quantized weights
#define MV_WARPS 4     // warps per block (float weights: one column per warp)

// Quantized mat-vec, llama.cpp's mmvq shape: one block per output column; thread t of the block
// takes the column's 8-element "parts" t, t + 128, t + 256, … (part s: elements 8s .. 8s + 7,
// chunk s / 4, quarter s % 4), reading them straight from global memory (four threads cover one
// 32-element chunk, contiguous bytes, so a warp's loads are coalesced; every load of a thread is
// issued before any product). No shared memory but the four warps' partial sums, no barrier
// but the one before the combine. A column's value, per row: each thread's chain of fmaf over
// its parts in order (8 products each, in order), then the xor tree 16..1 in every warp, then
// the warps' sums in order ((w0 + w1) + w2) + w3: it depends on k alone, never on rpb, the grid
// or the other rows of the batch.

// Part q (elements 8q .. 8q + 7) of chunk c, dequantized. Types with a part decoder read just
// those bytes; the rest decode the whole chunk and keep 8 values (the same values either way).
template <class T>
__device__ __forceinline__ void mv_part(const u8* row, int c, int q, float* out) {
    if constexpr (T::PART) {
        T::part(row, c, q, out);
    } else {
        float t[32];
        T::chunk(row, c, t);
#pragma unroll
        for (int l = 0; l < 8; ++l) out[l] = q == 0 ? t[l] : q == 1 ? t[8 + l] : q == 2 ? t[16 + l] : t[24 + l];
    }
}

// Round the 8 values `v` of part s (lane `lane` of a warp whose 32 lanes hold 32 consecutive
// parts, 8·32 = 256 elements starting on a multiple of 256) per `xq`, as mv's ABI says; lanes
// without a part pass zeros and still take part in the shuffles (every lane of the warp calls it
// with the same xq).
// The largest magnitude of a Q8_0 chunk whose four parts (8 values `v` each) sit on lanes
// 4g .. 4g + 3 (NaN never wins), on all four lanes.
__device__ __forceinline__ float chunk_amax(const float* v) {
    float a = 0.0f;
#pragma unroll
    for (int l = 0; l < 8; ++l) a = fmaxf(a, fabsf(v[l]));
    a = fmaxf(a, __shfl_xor_sync(FULL_MASK, a, 1));
    return fmaxf(a, __shfl_xor_sync(FULL_MASK, a, 2));
}

// A Q8_K block's element of largest magnitude (the first on ties, NaN never wins; llama.cpp's
// quantize_row_q8_K's `max`) from a warp whose lane L holds its elements 8L .. 8L + 7, on every
// lane; *amax its magnitude (0: the block is all zeros, and max is then 0).
__device__ __forceinline__ float q8k_block_max(const float* v, int lane, float* amax) {
    float a = 0.0f;
    int at = 0x7fffffff;
#pragma unroll
    for (int l = 0; l < 8; ++l) {
        const float m = fabsf(v[l]);
        if (m > a) { a = m; at = 8 * lane + l; }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float a2 = __shfl_xor_sync(FULL_MASK, a, o);
        const int at2 = __shfl_xor_sync(FULL_MASK, at, o);
        if (a2 > a || (a2 == a && at2 < at)) { a = a2; at = at2; }
    }
    float mine = 0.0f;
#pragma unroll
    for (int l = 0; l < 8; ++l) if (a != 0.0f && at == 8 * lane + l) mine = v[l];
    *amax = a;
    return __shfl_sync(FULL_MASK, mine, a != 0.0f ? (at >> 3) : 0);
}

__device__ __forceinline__ void mv_round(float* v, int xq, int lane) {
    if (xq == 0) {
        // Q8_0: the chunk's four parts sit on lanes 4g .. 4g + 3.
        const float a = chunk_amax(v);
        float d, id;
        q8_0_scales(a, &d, &id);
#pragma unroll
        for (int l = 0; l < 8; ++l) v[l] = q8_0_value(v[l], id, d);
    } else if (xq == 1) {
        // Q8_K: the warp's 256 elements are one block; lane L holds elements 8L .. 8L + 7.
        float a;
        const float max = q8k_block_max(v, lane, &a);
#pragma unroll
        for (int l = 0; l < 8; ++l) v[l] = a == 0.0f ? 0.0f : q8_k_value(v[l], max);
    } else if (xq == 2) {
#pragma unroll
        for (int l = 0; l < 8; ++l) v[l] = f16_to_f32(f32_to_f16(v[l]));
    }
}

// Part s's 8 values `v` rounded as mv_round's Q8_0 (xq 0) rounds them, kept as codes for the
// integer products (MvX); the same lanes, shuffles and scales, so code · d is mv_round's value.
template <bool MIN>
__device__ __forceinline__ MvX mv_round_i8(const float* v) {
    const float a = chunk_amax(v);
    float d, id;
    q8_0_scales(a, &d, &id);
    u32 p[2] = {0u, 0u};
#pragma unroll
    for (int l = 0; l < 8; ++l) {
        const int qi = (int)fminf(fmaxf(rintf(__fmul_rn(v[l], id)), -128.0f), 127.0f);
        p[l >> 2] |= ((u32)qi & 0xffu) << (8 * (l & 3));
    }
    MvX x{p[0], p[1], d, 0.0f};
    if (MIN) {  // uniform: the chunk's code sum over its four lanes (exact), then Q8_1's s
        int si = __dp4a((int)p[1], 0x01010101, __dp4a((int)p[0], 0x01010101, 0));
        si += __shfl_xor_sync(FULL_MASK, si, 1);
        si += __shfl_xor_sync(FULL_MASK, si, 2);
        x.s = f16_to_f32(f32_to_f16(__fmul_rn(__fdiv_rn(a, 127.0f), (float)si)));
    }
    return x;
}

// The rms_norm kernel's scale 1 / sqrt(mean(x²) + eps) of row `xr` as that kernel computes it
// with its launch of 256 threads (f64, strided partials, xor trees, warps in order), from a block
// of 128: thread t plays threads t and t + 128. Every thread calls it; `red` holds 9 doubles.
// CG: the row is read from L2 (`ld.global.cg`: other blocks of this launch wrote it).
__device__ __forceinline__ float mv_ld_cg(const float* p) {
#ifdef ORCD_EMU
    return *p;
#else
    return __ldcg(p);
#endif
}
template <bool CG = false>
__device__ double rms_scale_256(const float* xr, int cols, float eps, double* red) {
    const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
    double a = 0.0, b = 0.0;
#ifndef X_SERIAL
    // Both partials' loads of up to four strides each go out together, then the sums take them
    // in the same order (the default since stop 55, with mv_multi's and the attention staging's
    // loads ahead: H100, Qwen batch 1 +4.9% fast / +3.8% exact, docs/perf/GPU.md thirtieth
    // block; ORCD_NVRTC_DEFINES=X_SERIAL the A/B). The loops under X_SERIAL run a row of fewer
    // than four strides a thread (896: `b`'s 3; 640: 3 and 2) through NVRTC's one-load-a-trip
    // remainder loop — an L2 round trip after the wait per element. A stride past the row adds
    // +0.0 (x² ≥ 0, so the sums never hold −0: the same bits).
    for (int i0 = t; i0 < cols; i0 += 1024) {
        float va[4], vb[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int ia = i0 + 256 * j, ib = ia + 128;
            va[j] = ia < cols ? (CG ? mv_ld_cg(xr + ia) : xr[ia]) : 0.0f;
            vb[j] = ib < cols ? (CG ? mv_ld_cg(xr + ib) : xr[ib]) : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const double v = va[j], w = vb[j];
            a = __dadd_rn(a, __dmul_rn(v, v));
            b = __dadd_rn(b, __dmul_rn(w, w));
        }
    }
#else
    for (int i = t; i < cols; i += 256) {
        const double v = CG ? mv_ld_cg(xr + i) : xr[i];
        a = __dadd_rn(a, __dmul_rn(v, v));
    }
    for (int i = t + 128; i < cols; i += 256) {
        const double v = CG ? mv_ld_cg(xr + i) : xr[i];
        b = __dadd_rn(b, __dmul_rn(v, v));
    }
#endif
    a = warp_sum_d(a);
    b = warp_sum_d(b);
    if (lane == 0) { red[warp] = a; red[warp + 4] = b; }
    __syncthreads();
    if (warp == 0) {
        double v = lane < 8 ? red[lane] : 0.0;
        v = warp_sum_d(v);
        if (lane == 0) red[8] = v;
    }
    __syncthreads();
    const double sum = red[8];
    __syncthreads();
    return 1.0 / sqrt(sum / (double)cols + (double)eps);
}

// Part s's normalization (`valid` and `norm`): rms_norm's steps a value, then times `nw` when given.
__device__ __forceinline__ void mv_norm_x(int s, bool valid, float* v, bool norm, double sc, const float* nw) {
    if (valid && norm) {
#pragma unroll
        for (int l = 0; l < 8; ++l) {
            v[l] = rms_value(v[l], sc);
            if (nw) v[l] = __fmul_rn(v[l], nw[8 * s + l]);
        }
    }
}
// Load part s of activation row `xr` (8 floats; 32-byte aligned: rows are whole chunks), then,
// with `sc` (a row's rms scale, norm on), normalize it as rms_norm does (times `nw` when given).
__device__ __forceinline__ void mv_load_x(const float* xr, int s, bool valid, float* v, bool norm, double sc,
                                          const float* nw) {
    if (valid) {
        const float4 a = ((const float4*)xr)[2 * s], b = ((const float4*)xr)[2 * s + 1];
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
        mv_norm_x(s, true, v, norm, sc, nw);
    } else {
#pragma unroll
        for (int l = 0; l < 8; ++l) v[l] = 0.0f;
    }
}

// x̃ = x (rms-normalized first when `norm`, times `nw` if given) rounded per xq, rows of k
// elements: the values the mat-vec computes itself, written once for a mat-vec whose many
// columns would each round the same activation (the output head). grid (rows), block 128.
extern "C" __global__ void round_x(const float* x, float* y, int rows, int k, int xq, int norm, const float* nw,
                                   float eps) {
    __shared__ double red[9];
    pdl_trigger();
    pdl_wait();
    const int r = blockIdx.x;
    if (r >= rows || blockDim.x != MV_THREADS) return;  // uniform
    const int nsub = k / 8, lane = threadIdx.x & 31;
    const float* xr = x + (i64)r * k;
    float* yr = y + (i64)r * k;
    const double sc = norm ? rms_scale_256(xr, k, eps, red) : 1.0;
    for (int s0 = 0; s0 < nsub; s0 += MV_THREADS) {  // uniform: all lanes reach the shuffles
        const int s = s0 + threadIdx.x;
        float v[8];
        mv_load_x(xr, s, s < nsub, v, norm, sc, nw);
        mv_round(v, xq, lane);
        if (s < nsub) {
            ((float4*)yr)[2 * s] = make_float4(v[0], v[1], v[2], v[3]);
            ((float4*)yr)[2 * s + 1] = make_float4(v[4], v[5], v[6], v[7]);
        }
    }
}

// The column's result for each row: bias, GLU and residual as the ABI says.
__device__ __forceinline__ void mv_finish(float v, float v2, bool pair, i64 o, i64 wrow, const float* bias,
                                          const float* res, int act, float* y) {
    if (bias) v = __fadd_rn(v, bias[wrow]);  // bias[e·m + j]
    if (pair) v = glu_value(v, v2, act);     // the glu kernel's value of (g, u)
    if (res) v = __fadd_rn(res[o], v);
    y[o] = v;
}

// The xor tree 16..1 over a warp of a column's partial sum (and of its GLU partner's, `pair`).
__device__ __forceinline__ void mv_warp_sum(float* v, float* v2, bool pair) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        *v = __fadd_rn(*v, __shfl_xor_sync(FULL_MASK, *v, o));
        if (pair) *v2 = __fadd_rn(*v2, __shfl_xor_sync(FULL_MASK, *v2, o));
    }
}

// Up to three projections of one input in one launch (kernels/ABI.md `matvec_<ty>`): global
// column jj < m is W's, then mb of Wb's, then mc of Wc's, each with its bias and output.
struct MvSel {
    const u8* w;
    const float* bias;
    float* y;
    i64 m, j;
};
__device__ __forceinline__ MvSel mv_select(i64 jj, const u8* w, const float* bias, float* y, i64 m, const u8* wb,
                                           const float* bias_b, float* yb, i64 mb, const u8* wc,
                                           const float* bias_c, float* yc, i64 mc) {
    if (jj < m) return MvSel{w, bias, y, m, jj};
    if (jj < m + mb) return MvSel{wb, bias_b, yb, mb, jj - m};
    return MvSel{wc, bias_c, yc, mc, jj - m - mb};
}

// The fused RoPE and KV store of matvec8r_ (kernels/ABI.md): q, k and v of one decode row from
// one launch, q rotated into y, the rotated k and v straight into the cache (no k or v tensor).
struct RopeKv {
    const unsigned *pos, *seq;
    int head_dim, neox;
    float freq_base, freq_scale;
    int yarn_ramp;
    float ext_factor, corr0, corr1;
    double mscale;
    const float* freq_factors;
    void *kc, *vc;
    int il, n_seq, n_ctx, kv_f16;
    // matvec8r_ with the step's `rope_table` (non-null): pair i of row r's mscale · sin and
    // mscale · cos at tab[2 (r · head_dim/2 + i)] and + 1, read after the wait instead of
    // rope_angle before it (the same values: rope_table computes them with rope_angle).
    const double* tab = nullptr;
};

// A post-norm and its residual add folded into the mat-vec that reads their sum (gemma-3's FFN
// GLU after the attention's post-norm: matvec8gp_; the next layer's q·k·v after the FFN's:
// matvec8p_, off by default): the block's activation row is
// h = x + rms_norm(pre.x) · pre.w, computed by every block as the `rms_norm` kernel with `res`
// computes it (rms_scale_256, then its three rounded steps a value: the same bits), into shared
// memory; block 0 also stores it at pre.h (the residual of the FFN's output, read by later
// launches only). One row, k at most 8 · MV_THREADS.
struct MvPre {
    const float *x, *w;
    float eps;
    float* h;
};
// The global column of a RoPE block's c-th column (blocks of 8 columns; heads are whole blocks):
// a NeoX block of q or k takes pairs i0 .. i0 + 3 of its head (columns i0 + c) and their partners
// (half + i0 + c - 4), so every pair is finished in one block; GPT-J pairs sit side by side.
// The batched form (matvecqr_ / matvecfr_) takes blocks of C columns: pairs i0 .. i0 + C/2 - 1.
template <int C = 8>
__device__ __forceinline__ i64 mv_rope_col(i64 jj0, int c, i64 m, i64 mb, const RopeKv* rk) {
    if (!rk->neox || jj0 >= m + mb) return jj0 + c;
    const i64 base = jj0 < m ? 0 : m, local = jj0 - base;
    const int hd = rk->head_dim, i0 = (int)(local % hd) / 2;
    return base + (local / hd) * hd + (c < C / 2 ? i0 + c : hd / 2 + i0 + c - C / 2);
}

// The end of a multi-column block: each of its C·R sums (column c = u / R, row i = u % R;
// `acc2` the GLU partner's) reduced by the xor tree in every warp into `red`, then a barrier.
template <int CR, int R>
__device__ __forceinline__ void mv_reduce_warps(const float* acc, const float* acc2, bool pair, int nr,
                                                float (*red)[CR][MV_WARPS]) {
    const int lane = threadIdx.x & 31, wp = threadIdx.x >> 5;
#pragma unroll
    for (int u = 0; u < CR; ++u) {
        if (u % R < nr) {  // uniform
            float v = acc[u], v2 = acc2[u];
            mv_warp_sum(&v, &v2, pair);
            if (lane == 0) { red[0][u][wp] = v; red[1][u][wp] = v2; }
        }
    }
    __syncthreads();
}
// mv_reduce_warps transposed, for blocks of many sums (the batched entry points' 16 or 32, each
// with its GLU partner's): lane l's partials of every sum go to shared memory (16-byte stores),
// then lane u of each warp adds its warp's 32 partials of sum u in the xor tree's order — lanes
// i and i + 16 for i < 16, then i and i + 8 of those, + 4, + 2, + 1: the value every lane of
// mv_warp_sum ends with (each step adds the same two values, a + b = b + a exactly) — in one
// thread: 8 stores, 32 loads and 31 adds a warp for 32 sums instead of 5 shuffles and 5 adds
// each. Same `red`, same barrier after.
#define MV_T_PAD 4  // a lane's row of partials padded so 8 lanes' 16-byte stores hit distinct banks
template <int CR, int R, bool PAIR>
__device__ __forceinline__ void mv_reduce_warps_t(const float* acc, const float* acc2, int nr,
                                                  float (*red)[CR][MV_WARPS]) {
    constexpr int NV = PAIR ? 2 * CR : CR, LD = NV + MV_T_PAD;
    static_assert(CR % 4 == 0 && NV <= 32, "mv_reduce_warps_t: whole float4s, a lane per sum");
    __shared__ __align__(16) float part[MV_WARPS][32][LD];
    const int lane = threadIdx.x & 31, wp = threadIdx.x >> 5;
    float* mine = part[wp][lane];
#pragma unroll
    for (int q = 0; q < CR; q += 4) {
        *(float4*)(mine + q) = make_float4(acc[q], acc[q + 1], acc[q + 2], acc[q + 3]);
        if (PAIR) *(float4*)(mine + CR + q) = make_float4(acc2[q], acc2[q + 1], acc2[q + 2], acc2[q + 3]);
    }
    __syncwarp();  // lane u reads only its own warp's rows
    if (lane < NV && (lane % CR) % R < nr) {
        float t[16];
#pragma unroll
        for (int i = 0; i < 16; ++i) t[i] = __fadd_rn(part[wp][i][lane], part[wp][i + 16][lane]);
#pragma unroll
        for (int i = 0; i < 8; ++i) t[i] = __fadd_rn(t[i], t[i + 8]);
#pragma unroll
        for (int i = 0; i < 4; ++i) t[i] = __fadd_rn(t[i], t[i + 4]);
        t[0] = __fadd_rn(t[0], t[2]);
        t[1] = __fadd_rn(t[1], t[3]);
        t[0] = __fadd_rn(t[0], t[1]);
        red[lane / CR][lane % CR][wp] = t[0];
    }
    __syncthreads();
}
// Then thread u < C·R adds the warps' sums in order and finishes column jj0 + u / R of row
// r0 + u % R (bias, GLU, residual: mv_finish).
template <int CR, int R>
__device__ __forceinline__ void mv_store_cols(float (*red)[CR][MV_WARPS], bool pair, int nr, i64 r0, i64 jj0,
                                              i64 total, const u8* w, const float* bias, float* y, i64 m,
                                              const u8* wb, const float* bias_b, float* yb, i64 mb, const u8* wc,
                                              const float* bias_c, float* yc, i64 mc, const float* res, int act) {
    if (threadIdx.x < CR) {
        const int u = threadIdx.x, i = u % R;
        const i64 jj = jj0 + u / R;
        if (i < nr && jj < total) {
            float v = red[0][u][0], v2 = red[1][u][0];
#pragma unroll
            for (int q = 1; q < MV_WARPS; ++q) {
                v = __fadd_rn(v, red[0][u][q]);
                v2 = __fadd_rn(v2, red[1][u][q]);
            }
            const MvSel sel = mv_select(jj, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
            mv_finish(v, v2, pair, (r0 + i) * sel.m + sel.j, sel.j, sel.bias, res, act, sel.y);
        }
    }
}

#ifdef QKV_PRE_REG
#define MV_PRE_REG true
#else
#define MV_PRE_REG false
#endif
// C > 1 (part-decodable types, rpb ≤ R, no ids): the block takes columns blockIdx.x·C .. + C - 1.
// Each thread loads its part of every one of them before decoding any (C columns' bytes in
// flight, issued before the norm's barriers), and loads, normalizes and rounds each activation
// part once for all C. Every column's sum is the C = 1 order, so its value is the same.
template <class T, int C, int R, bool PAIR, int U, bool ROPE = false, bool PRE = false>
__device__ __forceinline__ void mv_multi(const u8* w, const float* x, int k, i64 row_bytes, const float* res,
                                         int xq, const u8* w2_, int act, int norm, const float* nw, float eps,
                                         const float* bias, float* y, i64 m, const u8* wb, const float* bias_b,
                                         float* yb, i64 mb, const u8* wc, const float* bias_c, float* yc, i64 mc,
                                         i64 r0, int nr, const RopeKv* rk = nullptr, const MvPre* pre = nullptr) {
    static_assert(T::PART && C * R <= MV_MAX_ROWS, "mv_multi: part-decodable types, C·R accumulators");
    static_assert(!ROPE || (C == 8 && R == 1 && !PAIR), "mv_multi: RoPE blocks are 8 columns of one row");
    static_assert(!PRE || (R == 1 && !ROPE), "mv_multi: a folded post-norm is one row's");
    // Only PAIR instances take a GLU pair (the registers of a second weight's parts).
    const u8* const w2 = PAIR ? w2_ : nullptr;
#if defined(MV_ONLY_FAST)
    // A module for the fast numerics alone (backend.rs): a 32-element type's one-row mat-vec
    // always takes the Q8_0 codes there, so the float path is compiled out. A k-quant keeps
    // its runtime choice (Q8_K, or round_x's floats, -1, on a wide output).
    if constexpr (FastXq<T>::v == 0) xq = 0;
#elif defined(MV_ONLY_EXACT)
    // A module for the exact numerics alone: the activation is never rounded (xq -1).
    xq = -1;
#endif
    __shared__ double mv_sc[R];
    __shared__ double mv_redd[9];
    __shared__ float mv_red[2][C * R][MV_WARPS];
    const int lane = threadIdx.x & 31;
    const i64 total = m + mb + mc, jj0 = (i64)blockIdx.x * C;
    const u8* wr[C];
#pragma unroll
    for (int c = 0; c < C; ++c) {
        const i64 jc = ROPE ? mv_rope_col(jj0, c, m, mb, rk) : jj0 + c;
        const i64 jj = jc < total ? jc : total - 1;  // past the end: a real row, result unused
        const MvSel sel = mv_select(jj, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
        wr[c] = sel.w + sel.j * row_bytes;
    }
    // With w2 (a GLU pair: no further projections, so every column is W's) W2's row of column c
    // sits where W's does.
    auto wr2 = [&](int c) { return w2 + (wr[c] - w); };
    const int nsub = k / 8;
    float acc[C * R], acc2[C * R];
#pragma unroll
    for (int u = 0; u < C * R; ++u) { acc[u] = 0.0f; acc2[u] = 0.0f; }
    // U loop iterations' parts (U·128 parts a row) are loaded before any is decoded: a long row
    // is one memory round trip per U iterations, not one per iteration.
    MvRaw raw[U][C], raw2[U][C];
    auto load = [&](int s0) {
#pragma unroll
        for (int it = 0; it < U; ++it) {
            const int s = s0 + it * MV_THREADS + threadIdx.x;
            if (s < nsub) {
#pragma unroll
                for (int c = 0; c < C; ++c) {
                    raw[it][c] = T::raw(wr[c], s >> 2, s & 3);
                    if (w2) raw2[it][c] = T::raw(wr2(c), s >> 2, s & 3);
                }
            }
        }
    };
    load(0);  // the first parts' bytes go out before the norm's reductions
    // The norm weights of a row of at most 128 parts (one pass) are constant too: each thread
    // stages its own part's 8 in shared memory before the wait and reads back only those (no
    // barrier), instead of a dependent global load after the norm's reductions.
    __shared__ float mv_nw[MV_THREADS * 8];
    const bool nw_pre = norm && nw && nsub <= MV_THREADS;
    if (nw_pre && (int)threadIdx.x < nsub) {
#pragma unroll
        for (int l = 0; l < 8; ++l) mv_nw[8 * threadIdx.x + l] = nw[8 * threadIdx.x + l];
    }
    const float* nwx = nw_pre ? mv_nw : nw;
    // The folded post-norm's weight (PRE): staged as the norm's, before the wait.
    __shared__ float mv_pw[PRE ? MV_THREADS * 8 : 1];
    if (PRE && (int)threadIdx.x < nsub) {
#pragma unroll
        for (int l = 0; l < 8; ++l) mv_pw[8 * threadIdx.x + l] = pre->w[8 * threadIdx.x + l];
    }
    // RoPE: the block's four pairs' angles need pos alone (an upload): before the wait.
    __shared__ double mv_rs[2][4];
    const bool rot = ROPE && jj0 < m + mb;  // a q or k block (uniform)
    const bool rtab = ROPE && rk->tab;      // the step's table (uniform)
    int rp_i = 0;
    if (ROPE && rot && threadIdx.x < 4) {
        const int hd = rk->head_dim;
        rp_i = (int)((jj0 < m ? jj0 : jj0 - m) % hd) / 2 + (int)threadIdx.x;
        if (!rtab) {
            rope_angle(rp_i, rk->pos[r0], hd, rk->freq_base, rk->freq_scale, rk->yarn_ramp, rk->ext_factor, rk->corr0,
                       rk->corr1, rk->mscale, rk->freq_factors, &mv_rs[0][threadIdx.x], &mv_rs[1][threadIdx.x]);
        }
    }
    // MV_ANAT_* (ORCD_NVRTC_DEFINES, diagnostics for timing only: the values are WRONG): leave one
    // stage of the one-row mat-vecs out, so a bench's difference is that stage's cost (METHOD.md:
    // time variants that leave a stage out) — NO_WAIT the PDL wait (races the kernel before),
    // NO_NORM the RMS reduction (scale 1), NO_X the activation's loads (constant parts).
    // MV_PROF (ORCD_NVRTC_DEFINES=MV_PROF, diagnostics): thread 0 of each launch's block 0
    // prints its clock at each phase (`mvprof …`; ci/gpu-quick.sh PROF=1 sums them up).
#ifdef MV_PROF
    long long mp_t[6];
#define MP_T(k) mp_t[k] = clock64()
#define MP_PRINT()                                                                                               \
    if (blockIdx.x == 0 && threadIdx.x == 0)                                                                     \
        printf("mvprof C%d R%d P%d U%d k %d norm %d rope %d wait %lld nrm %lld dot %lld red %lld store %lld\n", C, \
               R, (int)PAIR, U, k, norm, (int)ROPE, mp_t[1] - mp_t[0], mp_t[2] - mp_t[1], mp_t[3] - mp_t[2],      \
               mp_t[4] - mp_t[3], mp_t[5] - mp_t[4])
#else
#define MP_T(k)
#define MP_PRINT()
#endif
    MP_T(0);
#ifdef PIN_PARAMS
    // ORCD_NVRTC_DEFINES=PIN_PARAMS (being timed; no value changes): the parameters read after
    // the wait held in registers from before it. Each is a constant-bank load, and a launch's
    // bank is new, so one first read after the wait is a miss on the chain (ncu, H200: `imc`
    // 7–20% of the decode kernels' stall samples).
    // The activation's address first (the chain's first load), then the output's and the
    // residual's. Not in matvec8_'s instances (64 registers under 8 blocks an SM: they spill).
    if constexpr (PAIR || U > 1 || ROPE) asm volatile("" : "+l"(x), "+l"(res), "+l"(y), "+l"(m), "+r"(act));
#endif
#ifndef MV_ANAT_NO_WAIT
    pdl_wait();  // x, res and y belong to the kernels before this one
#endif
    // The table's two values go out now and are first needed after the sums: their round trip
    // runs beside the norm and the dots (the step's rope_table wrote them: after the wait).
    double rt_s = 0.0, rt_c = 0.0;
    if (ROPE && rot && rtab && threadIdx.x < 4) {
        const double* t = rk->tab + 2 * ((i64)r0 * (rk->head_dim / 2) + rp_i);
        rt_s = t[0];
        rt_c = t[1];
    }
    // The activation row: x, or with PRE the sum the folded post-norm makes in shared memory.
    const float* xs = x;
    if constexpr (PRE && (PAIR || MV_PRE_REG)) {
        // The GLU pair's instances have registers to spare (MVM_BOUNDS, MVG_BOUNDS; matvec8p_'s
        // too with QKV_PRE_REG, under MVM_BOUNDS): this
        // thread's part of both rows is loaded once, in flight beside the post-norm's reduction
        // (measured faster than the form below: docs/perf/GPU.md, twenty-eighth block).
        __shared__ __align__(16) float mv_h[MV_THREADS * 8];
        const int t = threadIdx.x;
        float px[8], pr[8];
        if (t < nsub) {
            mv_load_x(pre->x, t, true, px, false, 1.0, nullptr);
            mv_load_x(x, t, true, pr, false, 1.0, nullptr);
        }
        const double psc = rms_scale_256(pre->x, k, pre->eps, mv_redd);  // its barriers order mv_pw too
        if (t < nsub) {
            const bool store = blockIdx.x == 0 && blockIdx.y == 0;
#pragma unroll
            for (int l = 0; l < 8; ++l) {
                const float h = rms_value_add(px[l], psc, mv_pw[8 * t + l], pr[l]);
                mv_h[8 * t + l] = h;
                if (store) pre->h[8 * t + l] = h;
            }
        }
        __syncthreads();
        xs = mv_h;
    } else if constexpr (PRE) {
        // The residual into shared memory, then the post-norm's scale (rms_scale_256 reads
        // pre.x with the same stride), then each value as `rms_norm` with `res` makes it. Nothing
        // lives in registers across the reductions (matvec8p_ keeps 64 a thread).
        __shared__ __align__(16) float mv_h[MV_THREADS * 8];
        for (int i = threadIdx.x; i < k; i += MV_THREADS) mv_h[i] = x[i];
        const double psc = rms_scale_256(pre->x, k, pre->eps, mv_redd);  // its barriers order mv_pw too
        const bool store = blockIdx.x == 0 && blockIdx.y == 0;
        for (int i = threadIdx.x; i < k; i += MV_THREADS) {
            const float h = rms_value_add(pre->x[i], psc, mv_pw[i], mv_h[i]);
            mv_h[i] = h;
            if (store) pre->h[i] = h;
        }
        __syncthreads();
        xs = mv_h;
    }
    MP_T(1);
#ifdef MV_ANAT_NO_NORM
    if (norm) {  // uniform
        if ((int)threadIdx.x < nr) mv_sc[threadIdx.x] = 1.0;
        __syncthreads();
    }
#else
    if (norm) {  // uniform
        for (int i = 0; i < nr; ++i) {
            const double sc = rms_scale_256(xs + (r0 + i) * k, k, eps, mv_redd);
            if (threadIdx.x == 0) mv_sc[i] = sc;
        }
        __syncthreads();
    }
#endif
    MP_T(2);
    for (int g0 = 0; g0 < nsub; g0 += U * MV_THREADS) {  // uniform: all lanes reach the shuffles
        if (g0 > 0) load(g0);
#if !defined(X_SERIAL) && !defined(MV_ANAT_NO_X)
        // A one-row block's U iterations' activation parts are all loaded here, before any is
        // used (the same values; X_SERIAL the A/B): each iteration's load otherwise follows the
        // last one's products, an L2 round trip after the wait an iteration (a down
        // projection's 4,864-wide row: five).
        constexpr bool XA = R == 1 && U > 1;
        float xa[XA ? U : 1][8];
        if constexpr (XA) {
#pragma unroll
            for (int it = 0; it < U; ++it) {
                const int s = g0 + it * MV_THREADS + threadIdx.x;
                mv_load_x(xs + r0 * k, s, s < nsub, xa[it], false, 1.0, nullptr);
            }
        }
#endif
#pragma unroll
        for (int it = 0; it < U; ++it) {
            const int s = g0 + it * MV_THREADS + threadIdx.x;
            if (g0 + it * MV_THREADS >= nsub) break;  // uniform over the block
            const bool valid = s < nsub;
#pragma unroll
            for (int i = 0; i < R; ++i) {
                if (i < nr) {  // uniform
                    float xv[8];
#ifdef MV_ANAT_NO_X
#pragma unroll
                    for (int l = 0; l < 8; ++l) xv[l] = valid ? 0.25f * (float)(l + 1) : 0.0f;
#elif !defined(X_SERIAL)
                    if constexpr (XA) {
#pragma unroll
                        for (int l = 0; l < 8; ++l) xv[l] = xa[it][l];
                        mv_norm_x(s, valid, xv, norm != 0, norm ? mv_sc[i] : 1.0, nwx);
                    } else {
                        mv_load_x(xs + (r0 + i) * k, s, valid, xv, norm != 0, norm ? mv_sc[i] : 1.0, nwx);
                    }
#else
                    mv_load_x(xs + (r0 + i) * k, s, valid, xv, norm != 0, norm ? mv_sc[i] : 1.0, nwx);
#endif
                    if (xq == 0) {  // uniform: the fast numerics' integer products
                        const MvX xi = mv_round_i8<T::MIN>(xv);
                        if (valid) {
#pragma unroll
                            for (int c = 0; c < C; ++c) {
                                acc[c * R + i] = T::dot(raw[it][c], s & 3, xi, acc[c * R + i]);
                                if (w2) acc2[c * R + i] = T::dot(raw2[it][c], s & 3, xi, acc2[c * R + i]);
                            }
                        }
                        continue;
                    }
                    mv_round(xv, xq, lane);
                    if (valid) {
#pragma unroll
                        for (int c = 0; c < C; ++c) {
                            float wq[8];
                            T::dec(raw[it][c], s & 3, wq);
                            float a = acc[c * R + i];
#pragma unroll
                            for (int l = 0; l < 8; ++l) a = fmaf(wq[l], xv[l], a);
                            acc[c * R + i] = a;
                            if (w2) {
                                T::dec(raw2[it][c], s & 3, wq);
                                float a2 = acc2[c * R + i];
#pragma unroll
                                for (int l = 0; l < 8; ++l) a2 = fmaf(wq[l], xv[l], a2);
                                acc2[c * R + i] = a2;
                            }
                        }
                    }
                }
            }
        }
    }
    MP_T(3);
    if (ROPE && rot && rtab && threadIdx.x < 4) {  // read after mv_reduce_warps' barrier
        mv_rs[0][threadIdx.x] = rt_s;
        mv_rs[1][threadIdx.x] = rt_c;
    }
    mv_reduce_warps<C * R, R>(acc, acc2, w2 != nullptr, nr, mv_red);
    MP_T(4);
    if constexpr (ROPE) {
        __shared__ float mv_fin[8];
        if (threadIdx.x < 8) {  // the 8 columns' values, bias added (as mv_finish)
            const int c = threadIdx.x;
            float v = mv_red[0][c][0];
#pragma unroll
            for (int q = 1; q < MV_WARPS; ++q) v = __fadd_rn(v, mv_red[0][c][q]);
            const MvSel sel = mv_select(mv_rope_col(jj0, c, m, mb, rk), w, bias, y, m, wb, bias_b, yb, mb, wc,
                                        bias_c, yc, mc);
            if (sel.bias) v = __fadd_rn(v, sel.bias[sel.j]);
            mv_fin[c] = v;
        }
        __syncthreads();
        // The row's cache slot (rows outside the cache are not stored, as kv_write).
        const u32 sq = rk->seq[r0], p = rk->pos[r0];
        const i64 slot = (sq < (u32)rk->n_seq && p < (u32)rk->n_ctx) ? ((i64)rk->il * rk->n_seq + sq) * rk->n_ctx + p : -1;
        auto store = [&](void* cache, i64 e, float val) {
            if (rk->kv_f16) ((u16*)cache)[e] = f32_to_f16(val);
            else ((float*)cache)[e] = val;
        };
        if (!rot) {  // v: straight into the cache
            if (threadIdx.x < 8 && slot >= 0) store(rk->vc, slot * mc + (jj0 - m - mb) + threadIdx.x, mv_fin[threadIdx.x]);
        } else if (threadIdx.x < 4) {
            const int t = threadIdx.x;
            const i64 c0 = mv_rope_col(jj0, rk->neox ? t : 2 * t, m, mb, rk);
            const i64 c1 = mv_rope_col(jj0, rk->neox ? t + 4 : 2 * t + 1, m, mb, rk);
            float ra, rb;
            rope_pair(mv_fin[rk->neox ? t : 2 * t], mv_fin[rk->neox ? t + 4 : 2 * t + 1], mv_rs[0][t], mv_rs[1][t], &ra,
                      &rb);
            if (jj0 < m) {  // q: the rotated queries are the output
                y[r0 * m + c0] = ra;
                y[r0 * m + c1] = rb;
            } else if (slot >= 0) {  // k: the rotated keys into the cache
                store(rk->kc, slot * mb + (c0 - m), ra);
                store(rk->kc, slot * mb + (c1 - m), rb);
            }
        }
        MP_T(5);
        MP_PRINT();
        return;
    }
    mv_store_cols<C * R, R>(mv_red, w2 != nullptr, nr, r0, jj0, total, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c,
                            yc, mc, res, act);
    MP_T(5);
    MP_PRINT();
#undef MP_T
#undef MP_PRINT
}

template <class T, int C = 1, int R = MV_MAX_ROWS, bool PAIR = true, int U = 1>
__device__ __forceinline__ void matvec_t(const u8* w, const float* x, float* y, int n_out, int k, int m,
                                         i64 row_bytes, const unsigned* ids, int ids_k, int shared,
                                         const float* bias, int rpb, const float* res, int xq, const u8* w2,
                                         int act, int norm, const float* nw, float eps, const u8* wb,
                                         const float* bias_b, float* yb, int mb, const u8* wc,
                                         const float* bias_c, float* yc, int mc) {
    __shared__ double mv_sc[MV_MAX_ROWS];
    __shared__ double mv_redd[9];
    const int lane = threadIdx.x & 31, wp = threadIdx.x >> 5;
    pdl_trigger();
    if (rpb <= 0 || rpb > MV_MAX_ROWS || blockDim.x != MV_THREADS) return;  // uniform: the ABI's launch
    const i64 r0 = (i64)blockIdx.y * rpb;
    if (r0 >= n_out) return;  // uniform over the block
    const int nr = (int)(n_out - r0 < rpb ? n_out - r0 : rpb);
    if constexpr (C > 1) {
        if (ids || rpb > R || (w2 && !PAIR)) return;  // not the ABI's launch of a multi-column entry point
        mv_multi<T, C, R, PAIR, U>(w, x, k, row_bytes, res, xq, w2, act, norm, nw, eps, bias, y, m, wb, bias_b, yb, mb, wc,
                          bias_c, yc, mc, r0, nr);
        return;
    } else {
    pdl_wait();  // ids, x, res and y belong to the kernels before this one
    // Row i's activation: x + xrow(i)·k (rows, or with ids the row's token, computed per use).
    auto xrow = [&](int i) -> i64 {
        const i64 r = r0 + i;
        return ids ? ((shared && ids_k > 0) ? r / ids_k : r) : r;
    };
    if (norm) {  // uniform: every thread takes part in each row's reduction
        for (int i = 0; i < nr; ++i) {
            const double sc = rms_scale_256(x + xrow(i) * k, k, eps, mv_redd);
            if (threadIdx.x == 0) mv_sc[i] = sc;
        }
        __syncthreads();
    }
    const i64 e0 = ids ? (i64)ids[r0] * m : 0;  // the expert's first row (rpb is 1 with ids)
    float acc[MV_MAX_ROWS], acc2[MV_MAX_ROWS];
#pragma unroll
    for (int i = 0; i < MV_MAX_ROWS; ++i) { acc[i] = 0.0f; acc2[i] = 0.0f; }
    if constexpr (T::FLOAT) {
        // Float weights: one column per warp, lane l takes elements l, l + 32, …
        const i64 jj = (i64)blockIdx.x * MV_WARPS + wp;
        if (jj >= (i64)m + mb + mc) return;  // uniform over the warp
        const MvSel c = mv_select(jj, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
        const i64 wrow = e0 + c.j;
        const u8* wr = c.w + wrow * row_bytes;
        const u8* wr2 = w2 ? w2 + wrow * row_bytes : nullptr;
        for (i64 e = lane; e < k; e += 32) {
            const float wv = T::elem(wr, e);
            const float wv2 = wr2 ? T::elem(wr2, e) : 0.0f;
#pragma unroll
            for (int i = 0; i < MV_MAX_ROWS; ++i) {
                if (i < nr) {
                    float xv = x[xrow(i) * k + e];
                    if (norm) {
                        xv = rms_value(xv, mv_sc[i]);
                        if (nw) xv = __fmul_rn(xv, nw[e]);
                    }
                    if (xq == 2) xv = f16_to_f32(f32_to_f16(xv));
                    acc[i] = fmaf(wv, xv, acc[i]);
                    if (wr2) acc2[i] = fmaf(wv2, xv, acc2[i]);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < MV_MAX_ROWS; ++i) {
            if (i < nr) {  // nr is uniform over the warp: the shuffles see all 32 lanes
                float v = acc[i], v2 = acc2[i];
                mv_warp_sum(&v, &v2, wr2 != nullptr);
                if (lane == 0) mv_finish(v, v2, wr2 != nullptr, (r0 + i) * c.m + c.j, wrow, c.bias, res, act, c.y);
            }
        }
    } else {
        __shared__ float mv_red[2][MV_WARPS][MV_MAX_ROWS];
        const i64 jj = blockIdx.x;                 // the block's column
        if (jj >= (i64)m + mb + mc) return;        // uniform over the block
        const MvSel c = mv_select(jj, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
        const i64 wrow = e0 + c.j;
        const u8* wr = c.w + wrow * row_bytes;
        const u8* wr2 = w2 ? w2 + wrow * row_bytes : nullptr;
        const int nsub = k / 8;
        for (int s0 = 0; s0 < nsub; s0 += MV_THREADS) {  // uniform: all lanes reach the shuffles
            const int s = s0 + threadIdx.x;
            const bool valid = s < nsub;
            // Part-decodable types with Q8_0-rounded activations (the fast numerics) take the
            // integer products, as the multi-column entry points do (the same value a column).
            if constexpr (T::PART) {
                if (xq == 0) {  // uniform
                    MvRaw rw{0u, 0u, 0u}, rw2{0u, 0u, 0u};
                    if (valid) {
                        rw = T::raw(wr, s >> 2, s & 3);
                        if (wr2) rw2 = T::raw(wr2, s >> 2, s & 3);
                    }
#pragma unroll
                    for (int i = 0; i < MV_MAX_ROWS; ++i) {
                        if (i < nr) {  // uniform
                            float xv[8];
                            mv_load_x(x + xrow(i) * k, s, valid, xv, norm != 0, norm ? mv_sc[i] : 1.0, nw);
                            const MvX xi = mv_round_i8<T::MIN>(xv);
                            if (valid) {
                                acc[i] = T::dot(rw, s & 3, xi, acc[i]);
                                if (wr2) acc2[i] = T::dot(rw2, s & 3, xi, acc2[i]);
                            }
                        }
                    }
                    continue;
                }
            }
            float wq[8], wq2[8];
            if (valid) {
                mv_part<T>(wr, s >> 2, s & 3, wq);
                if (wr2) mv_part<T>(wr2, s >> 2, s & 3, wq2);
            }
#pragma unroll
            for (int i = 0; i < MV_MAX_ROWS; ++i) {
                if (i < nr) {  // uniform
                    float xv[8];
                    mv_load_x(x + xrow(i) * k, s, valid, xv, norm != 0, norm ? mv_sc[i] : 1.0, nw);
                    mv_round(xv, xq, lane);
                    if (valid) {
                        float a = acc[i];
#pragma unroll
                        for (int l = 0; l < 8; ++l) a = fmaf(wq[l], xv[l], a);
                        acc[i] = a;
                        if (wr2) {
                            float a2 = acc2[i];
#pragma unroll
                            for (int l = 0; l < 8; ++l) a2 = fmaf(wq2[l], xv[l], a2);
                            acc2[i] = a2;
                        }
                    }
                }
            }
        }
#pragma unroll
        for (int i = 0; i < MV_MAX_ROWS; ++i) {
            if (i < nr) {
                float v = acc[i], v2 = acc2[i];
                mv_warp_sum(&v, &v2, wr2 != nullptr);
                if (lane == 0) { mv_red[0][wp][i] = v; mv_red[1][wp][i] = v2; }
            }
        }
        __syncthreads();
        if (threadIdx.x < nr) {
            const int i = threadIdx.x;
            float v = mv_red[0][0][i], v2 = mv_red[1][0][i];
#pragma unroll
            for (int q = 1; q < MV_WARPS; ++q) {
                v = __fadd_rn(v, mv_red[0][q][i]);
                v2 = __fadd_rn(v2, mv_red[1][q][i]);
            }
            mv_finish(v, v2, wr2 != nullptr, (r0 + i) * c.m + c.j, wrow, c.bias, res, act, c.y);
        }
    }
    }
}

// matvec8r_: the norm-fused q, k, v projections of one decode row (n_out 1, rpb 1, no ids or
// GLU; m, mb, mc multiples of 8, head_dim a multiple of 8 and at most 512, n_rot = head_dim),
// then RoPE of q and k and the KV store, in one launch (kernels/ABI.md).
template <class T>
__device__ __forceinline__ void matvec_rope_t(const u8* w, const float* x, float* y, int n_out, int k, int m,
                                              i64 row_bytes, const unsigned* ids, const float* bias, int rpb,
                                              int xq, const u8* w2, int norm, const float* nw, float eps,
                                              const u8* wb, const float* bias_b, float* yb, int mb, const u8* wc,
                                              const float* bias_c, float* yc, int mc, const RopeKv& rk) {
    pdl_trigger();
    if (rpb != 1 || n_out != 1 || blockDim.x != MV_THREADS || ids || w2 || rk.head_dim <= 0 || (rk.head_dim & 7) ||
        rk.head_dim > 2 * ROPE_MAX_HALF || (m | mb | mc) & 7) {
        return;  // not the ABI's launch
    }
    mv_multi<T, 8, 1, false, 1, true>(w, x, k, row_bytes, nullptr, xq, nullptr, 0, norm, nw, eps, bias, y, m, wb,
                                      bias_b, yb, mb, wc, bias_c, yc, mc, 0, 1, &rk);
}

// matvecq_ / matvecqg_ / matvecf_ / matvecfg_: the mat-vec of several rows (3 and more: a decode
// batch) from an activation normalized and rounded once for the launch, not again in every block:
// as codes (`quant_x_q8`, the fast numerics' integer products: matvecq_, matvecqg_; the output
// head takes them at any row count) or as the rounded floats of `round_x` (xq -1 after it: the
// exact numerics: matvecf_, matvecfg_). C columns × R rows a block,
// each thread's weight part loaded once for all R rows; the grid is flat, the rows' blocks of a
// column group adjacent (they share its weight bytes in L2). A row's value is the C = 1 order
// (kernels/ABI.md `matvec_<ty>`: the thread's fmaf chain over its parts, the xor tree, the warps
// in order) on the values the single-row entry points compute (quant_x_q8's codes are
// mv_round_i8's, round_x's floats mv_round's), so it is their bits: a row's value never depends
// on the batch it is in.
// One part's integer products for the R rows of a batched block (matvecq_t / matvecqp_t): the
// rows' codes of part s meet the C columns' weight parts, as mv_multi's with xq 0.
template <class T, int C, int R, bool PAIR>
__device__ __forceinline__ void mvq_codes_part(const MvRaw* raw, const MvRaw* raw2, const void* xin, const float* qd,
                                               const float* qs, int k, int nb, i64 r0, int nr, int s, float* acc,
                                               float* acc2) {
#pragma unroll
    for (int i = 0; i < R; ++i) {
        if (i < nr) {
            const i64 xr = r0 + i;
            const uint2 cq = ((const uint2*)((const i8*)xin + xr * k))[s];
            const MvX xi{cq.x, cq.y, qd[xr * nb + (s >> 2)], T::MIN ? qs[xr * nb + (s >> 2)] : 0.0f};
#pragma unroll
            for (int c = 0; c < C; ++c) {
                acc[c * R + i] = T::dot(raw[c], s & 3, xi, acc[c * R + i]);
                if (PAIR) acc2[c * R + i] = T::dot(raw2[c], s & 3, xi, acc2[c * R + i]);
            }
        }
    }
}

// matvecq_t's RoPE end (ROPE): column c of row i is mv_store_cols' value (the warps in order, then
// the bias); a q or k block's thread i·C/2 + p rotates row i's pair p (columns mv_rope_col's c and
// its partner) by the angles in `rs`, as the rope kernel does — q into y, k into the cache —; a v
// block's thread c·R + i stores its value into the cache, as kv_write does. Rows outside the cache
// are not stored.
template <int C, int R>
__device__ __forceinline__ void mvq_rope_store(float (*red)[C * R][MV_WARPS], double (*rs)[R * C / 2], bool rot, int nr,
                                               i64 r0, i64 jj0, i64 total, const u8* w, const float* bias, float* y,
                                               i64 m, const u8* wb, const float* bias_b, float* yb, i64 mb,
                                               const u8* wc, const float* bias_c, float* yc, i64 mc, const RopeKv* rk) {
    auto fin = [&](int c, int i, i64 jj) {
        float v = red[0][c * R + i][0];
#pragma unroll
        for (int q = 1; q < MV_WARPS; ++q) v = __fadd_rn(v, red[0][c * R + i][q]);
        const MvSel sel = mv_select(jj, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
        return sel.bias ? __fadd_rn(v, sel.bias[sel.j]) : v;
    };
    auto slot = [&](int i) -> i64 {
        const u32 sq = rk->seq[r0 + i], p = rk->pos[r0 + i];
        return (sq < (u32)rk->n_seq && p < (u32)rk->n_ctx) ? ((i64)rk->il * rk->n_seq + sq) * rk->n_ctx + p : -1;
    };
    auto store = [&](void* cache, i64 e, float val) {
        if (rk->kv_f16) ((u16*)cache)[e] = f32_to_f16(val);
        else ((float*)cache)[e] = val;
    };
    const int t = threadIdx.x;
    if (!rot) {  // v: straight into the cache
        const int c = t / R, i = t % R;
        const i64 jj = jj0 + c;
        if (t < C * R && i < nr && jj < total) {
            const i64 sl = slot(i);
            const float v = fin(c, i, jj);
            if (sl >= 0) store(rk->vc, sl * mc + (jj - m - mb), v);
        }
        return;
    }
    const int i = t / (C / 2), p = t % (C / 2);
    if (t >= R * C / 2 || i >= nr) return;
    const int ca = rk->neox ? p : 2 * p, cb = rk->neox ? p + C / 2 : 2 * p + 1;
    const i64 c0 = mv_rope_col<C>(jj0, ca, m, mb, rk), c1 = mv_rope_col<C>(jj0, cb, m, mb, rk);
    float ra, rb;
    rope_pair(fin(ca, i, c0), fin(cb, i, c1), rs[0][t], rs[1][t], &ra, &rb);
    if (jj0 < m) {  // q: the rotated queries are the output
        y[(r0 + i) * m + c0] = ra;
        y[(r0 + i) * m + c1] = rb;
    } else {
        const i64 sl = slot(i);
        if (sl >= 0) {  // k: the rotated keys into the cache
            store(rk->kc, sl * mb + (c0 - m), ra);
            store(rk->kc, sl * mb + (c1 - m), rb);
        }
    }
}

// With ROPE (matvecqr_ / matvecfr_: q, k, v of a decode batch, kernels/ABI.md): the block's C
// columns are C/2 RoPE pairs of one head (mv_rope_col; v's columns as they are), each row's angles
// computed before the wait; then the rotated q into y, the rotated k and v into the cache — the
// values rope_qk_kv_write writes from this kernel's plain outputs (the same sums, bias, angles and
// rope_pair), without their round trip and launch.
template <class T, int C, int R, bool PAIR, bool XF, bool ROPE = false>
__device__ __forceinline__ bool matvecq_t(const u8* w, const void* xin, const float* qd, const float* qs, float* y,
                                          int n_out, int k, int m, i64 row_bytes, const float* bias,
                                          const float* res, const u8* w2_, int act, const u8* wb,
                                          const float* bias_b, float* yb, int mb, const u8* wc,
                                          const float* bias_c, float* yc, int mc, const RopeKv* rk = nullptr) {
    static_assert(T::PART && C * R <= 32, "matvecq_t: part-decodable types, at most 32 accumulators");
    static_assert(!ROPE || (!PAIR && C % 2 == 0 && R * C / 2 <= MV_THREADS), "matvecq_t: RoPE pairs of one row");
    __shared__ float mv_red[2][C * R][MV_WARPS];
    pdl_trigger();
    if (blockDim.x != MV_THREADS || (w2_ != nullptr) != PAIR || n_out <= 0) return false;  // uniform: not the ABI's launch
    if (ROPE && (rk->head_dim <= 0 || rk->head_dim % C || rk->head_dim > 2 * ROPE_MAX_HALF || m % rk->head_dim ||
                 mb % rk->head_dim || res)) {
        return false;  // uniform: not the ABI's launch (heads are whole blocks)
    }
    const i64 nrb = ((i64)n_out + R - 1) / R, total = (i64)m + mb + mc;
    const i64 r0 = ((i64)blockIdx.x % nrb) * R, jj0 = ((i64)blockIdx.x / nrb) * C;
    if (jj0 >= total) return false;  // uniform over the block
    const int nr = (int)(n_out - r0 < R ? n_out - r0 : R);
    const u8* const w2 = PAIR ? w2_ : nullptr;
    const int nsub = k / 8, nb = k / 32;
    const bool rot = ROPE && jj0 < (i64)m + mb;  // a q or k block (uniform)
    const u8* wr[C];
#pragma unroll
    for (int c = 0; c < C; ++c) {
        const i64 jc = rot ? mv_rope_col<C>(jj0, c, m, mb, rk) : jj0 + c;
        const i64 jj = jc < total ? jc : total - 1;  // past the end: a real row, result unused
        const MvSel sel = mv_select(jj, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
        wr[c] = sel.w + sel.j * row_bytes;
    }
    // Row i's angles of pair p in slot i·C/2 + p: they need the positions alone (uploads), so
    // they are computed while the kernel before this one finishes.
    __shared__ double mq_rs[2][ROPE ? R * C / 2 : 1];
    if constexpr (ROPE) {
        const int t = threadIdx.x, i = t / (C / 2);
        if (rot && t < R * C / 2 && i < nr) {
            const int hd = rk->head_dim, pi = (int)((jj0 < m ? jj0 : jj0 - m) % hd) / 2 + t % (C / 2);
            rope_angle(pi, rk->pos[r0 + i], hd, rk->freq_base, rk->freq_scale, rk->yarn_ramp, rk->ext_factor,
                       rk->corr0, rk->corr1, rk->mscale, rk->freq_factors, &mq_rs[0][t], &mq_rs[1][t]);
        }
    }
    float acc[C * R], acc2[C * R];
#pragma unroll
    for (int u = 0; u < C * R; ++u) { acc[u] = 0.0f; acc2[u] = 0.0f; }
    MvRaw raw[C], raw2[C];
    auto load = [&](int s) {
        if (s < nsub) {
#pragma unroll
            for (int c = 0; c < C; ++c) {
                raw[c] = T::raw(wr[c], s >> 2, s & 3);
                if (PAIR) raw2[c] = T::raw(w2 + (wr[c] - w), s >> 2, s & 3);
            }
        }
    };
    load(threadIdx.x);  // the first parts' bytes go out before the wait (weights only)
    pdl_wait();         // the activation, res and y belong to the kernels before this one
    for (int s0 = 0; s0 < nsub; s0 += MV_THREADS) {
        const int s = s0 + threadIdx.x;
        if (s0 > 0) load(s);
        if (s >= nsub) continue;  // no shuffles in this loop
        if constexpr (XF) {  // rounded floats: 8 products a part in element order, as mv_multi's
#pragma unroll
            for (int i = 0; i < R; ++i) {
                if (i < nr) {
                    const float4* xr = (const float4*)((const float*)xin + (r0 + i) * k) + 2 * s;
                    const float4 a = xr[0], b = xr[1];
                    const float xv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
                    for (int c = 0; c < C; ++c) {
                        float wq[8];  // decoded again per row: registers, not loads
                        T::dec(raw[c], s & 3, wq);
                        float t = acc[c * R + i];
#pragma unroll
                        for (int l = 0; l < 8; ++l) t = fmaf(wq[l], xv[l], t);
                        acc[c * R + i] = t;
                        if (PAIR) {
                            T::dec(raw2[c], s & 3, wq);
                            float t2 = acc2[c * R + i];
#pragma unroll
                            for (int l = 0; l < 8; ++l) t2 = fmaf(wq[l], xv[l], t2);
                            acc2[c * R + i] = t2;
                        }
                    }
                }
            }
        } else {  // codes: the part's integer products
            mvq_codes_part<T, C, R, PAIR>(raw, raw2, xin, qd, qs, k, nb, r0, nr, s, acc, acc2);
        }
    }
    if constexpr (C * R * (PAIR ? 2 : 1) >= 16) {
        mv_reduce_warps_t<C * R, R, PAIR>(acc, acc2, nr, mv_red);
    } else {  // a few sums (matvecq1_): the shuffles cost no more, and no shared rows of partials
        mv_reduce_warps<C * R, R>(acc, acc2, PAIR, nr, mv_red);
    }
    if constexpr (ROPE) {
        mvq_rope_store<C, R>(mv_red, mq_rs, rot, nr, r0, jj0, total, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc,
                             mc, rk);
        return true;
    }
    mv_store_cols<C * R, R>(mv_red, PAIR, nr, r0, jj0, total, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc,
                            res, act);
    return true;
}

template <class T, int C, int R, bool PAIR>
__device__ __forceinline__ void matvecqp_t(const u8* w, const void* xin, const float* qd, const float* qs, float* y,
                                          int n_out, int k, int m, i64 row_bytes, const float* bias,
                                          const float* res, const u8* w2_, int act, const u8* wb,
                                          const float* bias_b, float* yb, int mb, const u8* wc,
                                          const float* bias_c, float* yc, int mc) {
    static_assert(T::PART && C * R <= 32, "matvecqp_t: part-decodable types, at most 32 accumulators");
    __shared__ float mv_red[2][C * R][MV_WARPS];
    pdl_trigger();
    if (blockDim.x != MV_THREADS || (w2_ != nullptr) != PAIR || n_out <= 0) return;  // uniform: not the ABI's launch
    const i64 nrb = ((i64)n_out + R - 1) / R, total = (i64)m + mb + mc;
    const i64 nblk = nrb * ((total + C - 1) / C);  // the ABI's flat grid
    const u8* const w2 = PAIR ? w2_ : nullptr;
    const int nsub = k / 8, nb = k / 32;
    // A launch of fewer blocks than the ABI's flat grid (the host's persistent grid,
    // ORCD_CUDA_MVQ_PERSIST): a block takes flat blocks b = blockIdx.x, + gridDim.x, … in turn
    // and loads the next one's first weight parts before this one's products, so its weight
    // latency hides behind the previous block's work. Each flat block's values are matvecq_t's.
    i64 b = blockIdx.x;
    if (b >= nblk) return;  // uniform over the block
    auto rows_of = [&](i64 bb, const u8** wr) {
        const i64 jj0 = (bb / nrb) * C;
#pragma unroll
        for (int c = 0; c < C; ++c) {
            const i64 jj = jj0 + c < total ? jj0 + c : total - 1;  // past the end: a real row, result unused
            const MvSel sel = mv_select(jj, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
            wr[c] = sel.w + sel.j * row_bytes;
        }
    };
    auto load = [&](const u8* const* wr, int s, MvRaw* raw, MvRaw* raw2) {
        if (s < nsub) {
#pragma unroll
            for (int c = 0; c < C; ++c) {
                raw[c] = T::raw(wr[c], s >> 2, s & 3);
                if (PAIR) raw2[c] = T::raw(w2 + (wr[c] - w), s >> 2, s & 3);
            }
        }
    };
    const u8* wr[C];
    MvRaw raw[C], raw2[C];
    rows_of(b, wr);
    load(wr, threadIdx.x, raw, raw2);  // the first parts' bytes go out before the wait (weights only)
    pdl_wait();                         // the activation, res and y belong to the kernels before this one
    for (;;) {
        const i64 r0 = (b % nrb) * R, jj0 = (b / nrb) * C, bn = b + gridDim.x;
        const int nr = (int)(n_out - r0 < R ? n_out - r0 : R);
        // The next flat block's first parts, in flight during this one's products and sums.
        MvRaw rn[C], rn2[C];
        if (bn < nblk) {  // uniform
            const u8* wn[C];
            rows_of(bn, wn);
            load(wn, threadIdx.x, rn, rn2);
        }
        float acc[C * R], acc2[C * R];
#pragma unroll
        for (int u = 0; u < C * R; ++u) { acc[u] = 0.0f; acc2[u] = 0.0f; }
        for (int s0 = 0; s0 < nsub; s0 += MV_THREADS) {
            const int s = s0 + threadIdx.x;
            if (s0 > 0) load(wr, s, raw, raw2);
            if (s >= nsub) continue;  // no shuffles in this loop
            mvq_codes_part<T, C, R, PAIR>(raw, raw2, xin, qd, qs, k, nb, r0, nr, s, acc, acc2);
        }
        mv_reduce_warps_t<C * R, R, PAIR>(acc, acc2, nr, mv_red);
        mv_store_cols<C * R, R>(mv_red, PAIR, nr, r0, jj0, total, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc,
                                mc, res, act);
        if (bn >= nblk) break;  // uniform
        __syncthreads();  // mv_red and the partials are rewritten by the next block's sums
        b = bn;
        rows_of(b, wr);
#pragma unroll
        for (int c = 0; c < C; ++c) {
            raw[c] = rn[c];
            if (PAIR) raw2[c] = rn2[c];
        }
    }
}

// D = A·B (int8, 16×32 by 32×8, int32 sums; C = 0): the PTX fragment layouts of kernels/emu/emu.h.
__device__ __forceinline__ void mma_s8_16832(int* d, const u32* a, const u32* b) {
#ifdef ORCD_EMU
    emu_mma_s8_16832(d, a, b);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%10,%10,%10,%10};"
        : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(0));
#endif
}

// The tensor-core mat-vecs' A fragment of block c (rows ra, rb: the lane's g and g + 8; bytes
// 4·t4 and 16 + 4·t4 of the block's 32 codes) and the two rows' scales of that block.
__device__ __forceinline__ void mvt_load_x(const i8* xa, const i8* xb, const float* qd, i64 ra, i64 rb, int nb,
                                           int c, int t4, u32* ax, float* dx) {
    ax[0] = *(const u32*)(xa + 32 * c + 4 * t4);
    ax[1] = *(const u32*)(xb + 32 * c + 4 * t4);
    ax[2] = *(const u32*)(xa + 32 * c + 16 + 4 * t4);
    ax[3] = *(const u32*)(xb + 32 * c + 16 + 4 * t4);
    dx[0] = qd[ra * nb + c];
    dx[1] = qd[rb * nb + c];
}

// matvect_q8_0 / matvectg_q8_0 (ORCD_CUDA_MVT=1, not yet timed): matvecq_'s / matvecqg_'s values
// (kernels/ABI.md) for batched rows of a Q8_0 weight with k ≤ 1,024, on the int8 tensor cores.
// The mat-vec's integer part sums are exact in any order, so one mma.m16n8k32 a part (the A
// operand's other 24 codes zeroed: 4 mmas a 32-element block) gives each part's Σ for 16 rows ×
// 8 columns; the float steps are then the mat-vec's own: part s = 4c + q belongs to thread slot
// s mod 128 (warp w = (c mod 32) / 8, lane 4 (c mod 8) + q), with k ≤ 1,024 one part a slot, its
// value fmaf(d_w · d_x, Σ, 0); each warp's 32 slots by the xor tree's pairing (lanes l and l + 16,
// then + 8, + 4, + 2, + 1: blocks a and a + 4, a + 2, a + 1, then parts q, q + 2, then q + 1), the
// four warps in order; then mv_finish. A tile is 16 rows × 16 columns (a GLU pair 8), grid
// (ceil(n_out / 16) · ceil((m + mb + mc) / cols)): row tiles of a column group adjacent, so the
// group's weights are read from DRAM once. Each warp loads all of its ≤ 8 blocks' fragments
// before its first mma: one round trip a block.
template <bool PAIR, int NT, bool WIDE = false>
__device__ __forceinline__ bool matvect_t(const u8* w, const void* xin, const float* qd, float* y, int n_out, int k,
                                          int m, i64 row_bytes, const float* bias, const float* res,
                                          const u8* w2_, int act, const u8* wb, const float* bias_b, float* yb,
                                          int mb, const u8* wc, const float* bias_c, float* yc, int mc) {
    constexpr int NCOL = 8 * NT;
    __shared__ float mt_red[PAIR ? 2 : 1][MV_WARPS][16][NCOL];
    pdl_trigger();
    // Uniform: not the ABI's launch (k a whole number of blocks, at most 32 of them).
    if (blockDim.x != MV_THREADS || (w2_ != nullptr) != PAIR || n_out <= 0 || k <= 0 || (k & 31) || k > 1024) return false;
    const i64 nrt = ((i64)n_out + 15) / 16, total = (i64)m + mb + mc;
    // A column group's row tiles go to bpg adjacent blocks (the grid: groups × bpg). WIDE (the
    // host's ORCD_CUDA_MVT_ROWS): bpg from the grid, each block taking rpt tiles in turn with the
    // group's weight fragments loaded once; else bpg = nrt, a tile a block. Each tile's values are
    // the same either way.
    const i64 ngroups = (total + NCOL - 1) / NCOL;
    const i64 bpg = WIDE && ngroups > 0 && (i64)gridDim.x >= ngroups ? (i64)gridDim.x / ngroups : nrt;
    const i64 rpt = (nrt + bpg - 1) / bpg;
    const i64 rt0 = ((i64)blockIdx.x % bpg) * rpt, jj0 = ((i64)blockIdx.x / bpg) * NCOL;
    const i64 rt1 = rt0 + rpt < nrt ? rt0 + rpt : nrt;
    if (jj0 >= total || rt0 >= nrt) return false;  // uniform over the block
    const int lane = threadIdx.x & 31, wp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const int nb = k / 32;
    const u8* const w2 = PAIR ? w2_ : nullptr;
    // B's column g of each 8-column tile, and the C columns 2·t4, 2·t4 + 1 (their scales): weight
    // rows (past the end: a real row, result unused).
    const u8 *wbr[NT], *wsr[NT][2];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
        const i64 jb = jj0 + 8 * nt + g;
        const MvSel sb = mv_select(jb < total ? jb : total - 1, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
        wbr[nt] = sb.w + sb.j * row_bytes;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const i64 js = jj0 + 8 * nt + 2 * t4 + h;
            const MvSel ss = mv_select(js < total ? js : total - 1, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
            wsr[nt][h] = ss.w + ss.j * row_bytes;
        }
    }
    // This warp's blocks c = 8·wp + a (a < 8, c < nb): weights first (constant), before the wait.
    u32 bw[8][NT][2], bw2[8][NT][2];
    float dw[8][NT][2], dw2[8][NT][2];
#pragma unroll
    for (int a = 0; a < 8; ++a) {
        const int c = 8 * wp + a;
        if (c < nb) {
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
                const u8* cb = q8_codes(wbr[nt], c) + 4 * t4;
                bw[a][nt][0] = ld2x16(cb);
                bw[a][nt][1] = ld2x16(cb + 16);
                if (PAIR) {
                    const u8* cb2 = q8_codes(w2 + (wbr[nt] - w), c) + 4 * t4;
                    bw2[a][nt][0] = ld2x16(cb2);
                    bw2[a][nt][1] = ld2x16(cb2 + 16);
                }
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    dw[a][nt][h] = f16_to_f32(q8_scale(wsr[nt][h], c));
                    if (PAIR) dw2[a][nt][h] = f16_to_f32(q8_scale(w2 + (wsr[nt][h] - w), c));
                }
            }
        }
    }
    pdl_wait();  // the activation, res and y belong to the kernels before this one
    // One row tile from r0 (a lambda: the one-tile instance's code is the straight line it was).
    auto tile = [&](const i64 r0) {
    // A's rows g and g + 8 (past n_out: row r0, a real row, result unused).
    const i64 ra = r0 + g < n_out ? r0 + g : r0, rb = r0 + g + 8 < n_out ? r0 + g + 8 : r0;
    u32 ax[8][4];
    float dx[8][2];
    const i8* xa = (const i8*)xin + ra * k;
    const i8* xb = (const i8*)xin + rb * k;
#pragma unroll
    for (int a = 0; a < 8; ++a) {
        const int c = 8 * wp + a;
        if (c < nb) mvt_load_x(xa, xb, qd, ra, rb, nb, c, t4, ax[a], dx[a]);
    }
    // Slot values of block group a: v[nt][e][q] for C element e (row g + 8·(e / 2), column
    // 2·t4 + e % 2) and part q; 0 where the block lies past the row (as the mat-vec's idle slots).
    auto slots = [&](int a, float (&v)[NT][4][4], float (&v2)[NT][4][4]) {
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e)
#pragma unroll
                for (int q = 0; q < 4; ++q) { v[nt][e][q] = 0.0f; v2[nt][e][q] = 0.0f; }
        if (8 * wp + a >= nb) return;  // uniform over the warp
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            // Part q is bytes 8q .. 8q + 7: registers a0/a1 (q < 2) or a2/a3 of lanes t4 ∈ {2(q & 1), 2(q & 1) + 1}.
            const bool keep = (t4 >> 1) == (q & 1);
            const u32 aq[4] = {keep && q < 2 ? ax[a][0] : 0u, keep && q < 2 ? ax[a][1] : 0u,
                               keep && q >= 2 ? ax[a][2] : 0u, keep && q >= 2 ? ax[a][3] : 0u};
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
                int d[4];
                mma_s8_16832(d, aq, bw[a][nt]);
#pragma unroll
                for (int e = 0; e < 4; ++e) v[nt][e][q] = fmaf(__fmul_rn(dw[a][nt][e & 1], dx[a][e >> 1]), (float)d[e], 0.0f);
                if (PAIR) {
                    mma_s8_16832(d, aq, bw2[a][nt]);
#pragma unroll
                    for (int e = 0; e < 4; ++e)
                        v2[nt][e][q] = fmaf(__fmul_rn(dw2[a][nt][e & 1], dx[a][e >> 1]), (float)d[e], 0.0f);
                }
            }
        }
    };
    auto add = [](float (&x)[NT][4][4], const float (&y2)[NT][4][4]) {
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e)
#pragma unroll
                for (int q = 0; q < 4; ++q) x[nt][e][q] = __fadd_rn(x[nt][e][q], y2[nt][e][q]);
    };
    // The xor tree over lanes 4a + q, streamed: Y_a = X_a + X_{a+4}; Z_0 = Y_0 + Y_2, Z_1 = Y_1 + Y_3;
    // Z_0 + Z_1; then parts (0 + 2) + (1 + 3).
    float z[NT][4][4], z2[NT][4][4], y0[NT][4][4], y02[NT][4][4], x0[NT][4][4], x02[NT][4][4], t[NT][4][4],
        t2[NT][4][4];
    slots(0, x0, x02); slots(4, t, t2); add(x0, t); add(x02, t2);
    slots(2, z, z2); slots(6, t, t2); add(z, t); add(z2, t2);
    add(x0, z); add(x02, z2);  // x0 = Z_0
    slots(1, y0, y02); slots(5, t, t2); add(y0, t); add(y02, t2);
    slots(3, z, z2); slots(7, t, t2); add(z, t); add(z2, t2);
    add(y0, z); add(y02, z2);  // y0 = Z_1
    add(x0, y0); add(x02, y02);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int row = g + 8 * (e >> 1), col = 8 * nt + 2 * t4 + (e & 1);
            const float* p = x0[nt][e];
            mt_red[0][wp][row][col] = __fadd_rn(__fadd_rn(p[0], p[2]), __fadd_rn(p[1], p[3]));
            if (PAIR) {
                const float* p2 = x02[nt][e];
                mt_red[PAIR ? 1 : 0][wp][row][col] = __fadd_rn(__fadd_rn(p2[0], p2[2]), __fadd_rn(p2[1], p2[3]));
            }
        }
    __syncthreads();
    // The warps in order, then bias, GLU, residual (mv_store_cols' order).
    for (int u = threadIdx.x; u < 16 * NCOL; u += MV_THREADS) {
        const int row = u / NCOL, col = u % NCOL;
        const i64 jj = jj0 + col;
        if (r0 + row < n_out && jj < total) {
            float v = mt_red[0][0][row][col], v2 = PAIR ? mt_red[PAIR ? 1 : 0][0][row][col] : 0.0f;
#pragma unroll
            for (int q = 1; q < MV_WARPS; ++q) {
                v = __fadd_rn(v, mt_red[0][q][row][col]);
                if (PAIR) v2 = __fadd_rn(v2, mt_red[PAIR ? 1 : 0][q][row][col]);
            }
            const MvSel sel = mv_select(jj, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
            mv_finish(v, v2, PAIR, (r0 + row) * sel.m + sel.j, sel.j, sel.bias, res, act, sel.y);
        }
    }
    };
    if constexpr (WIDE) {
#pragma unroll 1
        for (i64 rt = rt0; rt < rt1; ++rt) {
            if (rt > rt0) __syncthreads();  // mt_red is rewritten by this tile
            tile(rt * 16);
        }
    } else {
        tile(rt0 * 16);
    }
    return true;
}

// matvectl_q8_0 (ORCD_CUDA_MVT=1, not yet timed): matvect_q8_0 for rows longer than 1,024 (k a
// multiple of 32; the down projection's 4,864): a slot's parts are now a chain, s = t, t + 128, …
// in order, so block c = 32·r + 8·wp + a of round r continues slot group a's chains. The chains
// (8 groups × 4 C elements × 4 parts a lane) live in shared memory between rounds (64 KB a
// block, each lane its own words); a round's fragments are all loaded before its first mma. Then
// the same tree, warp order and mv_finish as matvect_t. Tile 16 rows × 8 columns, no GLU pair.
__device__ __forceinline__ void matvectl_t(const u8* w, const void* xin, const float* qd, float* y, int n_out, int k,
                                           int m, i64 row_bytes, const float* bias, const float* res, const u8* wb,
                                           const float* bias_b, float* yb, int mb, const u8* wc, const float* bias_c,
                                           float* yc, int mc, float* chains) {
    __shared__ float mtl_red[MV_WARPS][16][8];
    pdl_trigger();
    if (blockDim.x != MV_THREADS || n_out <= 0 || k <= 0 || (k & 31)) return;  // uniform: not the ABI's launch
    const i64 nrt = ((i64)n_out + 15) / 16, total = (i64)m + mb + mc;
    const i64 r0 = ((i64)blockIdx.x % nrt) * 16, jj0 = ((i64)blockIdx.x / nrt) * 8;
    if (jj0 >= total) return;  // uniform over the block
    const int lane = threadIdx.x & 31, wp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;
    const int nb = k / 32, rounds = (nb + 31) / 32;
    const i64 jb = jj0 + g;
    const MvSel sb = mv_select(jb < total ? jb : total - 1, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
    const u8* const wbr = sb.w + sb.j * row_bytes;
    const u8* wsr[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const i64 js = jj0 + 2 * t4 + h;
        const MvSel ss = mv_select(js < total ? js : total - 1, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
        wsr[h] = ss.w + ss.j * row_bytes;
    }
    const i64 ra = r0 + g < n_out ? r0 + g : r0, rb = r0 + g + 8 < n_out ? r0 + g + 8 : r0;
    const i8* xa = (const i8*)xin + ra * k;
    const i8* xb = (const i8*)xin + rb * k;
    // This lane's chain words: [a][e][q], 32 lanes apart (no bank conflicts).
    float* ch = chains + (i64)wp * (128 * 32) + lane;
#define MTL_CH(a, e, q) ch[(((a) * 4 + (e)) * 4 + (q)) * 32]
#pragma unroll
    for (int a = 0; a < 8; ++a)
#pragma unroll
        for (int e = 0; e < 4; ++e)
#pragma unroll
            for (int q = 0; q < 4; ++q) MTL_CH(a, e, q) = 0.0f;
    for (int r = 0; r < rounds; ++r) {
        u32 bw[8][2], ax[8][4];
        float dw[8][2], dx[8][2];
#pragma unroll
        for (int a = 0; a < 8; ++a) {
            const int c = 32 * r + 8 * wp + a;
            if (c < nb) {
                const u8* cb = q8_codes(wbr, c) + 4 * t4;
                bw[a][0] = ld2x16(cb);
                bw[a][1] = ld2x16(cb + 16);
                dw[a][0] = f16_to_f32(q8_scale(wsr[0], c));
                dw[a][1] = f16_to_f32(q8_scale(wsr[1], c));
            }
        }
        if (r == 0) pdl_wait();  // the activation, res and y belong to the kernels before this one
#pragma unroll
        for (int a = 0; a < 8; ++a) {
            const int c = 32 * r + 8 * wp + a;
            if (c < nb) mvt_load_x(xa, xb, qd, ra, rb, nb, c, t4, ax[a], dx[a]);
        }
#pragma unroll
        for (int a = 0; a < 8; ++a) {
            if (32 * r + 8 * wp + a >= nb) continue;  // uniform over the warp
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const bool keep = (t4 >> 1) == (q & 1);
                const u32 aq[4] = {keep && q < 2 ? ax[a][0] : 0u, keep && q < 2 ? ax[a][1] : 0u,
                                   keep && q >= 2 ? ax[a][2] : 0u, keep && q >= 2 ? ax[a][3] : 0u};
                int d[4];
                mma_s8_16832(d, aq, bw[a]);
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    MTL_CH(a, e, q) = fmaf(__fmul_rn(dw[a][e & 1], dx[a][e >> 1]), (float)d[e], MTL_CH(a, e, q));
            }
        }
    }
    // The xor tree over lanes 4a + q (as matvect_t), then parts (0 + 2) + (1 + 3).
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        float v[4];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const float y0 = __fadd_rn(MTL_CH(0, e, q), MTL_CH(4, e, q)), y1 = __fadd_rn(MTL_CH(1, e, q), MTL_CH(5, e, q));
            const float y2 = __fadd_rn(MTL_CH(2, e, q), MTL_CH(6, e, q)), y3 = __fadd_rn(MTL_CH(3, e, q), MTL_CH(7, e, q));
            v[q] = __fadd_rn(__fadd_rn(y0, y2), __fadd_rn(y1, y3));
        }
        mtl_red[wp][g + 8 * (e >> 1)][2 * t4 + (e & 1)] = __fadd_rn(__fadd_rn(v[0], v[2]), __fadd_rn(v[1], v[3]));
    }
#undef MTL_CH
    __syncthreads();
    {
        const int row = threadIdx.x / 8, col = threadIdx.x % 8;  // 128 threads: the 16 × 8 tile
        const i64 jj = jj0 + col;
        if (r0 + row < n_out && jj < total) {
            float v = mtl_red[0][row][col];
#pragma unroll
            for (int q = 1; q < MV_WARPS; ++q) v = __fadd_rn(v, mtl_red[q][row][col]);
            const MvSel sel = mv_select(jj, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
            mv_finish(v, 0.0f, false, (r0 + row) * sel.m + sel.j, sel.j, sel.bias, res, 0, sel.y);
        }
    }
}

// y[i, :] = dequant(W row ids[i]) (row i when ids is null); block 128, one block per row.
template <class T>
__device__ __forceinline__ void dequant_rows_t(const u8* w, const unsigned* ids, float* y, int n, int cols,
                                               i64 row_bytes) {
    pdl_trigger();
    const int i = blockIdx.x;
    if (i >= n) return;
    const u8* src = w + (ids ? (i64)ids[i] : (i64)i) * row_bytes;
    float* dst = y + (i64)i * cols;
    if constexpr (T::FLOAT) {
        for (int e = threadIdx.x; e < cols; e += blockDim.x) dst[e] = T::elem(src, e);
    } else {
        const int nc = cols / 32;
        for (int c = threadIdx.x; c < nc; c += blockDim.x) {
            float v[32];
            T::chunk(src, c, v);
#pragma unroll
            for (int l = 0; l < 32; ++l) dst[(i64)c * 32 + l] = v[l];
        }
    }
}

// The entry points, spelled out (one line each) so every kernel name appears in the source.
// At most 64 registers a thread (8 blocks of 128 an SM): the decode mat-vec is latency-bound,
// so blocks in flight matter.
#define MV_BOUNDS __launch_bounds__(MV_THREADS, 8)
// Float weights (a warp per column, eight rows' products per element) keep 96 registers: at 64
// they spill.
#define MVF_BOUNDS __launch_bounds__(MV_THREADS, 5)
// Multi-column entry points keep several columns' raw parts and row pointers in registers: 128.
#define MVM_BOUNDS __launch_bounds__(MV_THREADS, 4)
// Q8_0's GLU pair (the Qwen2.5-0.5B shape's gate·up: 2 × 4,864 columns, 8 a block, 608 blocks)
// fits one wave at five blocks an SM (660 on 132 SMs), not at four (528): at most 102 registers
// (no spills for Q8_0; Q4_1 would spill at this bound, so the 4-bit types keep MVM_BOUNDS).
#define MVG_BOUNDS __launch_bounds__(MV_THREADS, 5)
#define MATVEC_PARAMS                                                                                 \
    const unsigned char *w, const float *x, float *y, int n_out, int k, int m, long long row_bytes,   \
        const unsigned *ids, int ids_k, int shared, const float *bias, int rpb, const float *res, int xq,   \
        const unsigned char *w2, int act, int norm, const float *nw, float eps, const unsigned char *wb,           \
        const float *bias_b, float *yb, int mb, const unsigned char *wc, const float *bias_c, float *yc, int mc
#define MATVEC_ARGS                                                                                    \
    w, x, y, n_out, k, m, row_bytes, ids, ids_k, shared, bias, rpb, res, xq, w2, act, norm, nw, eps, wb, bias_b, \
        yb, mb, wc, bias_c, yc, mc
#define ROPE_KV_PARAMS                                                                                  \
    const unsigned *pos, const unsigned *seq, int head_dim, int neox, float freq_base, float freq_scale,     \
        int yarn_ramp, float ext_factor, float corr0, float corr1, double mscale, const float *freq_factors, \
        void *kc, void *vc, int il, int n_seq, int n_ctx, int kv_f16
#define MATVEC_ROPE_ARGS                                                                                   \
    w, x, y, n_out, k, m, row_bytes, ids, bias, rpb, xq, w2, norm, nw, eps, wb, bias_b, yb, mb, wc, bias_c, yc, mc, \
        RopeKv{pos, seq, head_dim, neox, freq_base, freq_scale, yarn_ramp, ext_factor, corr0, corr1, mscale,      \
               freq_factors, kc, vc, il, n_seq, n_ctx, kv_f16, rtab}
#define MVQ_PARAMS                                                                                      \
    const unsigned char *w, const void *x, const float *qd, const float *qs, float *y, int n_out, int k,       \
        int m, long long row_bytes, const float *bias, const float *res, const unsigned char *w2, int act,        \
        const unsigned char *wb, const float *bias_b, float *yb, int mb, const unsigned char *wc,                \
        const float *bias_c, float *yc, int mc
#define MVQ_ARGS w, x, qd, qs, y, n_out, k, m, row_bytes, bias, res, w2, act, wb, bias_b, yb, mb, wc, bias_c, yc, mc
// The batched GLU entry points (matvecqg_, matvectg_): with `gq` their output's codes too
// (mv_glu_codes; gq, gd, gs quant_x_q8's q, d, s; gcount the groups' zeroed counters).
#define MVQG_PARAMS MVQ_PARAMS, signed char *gq, float *gd, float *gs, unsigned *gcount
#define MVQG(C, R, ...) \
    if (__VA_ARGS__) mv_glu_codes<C, R>(y, n_out, m, gq, gd, gs, gcount)
#define DEQUANT_PARAMS const unsigned char *w, const unsigned *ids, float *y, int n, int cols, long long row_bytes
#define DEQUANT_ARGS w, ids, y, n, cols, row_bytes

extern "C" __global__ void MVF_BOUNDS matvec_f32(MATVEC_PARAMS) { matvec_t<T_f32>(MATVEC_ARGS); }
extern "C" __global__ void MVF_BOUNDS matvec_f16(MATVEC_PARAMS) { matvec_t<T_f16>(MATVEC_ARGS); }
extern "C" __global__ void MVF_BOUNDS matvec_bf16(MATVEC_PARAMS) { matvec_t<T_bf16>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec_q4_0(MATVEC_PARAMS) { matvec_t<T_q4_0>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec_q4_1(MATVEC_PARAMS) { matvec_t<T_q4_1>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec_q5_0(MATVEC_PARAMS) { matvec_t<T_q5_0>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec_q5_1(MATVEC_PARAMS) { matvec_t<T_q5_1>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec_q8_0(MATVEC_PARAMS) { matvec_t<T_q8_0>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec_q2_k(MATVEC_PARAMS) { matvec_t<T_q2_k>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec_q3_k(MATVEC_PARAMS) { matvec_t<T_q3_k>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec_q4_k(MATVEC_PARAMS) { matvec_t<T_q4_k>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec_q5_k(MATVEC_PARAMS) { matvec_t<T_q5_k>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec_q6_k(MATVEC_PARAMS) { matvec_t<T_q6_k>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec_iq4_nl(MATVEC_PARAMS) { matvec_t<T_iq4_nl>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec_mxfp4(MATVEC_PARAMS) { matvec_t<T_mxfp4>(MATVEC_ARGS); }
// Multi-column entry points (part-decodable types): 8 columns of one row (decode), 4 columns of
// up to 2 rows (decode with a GLU pair, two sequences).
extern "C" __global__ void MV_BOUNDS matvec8_q4_0(MATVEC_PARAMS) { matvec_t<T_q4_0, 8, 1, false>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec8_q4_1(MATVEC_PARAMS) { matvec_t<T_q4_1, 8, 1, false>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec8_q4_k(MATVEC_PARAMS) { matvec_t<T_q4_k, 8, 1, false>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec8_q5_k(MATVEC_PARAMS) { matvec_t<T_q5_k, 8, 1, false>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec8_q6_k(MATVEC_PARAMS) { matvec_t<T_q6_k, 8, 1, false>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec8_q5_0(MATVEC_PARAMS) { matvec_t<T_q5_0, 8, 1, false>(MATVEC_ARGS); }
extern "C" __global__ void MV_BOUNDS matvec8_q8_0(MATVEC_PARAMS) { matvec_t<T_q8_0, 8, 1, false>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec8g_q4_0(MATVEC_PARAMS) { matvec_t<T_q4_0, 8, 1, true>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec8g_q4_1(MATVEC_PARAMS) { matvec_t<T_q4_1, 8, 1, true>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec8g_q4_k(MATVEC_PARAMS) { matvec_t<T_q4_k, 8, 1, true>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec8g_q5_k(MATVEC_PARAMS) { matvec_t<T_q5_k, 8, 1, true>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec8g_q6_k(MATVEC_PARAMS) { matvec_t<T_q6_k, 8, 1, true>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec8g_q5_0(MATVEC_PARAMS) { matvec_t<T_q5_0, 8, 1, true>(MATVEC_ARGS); }
extern "C" __global__ void MVG_BOUNDS matvec8g_q8_0(MATVEC_PARAMS) { matvec_t<T_q8_0, 8, 1, true>(MATVEC_ARGS); }
// matvec8gp_ / matvec8p_: matvec8g_'s one-row GLU pair / matvec8_'s one-row projections (up to
// three, as matvec8_) whose activation x is first the residual of a post-norm folded in (MvPre):
// the input h = x + rms_norm(pre_x) · pre_w, stored at pre_h by block 0 (kernels/ABI.md). One
// row, norm on, k a multiple of 8 and at most 1,024.
#define MV_PRE_PARAMS const float *pre_x, const float *pre_w, float pre_eps, float *pre_h
// QKV_PRE_REG (ORCD_NVRTC_DEFINES, being timed; the same values): matvec8p_ takes the GLU pair's
// register form of the folded post-norm under MVM_BOUNDS (128 registers; a gemma-3 q·k·v launch
// is 160–192 blocks, one wave at 4 an SM) instead of the shared-memory form under MV_BOUNDS.
#ifdef QKV_PRE_REG
#define MVP_BOUNDS MVM_BOUNDS
#else
#define MVP_BOUNDS MV_BOUNDS
#endif
template <class T, bool PAIR>
__device__ __forceinline__ void matvec_pre_t(const u8* w, const float* x, float* y, int n_out, int k, int m,
                                             i64 row_bytes, const unsigned* ids, const float* bias, int rpb, int xq,
                                             const u8* w2, int act, int norm, const float* nw, float eps,
                                             const u8* wb, const float* bias_b, float* yb, int mb, const u8* wc,
                                             const float* bias_c, float* yc, int mc, const float* pre_x,
                                             const float* pre_w, float pre_eps, float* pre_h) {
    pdl_trigger();
    if (rpb != 1 || n_out != 1 || blockDim.x != MV_THREADS || ids || PAIR != (w2 != nullptr) || !norm || !pre_x ||
        !pre_w || !pre_h || (k & 7) || k > 8 * MV_THREADS || (PAIR && (mb || mc))) {
        return;  // not the ABI's launch
    }
    const MvPre pre{pre_x, pre_w, pre_eps, pre_h};
    mv_multi<T, 8, 1, PAIR, 1, false, true>(w, x, k, row_bytes, nullptr, xq, w2, act, norm, nw, eps, bias, y, m, wb,
                                            bias_b, yb, mb, wc, bias_c, yc, mc, 0, 1, nullptr, &pre);
}
#define MATVEC_PRE_ARGS                                                                                          \
    w, x, y, n_out, k, m, row_bytes, ids, bias, rpb, xq, w2, act, norm, nw, eps, wb, bias_b, yb, mb, wc, bias_c, yc, mc, \
        pre_x, pre_w, pre_eps, pre_h
extern "C" __global__ void MVM_BOUNDS matvec8gp_q4_0(MATVEC_PARAMS, MV_PRE_PARAMS) { matvec_pre_t<T_q4_0, true>(MATVEC_PRE_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec8gp_q4_k(MATVEC_PARAMS, MV_PRE_PARAMS) { matvec_pre_t<T_q4_k, true>(MATVEC_PRE_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec8gp_q5_0(MATVEC_PARAMS, MV_PRE_PARAMS) { matvec_pre_t<T_q5_0, true>(MATVEC_PRE_ARGS); }
extern "C" __global__ void MVG_BOUNDS matvec8gp_q8_0(MATVEC_PARAMS, MV_PRE_PARAMS) { matvec_pre_t<T_q8_0, true>(MATVEC_PRE_ARGS); }
extern "C" __global__ void MVP_BOUNDS matvec8p_q4_0(MATVEC_PARAMS, MV_PRE_PARAMS) { matvec_pre_t<T_q4_0, false>(MATVEC_PRE_ARGS); }
extern "C" __global__ void MVP_BOUNDS matvec8p_q4_k(MATVEC_PARAMS, MV_PRE_PARAMS) { matvec_pre_t<T_q4_k, false>(MATVEC_PRE_ARGS); }
extern "C" __global__ void MVP_BOUNDS matvec8p_q5_0(MATVEC_PARAMS, MV_PRE_PARAMS) { matvec_pre_t<T_q5_0, false>(MATVEC_PRE_ARGS); }
extern "C" __global__ void MVP_BOUNDS matvec8p_q8_0(MATVEC_PARAMS, MV_PRE_PARAMS) { matvec_pre_t<T_q8_0, false>(MATVEC_PRE_ARGS); }
// Long rows (k ≥ 3·1,024, a down projection), one row: 2 columns a block, 6 iterations' parts in flight.
extern "C" __global__ void MVM_BOUNDS matvec8r_q4_0(MATVEC_PARAMS, ROPE_KV_PARAMS, const double* rtab) { matvec_rope_t<T_q4_0>(MATVEC_ROPE_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec8r_q4_1(MATVEC_PARAMS, ROPE_KV_PARAMS, const double* rtab) { matvec_rope_t<T_q4_1>(MATVEC_ROPE_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec8r_q5_0(MATVEC_PARAMS, ROPE_KV_PARAMS, const double* rtab) { matvec_rope_t<T_q5_0>(MATVEC_ROPE_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec8r_q8_0(MATVEC_PARAMS, ROPE_KV_PARAMS, const double* rtab) { matvec_rope_t<T_q8_0>(MATVEC_ROPE_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec2l_q4_0(MATVEC_PARAMS) { matvec_t<T_q4_0, 2, 1, false, 6>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec2l_q4_1(MATVEC_PARAMS) { matvec_t<T_q4_1, 2, 1, false, 6>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec2l_q4_k(MATVEC_PARAMS) { matvec_t<T_q4_k, 2, 1, false, 6>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec2l_q5_k(MATVEC_PARAMS) { matvec_t<T_q5_k, 2, 1, false, 6>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec2l_q6_k(MATVEC_PARAMS) { matvec_t<T_q6_k, 2, 1, false, 6>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec2l_q5_0(MATVEC_PARAMS) { matvec_t<T_q5_0, 2, 1, false, 6>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec2l_q8_0(MATVEC_PARAMS) { matvec_t<T_q8_0, 2, 1, false, 6>(MATVEC_ARGS); }
// One row's mat-vec, then the row's RMS norm, its weight and a residual in the same launch
// (gemma-3's post-norms: out = res + rms_norm(x·W + b) · nw, the rms_norm kernel's values with
// `res`): every block stores its columns of y = x·W + b as matvec8_ / matvec2l_ do, then counts
// itself done; the last block to count (its stores and everyone's visible: fences around a
// device-wide count, reset by it for the next launch) reads the whole row back from L2 and
// computes the norm exactly as `rms_norm` with its 256 threads does (rms_scale_256, as the
// norm-fused mat-vecs) — so the same bits. One launch where the composition took two (stop
// 46; `ORCD_CUDA_FUSE_POSTNORM=1` on; off by default: measured 8% slower on gemma-3, stop 48).
// `count` is the host's zeroed counter; the launch is one row (n_out 1), as matvec8_ / matvec2l_.
__device__ __forceinline__ unsigned mv_count_done(unsigned* c) {
#ifdef ORCD_EMU
    return (*c)++;  // one block at a time on the emulator
#else
    __threadfence();  // this block's stores of y before its count
    return atomicAdd(c, 1u);
#endif
}
// Counts the block done (after its stores) at `count`, shared by `nb` blocks of the launch; true in
// the last of them to count, which then sees their stores and zeroes the count for the next
// launch. Every thread calls it.
__device__ bool mv_last_of(unsigned* count, unsigned nb) {
    __shared__ int mv_last;
    __syncthreads();  // the block's stores are issued
    if (threadIdx.x == 0) {
        mv_last = mv_count_done(count) == nb - 1;
        if (mv_last) *count = 0u;  // every block has counted: zero again for the next launch
#ifndef ORCD_EMU
        __threadfence();  // the last block's reads after every block's count
#endif
    }
    __syncthreads();
    return mv_last != 0;
}
// mv_last_of over the whole launch.
__device__ bool mv_last_block(unsigned* count) { return mv_last_of(count, gridDim.x * gridDim.y * gridDim.z); }

// A batched GLU's output rounded where it is produced (the host's ORCD_CUDA_GLU_CODES): a 32-column
// group of a C × R block layout's row tile is the work of 32 / C blocks (matvecqg_ 2 × 8, matvectg_
// 8 × 16); each counts itself done at the group's counter (`counts`: row tile × m / 32, zeroed), and
// the group's last block reads the tile's R × 32 values back from L2 and rounds each row's 32-block
// as quant_x_q8 does without a norm — its 8-element parts as mv_load_x loads them, mv_round_i8's
// codes, scale and Q8_1 sum, four lanes a block — so quant_x_q8's values of the same floats, and
// the down projection after it takes them (CudaTensor::codes) instead of a rounding launch. The
// flat grid's block b: rows (b mod row tiles)·R, columns (b div row tiles)·C. Every thread of a
// block that stored its outputs calls it; `qc` null or m not whole 32-blocks: nothing (uniform).
template <int C, int R>
__device__ void mv_glu_codes(const float* y, int n_out, int m, i8* qc, float* qd, float* qs, unsigned* counts) {
    static_assert(32 % C == 0 && 4 * R <= MV_THREADS, "mv_glu_codes: whole groups, a lane a part");
    if (qc == nullptr || n_out <= 0 || m <= 0 || (m & 31)) return;  // uniform
    const i64 nrt = ((i64)n_out + R - 1) / R, rt = (i64)blockIdx.x % nrt, g = ((i64)blockIdx.x / nrt) * C / 32;
    if (!mv_last_of(counts + rt * (m / 32) + g, 32 / C)) return;  // uniform
    constexpr int NT = (4 * R + 31) / 32 * 32;                      // whole warps: the shuffles
    if (threadIdx.x >= NT) return;                                  // uniform over a warp
    const int i = (int)threadIdx.x >> 2;
    const i64 r = rt * R + i;
    const bool valid = i < R && r < n_out;
    const i64 p = g * 4 + (threadIdx.x & 3);  // the row's part: 8 elements
    float v[8];
#pragma unroll
    for (int l = 0; l < 8; ++l) v[l] = valid ? mv_ld_cg(y + r * m + 8 * p + l) : 0.0f;
    const MvX x = mv_round_i8<true>(v);
    if (valid) {
        ((uint2*)(qc + r * m))[p] = make_uint2(x.a, x.b);
        if ((threadIdx.x & 3) == 0) {
            qd[r * (m / 32) + g] = x.d;
            qs[r * (m / 32) + g] = x.s;
        }
    }
}
__device__ void mv_row_norm_add(const float* y, int cols, const float* nw, float eps, const float* res, float* out,
                                unsigned* count) {
    __shared__ double mv_nred[9];
    if (!mv_last_block(count) || blockDim.x != MV_THREADS) return;  // uniform
    const double sc = rms_scale_256<true>(y, cols, eps, mv_nred);
    for (int i = threadIdx.x; i < cols; i += MV_THREADS) {
        out[i] = rms_value_add(mv_ld_cg(y + i), sc, nw[i], res[i]);
    }
}
#define MV_NORM_ADD_PARAMS const float *pn_w, float pn_eps, const float *pn_res, float *pn_out, unsigned *pn_count
#define MV_NORM_ADD(T, C, U)                                              \
    matvec_t<T, C, 1, false, U>(MATVEC_ARGS);                           \
    mv_row_norm_add(y, m, pn_w, pn_eps, pn_res, pn_out, pn_count)
extern "C" __global__ void MV_BOUNDS matvec8n_q4_0(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q4_0, 8, 1); }
extern "C" __global__ void MV_BOUNDS matvec8n_q4_1(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q4_1, 8, 1); }
extern "C" __global__ void MV_BOUNDS matvec8n_q4_k(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q4_k, 8, 1); }
extern "C" __global__ void MV_BOUNDS matvec8n_q5_k(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q5_k, 8, 1); }
extern "C" __global__ void MV_BOUNDS matvec8n_q6_k(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q6_k, 8, 1); }
extern "C" __global__ void MV_BOUNDS matvec8n_q5_0(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q5_0, 8, 1); }
extern "C" __global__ void MV_BOUNDS matvec8n_q8_0(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q8_0, 8, 1); }
extern "C" __global__ void MVM_BOUNDS matvec2ln_q4_0(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q4_0, 2, 6); }
extern "C" __global__ void MVM_BOUNDS matvec2ln_q4_1(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q4_1, 2, 6); }
extern "C" __global__ void MVM_BOUNDS matvec2ln_q4_k(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q4_k, 2, 6); }
extern "C" __global__ void MVM_BOUNDS matvec2ln_q5_k(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q5_k, 2, 6); }
extern "C" __global__ void MVM_BOUNDS matvec2ln_q6_k(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q6_k, 2, 6); }
extern "C" __global__ void MVM_BOUNDS matvec2ln_q5_0(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q5_0, 2, 6); }
extern "C" __global__ void MVM_BOUNDS matvec2ln_q8_0(MATVEC_PARAMS, MV_NORM_ADD_PARAMS) { MV_NORM_ADD(T_q8_0, 2, 6); }
// Two weight types in one one-row launch (gemma-3's q and k Q5_0 beside its v Q8_0; a Q4_K_M
// file's Q4_K q, k beside a Q6_K v): blocks of 8 columns below m + mb take T1's rows (w, wb,
// row_bytes), the others T2's (wc, row_bytes_c), each through matvec8_'s code for its own type —
// the values of the two launches the composition makes, with one launch boundary fewer (stop
// 47; ORCD_CUDA_MV_MIXED=1). The host keeps m + mb a multiple of 8 (no block straddles the
// types), one row, and the same activation rounding (xq) for both types.
// false: not the ABI's launch (nothing computed).
template <class T1, class T2>
__device__ __forceinline__ bool matvec_mixed_t(MATVEC_PARAMS, long long row_bytes_c) {
    pdl_trigger();
    if (rpb != 1 || n_out != 1 || ids || w2 || blockDim.x != MV_THREADS || ((i64)m + mb) % 8 != 0) return false;  // uniform
    if ((i64)blockIdx.x * 8 < (i64)m + mb) {
        mv_multi<T1, 8, 1, false, 1>(w, x, k, row_bytes, res, xq, nullptr, act, norm, nw, eps, bias, y, m, wb, bias_b,
                                     yb, mb, wc, bias_c, yc, mc, 0, 1);
    } else {
        mv_multi<T2, 8, 1, false, 1>(w, x, k, row_bytes_c, res, xq, nullptr, act, norm, nw, eps, bias, y, m, wb,
                                     bias_b, yb, mb, wc, bias_c, yc, mc, 0, 1);
    }
    return true;
}
#define MV_MIXED(T1, T2) (void)matvec_mixed_t<T1, T2>(MATVEC_ARGS, row_bytes_c)
extern "C" __global__ void MV_BOUNDS matvec8x_q5_0_q8_0(MATVEC_PARAMS, long long row_bytes_c) { MV_MIXED(T_q5_0, T_q8_0); }
extern "C" __global__ void MV_BOUNDS matvec8x_q4_k_q6_k(MATVEC_PARAMS, long long row_bytes_c) { MV_MIXED(T_q4_k, T_q6_k); }
// A decode row's q, k and v (two types as matvec8x_, or one), then in the same launch what
// norm_rope_qk_kv_write's `rope` launch does after them (gemma-3's attention input side): every
// block stores its columns of the raw q, k, v (y, yb, yc: scratch rows) and counts itself done;
// the last block (fences around the device-wide count, as matvec8n_) reads the three rows back
// from L2 and computes the `rope` kernel's values with its 128 threads — each head of q and k
// rms-normed with its weight by the sums the kernel's 256 threads make (thread t plays t and
// t + 128: the same strided partials, xor trees and second stage), rotated (every pair: the
// host's n_rot = head_dim), q times q_scale into `out_q`, the keys and v into the cache.
// So the composition's bits with two launches fewer (stop 47; ORCD_CUDA_FUSE_QKV_NORM=1; off:
// measured 3% slower on gemma-3, stop 48).
#define QKVH_MAX_HEADS 32  // heads of q (and of k) the last block normalizes (the host checks)
__device__ void mv_qkv_hn_last(const float* qr, const float* kr, const float* vr, int n_head, int n_head_kv,
                               int v_cols, const RopeKv* rk, const float* hnq, const float* hnk, float hn_eps,
                               float q_scale, float* out_q, unsigned* count) {
    __shared__ double hs_s[ROPE_MAX_HALF], hs_c[ROPE_MAX_HALF], hs_sc[QKVH_MAX_HEADS];
    __shared__ double hs_part[QKVH_MAX_HEADS][8];
    const int hd = rk->head_dim, half = hd / 2, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    if (!mv_last_block(count) || blockDim.x != MV_THREADS || half > ROPE_MAX_HALF || n_head > QKVH_MAX_HEADS ||
        n_head_kv > QKVH_MAX_HEADS)
        return;  // uniform
    const u32 sq = rk->seq[0], p = rk->pos[0];
    const i64 slot = (sq < (u32)rk->n_seq && p < (u32)rk->n_ctx) ? ((i64)rk->il * rk->n_seq + sq) * rk->n_ctx + p : -1;
    for (int i = tid; i < half; i += MV_THREADS) {  // from the forward's rope_table when given
        if (rk->tab) {
            hs_s[i] = rk->tab[2 * i];
            hs_c[i] = rk->tab[2 * i + 1];
        } else {
            rope_angle(i, p, hd, rk->freq_base, rk->freq_scale, rk->yarn_ramp, rk->ext_factor, rk->corr0, rk->corr1,
                       rk->mscale, rk->freq_factors, &hs_s[i], &hs_c[i]);
        }
    }
    auto store = [&](void* cache, i64 e, float val) {
        if (rk->kv_f16) ((u16*)cache)[e] = f32_to_f16(val);
        else ((float*)cache)[e] = val;
    };
    if (slot >= 0) {
        for (int i = tid; i < v_cols; i += MV_THREADS) store(rk->vc, slot * v_cols + i, mv_ld_cg(vr + i));
    }
    for (int plane = 0; plane < 2; ++plane) {
        const float* x = plane == 0 ? qr : kr;
        const float* hn = plane == 0 ? hnq : hnk;
        const int nh = plane == 0 ? n_head : n_head_kv;
        const float osc = plane == 0 ? q_scale : 1.0f;
        // The rope kernel's sums at 256 threads: virtual thread t + 128·u (u = 0, 1) takes
        // elements t + 128·u, + 256, …; its warp (warp + 4·u) the xor tree.
        for (int h = 0; h < nh; ++h) {
#pragma unroll
            for (int u = 0; u < 2; ++u) {
                double sum = 0.0;
                for (int i = tid + MV_THREADS * u; i < hd; i += 2 * MV_THREADS) {
                    const double v = mv_ld_cg(x + (i64)h * hd + i);
                    sum = __dadd_rn(sum, __dmul_rn(v, v));
                }
                const double t = warp_sum_d(sum);
                if (lane == 0) hs_part[h][warp + 4 * u] = t;
            }
        }
        __syncthreads();
        for (int h = warp; h < nh; h += MV_THREADS / 32) {
            const double t = warp_sum_d(lane < 8 ? hs_part[h][lane] : 0.0);
            if (lane == 0) hs_sc[h] = 1.0 / sqrt(t / (double)hd + (double)hn_eps);
        }
        __syncthreads();
        auto xin = [&](i64 e) -> float {
            const float v = rms_value(mv_ld_cg(x + e), hs_sc[e / hd]);
            return __fmul_rn(v, hn[e % hd]);
        };
        const i64 kb = slot >= 0 ? slot * (i64)n_head_kv * hd : -1;
        for (int q = tid; q < nh * half; q += MV_THREADS) {
            const int h = q / half, i = q % half;
            const i64 base = (i64)h * hd, ia = rk->neox ? base + i : base + 2 * i, ib = rk->neox ? ia + half : ia + 1;
            float ra, rb;
            rope_pair(xin(ia), xin(ib), hs_s[i], hs_c[i], &ra, &rb);
            ra = __fmul_rn(ra, osc);
            rb = __fmul_rn(rb, osc);
            if (plane == 0) {
                out_q[ia] = ra;
                out_q[ib] = rb;
            } else if (kb >= 0) {
                store(rk->kc, kb + ia, ra);
                store(rk->kc, kb + ib, rb);
            }
        }
        __syncthreads();  // hs_part and hs_sc are rewritten by the next plane
    }
}
#define QKV_HN_PARAMS                                                                                  \
    long long row_bytes_c, ROPE_KV_PARAMS, const float *hnq, const float *hnk, float hn_eps, float q_scale, \
        float *out_q, unsigned *count, const double *rtab
// Heads of head_dim columns: q m / head_dim of them, k mb / head_dim (the host checks).
#define QKV_HN(T1, T2)                                                                                           \
    if (head_dim <= 0 || !matvec_mixed_t<T1, T2>(MATVEC_ARGS, row_bytes_c)) return;                              \
    const RopeKv rk{pos, seq, head_dim, neox, freq_base, freq_scale, yarn_ramp, ext_factor, corr0, corr1, mscale, \
                    freq_factors, kc, vc, il, n_seq, n_ctx, kv_f16, rtab};                                      \
    mv_qkv_hn_last(y, yb, yc, m / head_dim, mb / head_dim, mc, &rk, hnq, hnk, hn_eps, q_scale, out_q, count)
extern "C" __global__ void MVM_BOUNDS matvec8h_q5_0_q8_0(MATVEC_PARAMS, QKV_HN_PARAMS) { QKV_HN(T_q5_0, T_q8_0); }
extern "C" __global__ void MVM_BOUNDS matvec8h_q8_0_q8_0(MATVEC_PARAMS, QKV_HN_PARAMS) { QKV_HN(T_q8_0, T_q8_0); }
extern "C" __global__ void MVM_BOUNDS matvec8h_q4_k_q4_k(MATVEC_PARAMS, QKV_HN_PARAMS) { QKV_HN(T_q4_k, T_q4_k); }
extern "C" __global__ void MVM_BOUNDS matvec8h_q4_k_q6_k(MATVEC_PARAMS, QKV_HN_PARAMS) { QKV_HN(T_q4_k, T_q6_k); }
extern "C" __global__ void MVM_BOUNDS matvec4_q4_0(MATVEC_PARAMS) { matvec_t<T_q4_0, 4, 2>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec4_q4_1(MATVEC_PARAMS) { matvec_t<T_q4_1, 4, 2>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec4_q4_k(MATVEC_PARAMS) { matvec_t<T_q4_k, 4, 2>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec4_q5_k(MATVEC_PARAMS) { matvec_t<T_q5_k, 4, 2>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec4_q6_k(MATVEC_PARAMS) { matvec_t<T_q6_k, 4, 2>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec4_q5_0(MATVEC_PARAMS) { matvec_t<T_q5_0, 4, 2>(MATVEC_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvec4_q8_0(MATVEC_PARAMS) { matvec_t<T_q8_0, 4, 2>(MATVEC_ARGS); }
// Several rows from an activation rounded once: codes, 4 columns × 8 rows a block (matvecq_), a
// GLU pair's 2 × 8 (matvecqg_); round_x's floats (the exact numerics, their head included), 8
// columns × 4 rows (matvecf_), a pair's 4 × 4 (matvecfg_). And one or two rows from the codes (the
// fast head of a decode step): 8 columns × 1 row a block and 8 blocks an SM like matvec8_
// (matvecq1_), the bytes in flight of the single-row kernels without their per-block rounding.
extern "C" __global__ void MV_BOUNDS matvecq1_q4_0(MVQ_PARAMS) { matvecq_t<T_q4_0, 8, 1, false, false>(MVQ_ARGS); }
extern "C" __global__ void MV_BOUNDS matvecq1_q4_1(MVQ_PARAMS) { matvecq_t<T_q4_1, 8, 1, false, false>(MVQ_ARGS); }
extern "C" __global__ void MV_BOUNDS matvecq1_q5_0(MVQ_PARAMS) { matvecq_t<T_q5_0, 8, 1, false, false>(MVQ_ARGS); }
extern "C" __global__ void MV_BOUNDS matvecq1_q8_0(MVQ_PARAMS) { matvecq_t<T_q8_0, 8, 1, false, false>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecq_q4_0(MVQ_PARAMS) { matvecq_t<T_q4_0, 4, 8, false, false>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecq_q4_1(MVQ_PARAMS) { matvecq_t<T_q4_1, 4, 8, false, false>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecq_q5_0(MVQ_PARAMS) { matvecq_t<T_q5_0, 4, 8, false, false>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecq_q8_0(MVQ_PARAMS) { matvecq_t<T_q8_0, 4, 8, false, false>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecqg_q4_0(MVQG_PARAMS) { MVQG(2, 8, matvecq_t<T_q4_0, 2, 8, true, false>(MVQ_ARGS)); }
extern "C" __global__ void MVM_BOUNDS matvecqg_q4_1(MVQG_PARAMS) { MVQG(2, 8, matvecq_t<T_q4_1, 2, 8, true, false>(MVQ_ARGS)); }
extern "C" __global__ void MVM_BOUNDS matvecqg_q5_0(MVQG_PARAMS) { MVQG(2, 8, matvecq_t<T_q5_0, 2, 8, true, false>(MVQ_ARGS)); }
extern "C" __global__ void MVM_BOUNDS matvecqg_q8_0(MVQG_PARAMS) { MVQG(2, 8, matvecq_t<T_q8_0, 2, 8, true, false>(MVQ_ARGS)); }
// matvecqp_ / matvecqpg_: matvecq_'s and matvecqg_'s blocks on a persistent grid (any grid;
// ORCD_CUDA_MVQ_PERSIST), the same values.
extern "C" __global__ void MVM_BOUNDS matvecqp_q4_0(MVQ_PARAMS) { matvecqp_t<T_q4_0, 4, 8, false>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecqp_q4_1(MVQ_PARAMS) { matvecqp_t<T_q4_1, 4, 8, false>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecqp_q5_0(MVQ_PARAMS) { matvecqp_t<T_q5_0, 4, 8, false>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecqp_q8_0(MVQ_PARAMS) { matvecqp_t<T_q8_0, 4, 8, false>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecqpg_q4_0(MVQ_PARAMS) { matvecqp_t<T_q4_0, 2, 8, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecqpg_q4_1(MVQ_PARAMS) { matvecqp_t<T_q4_1, 2, 8, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecqpg_q5_0(MVQ_PARAMS) { matvecqp_t<T_q5_0, 2, 8, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecqpg_q8_0(MVQ_PARAMS) { matvecqp_t<T_q8_0, 2, 8, true>(MVQ_ARGS); }
// The tensor-core form of matvecq_ / matvecqg_ for Q8_0 (k ≤ 1,024): 16 rows × 16 (pair 8) columns.
#define MVT_BOUNDS __launch_bounds__(MV_THREADS, 2)
extern "C" __global__ void MVT_BOUNDS matvect_q8_0(MVQ_PARAMS) {
    (void)qs;
    matvect_t<false, 2>(w, x, qd, y, n_out, k, m, row_bytes, bias, res, w2, act, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
}
// matvect_q8_0 on 8-column tiles: twice the blocks, for a row tile or two (the host's
// ORCD_CUDA_MVT_NARROW=1: a 16-row step's q·k·v, o and down have 56–112 blocks of 16 columns).
extern "C" __global__ void MVT_BOUNDS matvectn_q8_0(MVQ_PARAMS) {
    (void)qs;
    matvect_t<false, 1>(w, x, qd, y, n_out, k, m, row_bytes, bias, res, w2, act, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
}
// Rows longer than 1,024 (no GLU pair): the slots' chains in dynamic shared memory (64 KB).
extern "C" __global__ void MVT_BOUNDS matvectl_q8_0(MVQ_PARAMS) {
    (void)qs;
#ifdef ORCD_EMU
    float* chains = (float*)g_emu->dyn.data();
#else
    extern __shared__ float chains[];
#endif
    if (w2 != nullptr || dynamic_smem_bytes() < MV_WARPS * 128 * 32 * 4) return;  // uniform: not the ABI's launch
    matvectl_t(w, x, qd, y, n_out, k, m, row_bytes, bias, res, wb, bias_b, yb, mb, wc, bias_c, yc, mc, chains);
}
extern "C" __global__ void MVT_BOUNDS matvectg_q8_0(MVQG_PARAMS) {
    MVQG(8, 16, matvect_t<true, 1>(w, x, qd, y, n_out, k, m, row_bytes, bias, res, w2, act, wb, bias_b, yb, mb, wc, bias_c, yc, mc));
}
// matvectw_ / matvectgw_ (the host's ORCD_CUDA_MVT_ROWS=n, off until a card has timed it):
// matvect_'s and matvectg_'s tiles, several a block (grid G · B: block b % B takes its column
// group's row tiles in turn, the group's weight fragments loaded once) — the same values.
// Separate entry points: the loop keeps the fragments live across tiles (255 registers and a
// spill), which the one-tile kernels must not pay.
extern "C" __global__ void MVT_BOUNDS matvectw_q8_0(MVQ_PARAMS) {
    (void)qs;
    matvect_t<false, 2, true>(w, x, qd, y, n_out, k, m, row_bytes, bias, res, w2, act, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
}
extern "C" __global__ void MVT_BOUNDS matvectgw_q8_0(MVQG_PARAMS) {
    (void)gq; (void)gd; (void)gs; (void)gcount;  // the GLU's codes count a block a tile: never with several
    matvect_t<true, 1, true>(w, x, qd, y, n_out, k, m, row_bytes, bias, res, w2, act, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
}
extern "C" __global__ void MVM_BOUNDS matvecf_q4_0(MVQ_PARAMS) { matvecq_t<T_q4_0, 8, 4, false, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecf_q4_1(MVQ_PARAMS) { matvecq_t<T_q4_1, 8, 4, false, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecf_q4_k(MVQ_PARAMS) { matvecq_t<T_q4_k, 8, 4, false, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecf_q5_k(MVQ_PARAMS) { matvecq_t<T_q5_k, 8, 4, false, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecf_q6_k(MVQ_PARAMS) { matvecq_t<T_q6_k, 8, 4, false, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecf_q5_0(MVQ_PARAMS) { matvecq_t<T_q5_0, 8, 4, false, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecf_q8_0(MVQ_PARAMS) { matvecq_t<T_q8_0, 8, 4, false, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecfg_q4_0(MVQ_PARAMS) { matvecq_t<T_q4_0, 4, 4, true, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecfg_q4_1(MVQ_PARAMS) { matvecq_t<T_q4_1, 4, 4, true, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecfg_q4_k(MVQ_PARAMS) { matvecq_t<T_q4_k, 4, 4, true, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecfg_q5_k(MVQ_PARAMS) { matvecq_t<T_q5_k, 4, 4, true, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecfg_q6_k(MVQ_PARAMS) { matvecq_t<T_q6_k, 4, 4, true, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecfg_q5_0(MVQ_PARAMS) { matvecq_t<T_q5_0, 4, 4, true, true>(MVQ_ARGS); }
extern "C" __global__ void MVM_BOUNDS matvecfg_q8_0(MVQ_PARAMS) { matvecq_t<T_q8_0, 4, 4, true, true>(MVQ_ARGS); }
// matvecqr_ / matvecfr_: matvecq_ / matvecf_ of a decode batch's q, k, v (m, mb multiples of
// head_dim, a multiple of C; n_rot = head_dim) with RoPE and the KV store (matvecq_t's ROPE).
#define MVQR_ROPE const RopeKv rk{pos, seq, head_dim, neox, freq_base, freq_scale, yarn_ramp, ext_factor, corr0, corr1, \
                                   mscale, freq_factors, kc, vc, il, n_seq, n_ctx, kv_f16}
#define MVQR(TY, C, R, XF) { MVQR_ROPE; matvecq_t<TY, C, R, false, XF, true>(MVQ_ARGS, &rk); }
extern "C" __global__ void MVM_BOUNDS matvecqr_q4_0(MVQ_PARAMS, ROPE_KV_PARAMS) MVQR(T_q4_0, 4, 8, false)
extern "C" __global__ void MVM_BOUNDS matvecqr_q4_1(MVQ_PARAMS, ROPE_KV_PARAMS) MVQR(T_q4_1, 4, 8, false)
extern "C" __global__ void MVM_BOUNDS matvecqr_q5_0(MVQ_PARAMS, ROPE_KV_PARAMS) MVQR(T_q5_0, 4, 8, false)
extern "C" __global__ void MVM_BOUNDS matvecqr_q8_0(MVQ_PARAMS, ROPE_KV_PARAMS) MVQR(T_q8_0, 4, 8, false)
extern "C" __global__ void MVM_BOUNDS matvecfr_q4_0(MVQ_PARAMS, ROPE_KV_PARAMS) MVQR(T_q4_0, 8, 4, true)
extern "C" __global__ void MVM_BOUNDS matvecfr_q4_1(MVQ_PARAMS, ROPE_KV_PARAMS) MVQR(T_q4_1, 8, 4, true)
extern "C" __global__ void MVM_BOUNDS matvecfr_q5_0(MVQ_PARAMS, ROPE_KV_PARAMS) MVQR(T_q5_0, 8, 4, true)
extern "C" __global__ void MVM_BOUNDS matvecfr_q8_0(MVQ_PARAMS, ROPE_KV_PARAMS) MVQR(T_q8_0, 8, 4, true)

extern "C" __global__ void dequant_rows_f32(DEQUANT_PARAMS) { dequant_rows_t<T_f32>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_f16(DEQUANT_PARAMS) { dequant_rows_t<T_f16>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_bf16(DEQUANT_PARAMS) { dequant_rows_t<T_bf16>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_q4_0(DEQUANT_PARAMS) { dequant_rows_t<T_q4_0>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_q4_1(DEQUANT_PARAMS) { dequant_rows_t<T_q4_1>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_q5_0(DEQUANT_PARAMS) { dequant_rows_t<T_q5_0>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_q5_1(DEQUANT_PARAMS) { dequant_rows_t<T_q5_1>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_q8_0(DEQUANT_PARAMS) { dequant_rows_t<T_q8_0>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_q2_k(DEQUANT_PARAMS) { dequant_rows_t<T_q2_k>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_q3_k(DEQUANT_PARAMS) { dequant_rows_t<T_q3_k>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_q4_k(DEQUANT_PARAMS) { dequant_rows_t<T_q4_k>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_q5_k(DEQUANT_PARAMS) { dequant_rows_t<T_q5_k>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_q6_k(DEQUANT_PARAMS) { dequant_rows_t<T_q6_k>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_iq4_nl(DEQUANT_PARAMS) { dequant_rows_t<T_iq4_nl>(DEQUANT_ARGS); }
extern "C" __global__ void dequant_rows_mxfp4(DEQUANT_PARAMS) { dequant_rows_t<T_mxfp4>(DEQUANT_ARGS); }

// ---------------------------------------------------------------------------------------------
// Prefill GEMM of the fast numerics: int8 tensor cores (mma.sync m16n8k32), llama.cpp's mmq shape
// ---------------------------------------------------------------------------------------------
// For a sequence with many rows (a prefill), the fast numerics' matmul of a legacy-quant weight
// (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: Q8_0-rounded activations) as a GEMM: the activation is rounded to Q8_0 codes once (`quant_x_q8`: the
// very codes, scales and Q8_1 sums the mat-vec computes itself, the same device functions), and
// one mma gives the exact integer dot product of a 32-element weight block with a 32-element
// activation block. A value is then, over the row's blocks in order,
// acc = fmaf(d_w · d_x, Σ qw·qx, acc) (Q4_1 / Q5_1 add fmaf(m_w, s_x, acc)), llama.cpp's
// per-block formula: it depends on the row's and the column's data alone, never on the tile, the
// grid, n or the other rows. (The mat-vec sums per 8-element part instead: the same integers,
// other float roundings; Q5_0 / Q5_1's mat-vec multiplies dequantized floats; so the backend
// picks the GEMM by the rows of a row's own sequence.)

// A block's tile: 128 or 64 weight rows (output columns) × 64 or 32 tokens (mmq_t's WM, NI).
#define GM_KB 4                    // 32-element blocks a stage
#define GM_THREADS 256             // 8 warps: WM along the weight rows × 8 / WM along the tokens
#define GM_STR (GM_KB * 32 + 16)   // bytes a row in shared memory (144: fragment loads hit 32 banks)

// One row's codes (int8, [rows, k]), scales d ([rows, k/32], f16-rounded as Q8_0 keeps them) and
// Q8_1 sums s (mv_round_i8's, for Q4_1) of x (rms-normalized first with `norm`, times `nw` when
// given, exactly as the mat-vec does). grid (rows), block 128; k a multiple of 32.
extern "C" __global__ void quant_x_q8(const float* x, i8* q, float* d, float* s, int rows, int k, int norm,
                                      const float* nw, float eps) {
    __shared__ double red[9];
    // The batched mat-vec after it may start and fetch its weights meanwhile, as after round_x;
    // launched with PDL itself (the host's default since stop 49: H100, 4 / 16 / 64 sequences
    // +2.2 / +6.7 / +1.4%), x is the kernel's before it: wait first. ORCD_NVRTC_DEFINES=QX_NO_PDL
    // with ORCD_CUDA_QX_PDL=0 is the A/B.
#ifndef QX_NO_PDL
    pdl_trigger();
#endif
    pdl_wait();
    const int r = blockIdx.x;
    if (r >= rows || blockDim.x != MV_THREADS) return;  // uniform
    const int nsub = k / 8, nb = k / 32;
    const float* xr = x + (i64)r * k;
    const double sc = norm ? rms_scale_256(xr, k, eps, red) : 1.0;
    for (int s0 = 0; s0 < nsub; s0 += MV_THREADS) {  // uniform: all lanes reach the shuffles
        const int p = s0 + threadIdx.x;
        float v[8];
        mv_load_x(xr, p, p < nsub, v, norm, sc, nw);
        const MvX qx = mv_round_i8<true>(v);
        if (p < nsub) {
            ((uint2*)(q + (i64)r * k))[p] = make_uint2(qx.a, qx.b);
            if ((p & 3) == 0) {
                d[(i64)r * nb + p / 4] = qx.d;
                s[(i64)r * nb + p / 4] = qx.s;
            }
        }
    }
}

// attention's codes (ATT_PARAMS): head blockIdx.y of row blockIdx.x as quant_x_q8 (no norm)
// rounds it — each 8-element part loaded as mv_load_x loads it, mv_round_i8's codes, scale and
// sum, four lanes a 32-block — by warp 0 once the block's stores of the head are done: the same
// functions of the same floats, so quant_x_q8's values. Heads of a multiple of 32 values (the
// host's condition; others write nothing).
__device__ void att_head_codes(const float* out, int rows, int n_head, int vd, i8* qc, float* qd, float* qs) {
    __syncthreads();  // the block's stores of its head
    const int r = blockIdx.x, h = blockIdx.y, lane = threadIdx.x;
    if (threadIdx.x >= 32 || r >= rows || h >= n_head || vd % 32 != 0) return;  // uniform over warp 0
    const i64 k = (i64)n_head * vd;
    const float* xr = out + (i64)r * k;
    const int p0 = h * (vd / 8), np = vd / 8;
    for (int s0 = 0; s0 < np; s0 += 32) {  // uniform: all lanes reach the shuffles
        const int p = p0 + s0 + lane;
        const bool valid = s0 + lane < np;
        float v[8];
        mv_load_x(xr, p, valid, v, false, 1.0, nullptr);
        const MvX x = mv_round_i8<true>(v);
        if (valid) {
            ((uint2*)(qc + (i64)r * k))[p] = make_uint2(x.a, x.b);
            if ((p & 3) == 0) {
                qd[(i64)r * (k / 32) + p / 4] = x.d;
                qs[(i64)r * (k / 32) + p / 4] = x.s;
            }
        }
    }
}

// quant_x_q8's layout for the k-quants' GEMM (mmq_q4_k): x rounded to Q8_K (llama.cpp's
// quantize_row_q8_K, the mat-vec's xq 1: per 256 elements the first of largest magnitude, max,
// iscale = -127 / max, code min(127, rint(iscale · x)), d = 1 / iscale, all zero where max is 0),
// its codes, each 32-element block's d (the 256-block's, unrounded) and s = d · Σ its codes (for
// the min term). code · d is the mat-vec's rounded value. grid (rows), block 128; k a multiple
// of 256.
extern "C" __global__ void quant_x_q8k(const float* x, i8* q, float* d, float* s, int rows, int k, int norm,
                                       const float* nw, float eps) {
    __shared__ double red[9];
    pdl_wait();
    const int r = blockIdx.x, lane = threadIdx.x & 31;
    if (r >= rows || blockDim.x != MV_THREADS || (k & 255)) return;  // uniform
    const int nsub = k / 8, nb = k / 32;
    const float* xr = x + (i64)r * k;
    const double sc = norm ? rms_scale_256(xr, k, eps, red) : 1.0;
    for (int s0 = 0; s0 < nsub; s0 += MV_THREADS) {  // uniform: all lanes reach the shuffles
        const int p = s0 + threadIdx.x;  // a warp's 32 parts: one 256-element block (k % 256 == 0)
        float v[8];
        mv_load_x(xr, p, p < nsub, v, norm, sc, nw);
        // The block's first element of largest magnitude, as mv_round's xq 1.
        float a;
        const float max = q8k_block_max(v, lane, &a);
        const float iscale = a != 0.0f ? __fdiv_rn(-127.0f, max) : 0.0f;
        const float dd = a != 0.0f ? __fdiv_rn(1.0f, iscale) : 0.0f;
        u32 pk[2] = {0u, 0u};
#pragma unroll
        for (int l = 0; l < 8; ++l) {
            const int qi = a != 0.0f ? (int)fminf(rintf(__fmul_rn(iscale, v[l])), 127.0f) : 0;
            pk[l >> 2] |= ((u32)qi & 0xffu) << (8 * (l & 3));
        }
        int si = __dp4a((int)pk[1], 0x01010101, __dp4a((int)pk[0], 0x01010101, 0));
        si += __shfl_xor_sync(FULL_MASK, si, 1);
        si += __shfl_xor_sync(FULL_MASK, si, 2);
        if (p < nsub) {
            ((uint2*)(q + (i64)r * k))[p] = make_uint2(pk[0], pk[1]);
            if ((p & 3) == 0) {
                d[(i64)r * nb + p / 4] = dd;
                s[(i64)r * nb + p / 4] = __fmul_rn(dd, (float)si);
            }
        }
    }
}

// A pair of weight blocks (2p, 2p + 1) read as 4-byte words (a row's pairs start on multiples
// of 4 when its block count is even: the host checks k % 64 == 0), decoded into 8 words of int8
// codes (elements 0..31 of block `b`, little-endian), the f16 scale and (Q4_1) the min.
struct G_q8_0 {  // 34-byte blocks: f16 d, 32 codes
    static constexpr int BB = 34, PW = 17;
    static constexpr bool MIN = false, GROUPED = Q8G, HALF16 = false;
    // Q8_GROUPED: pair (blk0, blk0 + 1) is half `h` of group blk0 / 4: its two scales are one
    // 4-byte word of the header, its 64 codes the eight 8-byte words after the header; ra = {scales, codes}.
    __device__ static void load(const u8* wrow, int blk0, u32* ra) {
        const u8* g = wrow + (i64)(blk0 >> 2) * 136;
        const int h = (blk0 >> 1) & 1;
        ra[0] = *(const u32*)(g + 4 * h);
        const uint2* cp = (const uint2*)(g + 8 + 64 * h);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint2 v = cp[i];
            ra[1 + 2 * i] = v.x;
            ra[2 + 2 * i] = v.y;
        }
    }
    __device__ static void dec(const u32* w, int b, u32* c, float* d, float* mn) {
        if (GROUPED) {
            *d = f16_to_f32((u16)(b == 0 ? w[0] & 0xffffu : w[0] >> 16));
#pragma unroll
            for (int i = 0; i < 8; ++i) c[i] = w[1 + 8 * b + i];
        } else if (b == 0) {
            *d = f16_to_f32((u16)(w[0] & 0xffffu));
#pragma unroll
            for (int i = 0; i < 8; ++i) c[i] = __byte_perm(w[i], w[i + 1], 0x5432);
        } else {
            *d = f16_to_f32((u16)(w[8] >> 16));
#pragma unroll
            for (int i = 0; i < 8; ++i) c[i] = w[9 + i];
        }
        *mn = 0.0f;
    }
};
// Q4_0 / Q4_1: byte j's low nibble is element j, its high nibble element 16 + j.
__device__ __forceinline__ void nibbles_to_codes(const u32* nb4, u32* c, u32 bias) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        c[i] = __vsub4(nb4[i] & 0x0f0f0f0fu, bias);
        c[4 + i] = __vsub4((nb4[i] >> 4) & 0x0f0f0f0fu, bias);
    }
}
struct G_q4_0 {  // 18-byte blocks: f16 d, 16 bytes of nibbles; code − 8
    static constexpr int BB = 18, PW = 9;
    static constexpr bool MIN = false, GROUPED = false, HALF16 = false;
    __device__ static void load(const u8*, int, u32*) {}
    __device__ static void dec(const u32* w, int b, u32* c, float* d, float* mn) {
        u32 n4[4];
        if (b == 0) {
            *d = f16_to_f32((u16)(w[0] & 0xffffu));
#pragma unroll
            for (int i = 0; i < 4; ++i) n4[i] = __byte_perm(w[i], w[i + 1], 0x5432);
        } else {
            *d = f16_to_f32((u16)(w[4] >> 16));
#pragma unroll
            for (int i = 0; i < 4; ++i) n4[i] = w[5 + i];
        }
        nibbles_to_codes(n4, c, 0x08080808u);
        *mn = 0.0f;
    }
};
struct G_q4_1 {  // 20-byte blocks: f16 d, f16 m, 16 bytes of nibbles; codes 0..15
    static constexpr int BB = 20, PW = 10;
    static constexpr bool MIN = true, GROUPED = false, HALF16 = false;
    __device__ static void load(const u8*, int, u32*) {}
    __device__ static void dec(const u32* w, int b, u32* c, float* d, float* mn) {
        const u32* p = w + 5 * b;
        *d = f16_to_f32((u16)(p[0] & 0xffffu));
        *mn = f16_to_f32((u16)(p[0] >> 16));
        nibbles_to_codes(p + 1, c, 0u);
    }
};

// Q4_K's pair (2p, 2p + 1) is sub-blocks 2j, 2j + 1 (j = p % 4) of super-block p / 4 (144 bytes:
// d, dmin, 12 bytes of 6-bit scales and mins, qs[128]): ra = {d | dmin << 16, the two
// sub-blocks' sc | m << 8 (16 bits each), qs[32 j .. 32 j + 32)} — sub-block 2j the low
// nibbles, 2j + 1 the high. A block's weight d · sc and min −dmin · m (dq_q4_k's dl, −ml), codes
// 0..15; with quant_x_q8k's codes the GEMM sums Σ (d·sc·q − dmin·m)·x.
struct G_q4_k {
    static constexpr int BB = 0, PW = 10;
    static constexpr bool MIN = true, GROUPED = true, HALF16 = false;
    __device__ static void load(const u8* wrow, int blk0, u32* ra) {
        const u8* b = wrow + (i64)(blk0 >> 3) * 144;
        const int j = (blk0 & 7) >> 1;
        u32 sc0, m0, sc1, m1;
        scale_min_k4(b + 4, 2 * j, &sc0, &m0);
        scale_min_k4(b + 4, 2 * j + 1, &sc1, &m1);
        ra[0] = ld2x16(b);
        ra[1] = sc0 | (m0 << 8) | (sc1 << 16) | (m1 << 24);
        const u8* qs = b + 16 + 32 * j;
#pragma unroll
        for (int i = 0; i < 8; ++i) ra[2 + i] = ld2x16(qs + 4 * i);
    }
    __device__ static void dec(const u32* w, int b, u32* c, float* d, float* mn) {
        const u32 sm = w[1] >> (16 * b);
        *d = __fmul_rn(f16_to_f32((u16)(w[0] & 0xffffu)), (float)(sm & 0xffu));
        *mn = -__fmul_rn(f16_to_f32((u16)(w[0] >> 16)), (float)((sm >> 8) & 0xffu));
#pragma unroll
        for (int i = 0; i < 8; ++i) c[i] = (w[2 + i] >> (4 * b)) & 0x0f0f0f0fu;
    }
};

// Q6_K's pair (2p, 2p + 1) is sub-blocks cc = 2j, 2j + 1 of super-block p / 4 (210 bytes: ql[128],
// qh[64], 16 i8 scales, d): they share their ql row of 64 bytes (cc's low or high nibbles: shift
// 4 ((cc % 4) / 2), the same for both) and their 32 qh bytes (crumb 2 (cc % 4)). ra = {ql's 64
// bytes, qh's 32, the four scales, d | (cc0 % 4) << 16}. HALF16: each 32-element block has two
// scales (its 16-element halves): dec gives the low half's d·sc as `d`, the high half's as `mn`;
// codes q − 32.
struct G_q6_k {
    static constexpr int BB = 0, PW = 26;
    static constexpr bool MIN = false, GROUPED = true, HALF16 = true;
    __device__ static void load(const u8* wrow, int blk0, u32* ra) {
        const u8* b = wrow + (i64)(blk0 >> 3) * 210;
        const int cc0 = blk0 & 7;
        const u8* ql = b + 64 * (cc0 >> 2);
        const u8* qh = b + 128 + 32 * (cc0 >> 2);
#pragma unroll
        for (int i = 0; i < 16; ++i) ra[i] = ld2x16(ql + 4 * i);
#pragma unroll
        for (int i = 0; i < 8; ++i) ra[16 + i] = ld2x16(qh + 4 * i);
        ra[24] = ld2x16(b + 192 + 2 * cc0);
        ra[25] = (u32)rd16(b + 208) | ((u32)(cc0 & 3) << 16);
    }
    __device__ static void dec(const u32* w, int b, u32* c, float* d, float* mn) {
        const int cc = (int)(w[25] >> 16) + b;  // the sub-block's index mod 4
        const int lsh = 4 * (cc >> 1), hsh = 2 * cc;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const u32 lo = (w[8 * b + i] >> lsh) & 0x0f0f0f0fu, hi = ((w[16 + i] >> hsh) & 0x03030303u) << 4;
            c[i] = __vsub4(lo | hi, 0x20202020u);
        }
        const float dd = f16_to_f32((u16)(w[25] & 0xffffu));
        *d = __fmul_rn(dd, (float)(i8)((w[24] >> (16 * b)) & 0xffu));
        *mn = __fmul_rn(dd, (float)(i8)((w[24] >> (16 * b + 8)) & 0xffu));
    }
};

// Q5_0 / Q5_1: element j < 16 is byte j's low nibble with bit j of qh as its fifth bit, element
// 16 + j the high nibble with bit 16 + j.
__device__ __forceinline__ void q5_codes(const u32* nb4, u32 qh, u32* c, u32 bias) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        c[i] = __vsub4((nb4[i] & 0x0f0f0f0fu) | fifth_bits((qh >> (4 * i)) & 15u), bias);
        c[4 + i] = __vsub4(((nb4[i] >> 4) & 0x0f0f0f0fu) | fifth_bits((qh >> (16 + 4 * i)) & 15u), bias);
    }
}
struct G_q5_0 {  // 22-byte blocks: f16 d, 4 bytes qh, 16 bytes of nibbles; code − 16
    static constexpr int BB = 22, PW = 11;
    static constexpr bool MIN = false, GROUPED = false, HALF16 = false;
    __device__ static void load(const u8*, int, u32*) {}
    __device__ static void dec(const u32* w, int b, u32* c, float* d, float* mn) {
        u32 n4[4], qh;
        if (b == 0) {
            *d = f16_to_f32((u16)(w[0] & 0xffffu));
            qh = __byte_perm(w[0], w[1], 0x5432);
#pragma unroll
            for (int i = 0; i < 4; ++i) n4[i] = __byte_perm(w[1 + i], w[2 + i], 0x5432);
        } else {
            *d = f16_to_f32((u16)(w[5] >> 16));
            qh = w[6];
#pragma unroll
            for (int i = 0; i < 4; ++i) n4[i] = w[7 + i];
        }
        q5_codes(n4, qh, c, 0x10101010u);
        *mn = 0.0f;
    }
};
struct G_q5_1 {  // 24-byte blocks: f16 d, f16 m, 4 bytes qh, 16 bytes of nibbles; codes 0..31
    static constexpr int BB = 24, PW = 12;
    static constexpr bool MIN = true, GROUPED = false, HALF16 = false;
    __device__ static void load(const u8*, int, u32*) {}
    __device__ static void dec(const u32* w, int b, u32* c, float* d, float* mn) {
        const u32* p = w + 6 * b;
        *d = f16_to_f32((u16)(p[0] & 0xffffu));
        *mn = f16_to_f32((u16)(p[0] >> 16));
        q5_codes(p + 2, p[1], c, 0u);
    }
};

// y[r·m + j] = res[r·m + j] + glu(gin[r·m + j], (Σ_blocks … ) + bias[j]) for token t < n,
// r = rows ? rows[t] : t, j < m (bias, gin (then `act`), res each optional: gin is the gate's
// output of the same rows, so a GLU pair is the gate's launch, then the up's). xq / xd / xs:
// quant_x_q8's output for every row r. grid (ceil(m / 128), ceil(n / 64)), block 256 (exactly);
// k a multiple of 64.
// PAIR (mmqg_: a GLU pair in one launch): the tile's rows 0..63 are the gate's (w) rows j0..,
// its rows 64..127 the up's (wb) same rows; the gate's values (with bias) wait in shared memory
// for the up's warps, which apply the GLU and the residual — each value the two launches' bits.
template <class G, int NI, int WM = 4, bool MULTI = false, bool PAIR = false>
__device__ __forceinline__ void mmq_t(const u8* w, const i8* xq, const float* xd, const float* xs, float* y, int n,
                                      int k, int m, i64 row_bytes, const unsigned* rows, const float* bias,
                                      const float* res, const float* gin, int act, const u8* wb = nullptr,
                                      const float* bias_b = nullptr, float* yb = nullptr, int mb = 0,
                                      const u8* wc = nullptr, const float* bias_c = nullptr, float* yc = nullptr,
                                      int mc = 0) {
    // WM warps along the weight rows (32 rows each: BM = 128 or 64), 8 / WM along the tokens
    // (NI·8 each); the values do not depend on the tile.
    constexpr int BM = 32 * WM, WN = 8 / WM;
    static_assert(WM == 4 || WM == 2, "mmq_t: 128- or 64-row tiles");
    __shared__ __align__(16) u8 sA[BM * GM_STR];
    constexpr int BN = WN * 8 * NI;          // tokens a block
    constexpr int UB = (BN * 8 + GM_THREADS - 1) / GM_THREADS;  // 16-byte token pieces a thread
    __shared__ __align__(16) u8 sB[BN * GM_STR];
    __shared__ float sAd[GM_KB][BM], sAm[GM_KB][BM], sBd[GM_KB][BN], sBs[GM_KB][BN];
    if (blockDim.x != GM_THREADS) return;  // uniform
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    const int wm = warp & (WM - 1), wn = warp >> (WM == 4 ? 2 : 1);
    static_assert(!PAIR || (WM == 4 && !MULTI), "mmq_t: a GLU pair takes 128-row tiles");
    const i64 j0 = (i64)blockIdx.x * (PAIR ? BM / 2 : BM);
    const int n0 = blockIdx.y * BN, nb = k / 32, nstage = (nb + GM_KB - 1) / GM_KB;
    // Loads of a stage: weight row `ar`'s pair `ap` of blocks (threads past the tile's rows
    // load none); two 16-byte pieces of token rows (`bt`, 8 pieces a row); one token's scale and
    // sum (`st`, block `skb`).
    const int ar = tid >> 1, ap = tid & 1;
    // MULTI (mmqm*_: q, k and v of one activation in one launch): the rows m, mb, mc of w, wb, wc
    // in turn, as the mat-vec's further projections; a tile may span two of them.
    const i64 total = MULTI ? (i64)m + mb + mc : m;
    const int arow = PAIR ? (ar & (BM / 2 - 1)) : ar;  // the row within its own weight
    const bool a_row = WM == 4 || ar < BM, a_ok = a_row && j0 + arow < total;  // 128 rows: every thread
    const u8* wrow;
    if constexpr (MULTI) {
        const MvSel sel = mv_select(a_ok ? j0 + ar : 0, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
        wrow = sel.w + sel.j * row_bytes;
    } else {
        wrow = (PAIR && ar >= BM / 2 ? wb : w) + (j0 + arow) * row_bytes;
    }
    const int st = tid >> 2, skb = tid & 3;
    const bool s_ok = st < BN && n0 + st < n;
    const i64 s_row = s_ok ? (i64)(rows ? rows[n0 + st] : (unsigned)(n0 + st)) : 0;
    i64 b_row[UB];
    bool b_ok[UB];
#pragma unroll
    for (int u = 0; u < UB; ++u) {
        const int tok = n0 + ((tid + GM_THREADS * u) >> 3);
        b_ok[u] = tid + GM_THREADS * u < BN * 8 && tok < n;
        b_row[u] = b_ok[u] ? (i64)(rows ? rows[tok] : (unsigned)tok) : 0;
    }
    u32 ra[G::PW];
    uint4 rb[UB];
    float rbd = 0.0f, rbs = 0.0f;
    bool ra_ok = false;
    auto load = [&](int stage) {
        const int blk0 = stage * GM_KB + 2 * ap;
        ra_ok = a_ok && blk0 < nb;
        if (ra_ok) {
            if constexpr (G::GROUPED) {
                G::load(wrow, blk0, ra);
            } else {
                const u32* p = (const u32*)(wrow + (i64)blk0 * G::BB);
#pragma unroll
                for (int i = 0; i < G::PW; ++i) ra[i] = p[i];
            }
        }
#pragma unroll
        for (int u = 0; u < UB; ++u) {
            const int seg = (tid + GM_THREADS * u) & 7;
            const int blk = stage * GM_KB + (seg >> 1);
            rb[u] = b_ok[u] && blk < nb ? *(const uint4*)(xq + b_row[u] * k + (i64)blk * 32 + (seg & 1) * 16)
                                        : make_uint4(0u, 0u, 0u, 0u);
        }
        const int sblk = stage * GM_KB + skb;
        const bool ok = s_ok && sblk < nb;
        rbd = ok ? xd[s_row * nb + sblk] : 0.0f;
        rbs = ok && G::MIN ? xs[s_row * nb + sblk] : 0.0f;
    };
    auto store = [&]() {
#pragma unroll
        for (int b = 0; b < 2; ++b) {
            if (!a_row) break;
            u32 c[8] = {0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u};
            float d = 0.0f, mn = 0.0f;
            if (ra_ok) G::dec(ra, b, c, &d, &mn);
            uint4* dst = (uint4*)(sA + ar * GM_STR + (2 * ap + b) * 32);
            dst[0] = make_uint4(c[0], c[1], c[2], c[3]);
            dst[1] = make_uint4(c[4], c[5], c[6], c[7]);
            sAd[2 * ap + b][ar] = d;
            sAm[2 * ap + b][ar] = mn;
        }
#pragma unroll
        for (int u = 0; u < UB; ++u) {
            const int idx = tid + GM_THREADS * u;
            if (idx < BN * 8) *(uint4*)(sB + (idx >> 3) * GM_STR + (idx & 7) * 16) = rb[u];
        }
        if (st < BN) {
            sBd[skb][st] = rbd;
            sBs[skb][st] = rbs;
        }
    };
    float acc[2][NI][4];
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.0f;
    load(0);
    for (int stage = 0; stage < nstage; ++stage) {
        __syncthreads();  // the previous stage's fragments are read
        store();
        __syncthreads();
        if (stage + 1 < nstage) load(stage + 1);  // in flight while this stage multiplies
        const int nkb = min(GM_KB, nb - stage * GM_KB);
        // The stage's 32-element blocks in a rolled loop (the default since stop 44: pp512 +6.0% /
        // +6.5%, H100; MMQ_FAT, an ORCD_NVRTC_DEFINES name, unrolls it — the A/B; the same values:
        // each accumulator's operations in the same order). ncu (H100, stop 43) put
        // `no_instruction` first among mmq_q8_0's stalls, its stage body ~29 KB unrolled.
#ifndef MMQ_FAT
#pragma unroll 1
#else
#pragma unroll
#endif
        for (int kb = 0; kb < GM_KB; ++kb) {
            if (kb >= nkb) break;  // uniform
            u32 a[2][4], b[NI][2];
#pragma unroll
            for (int mi = 0; mi < 2; ++mi) {
                const u8* p = sA + (wm * 32 + mi * 16 + g) * GM_STR + kb * 32 + t * 4;
                a[mi][0] = *(const u32*)p;
                a[mi][1] = *(const u32*)(p + 8 * GM_STR);
                a[mi][2] = *(const u32*)(p + 16);
                a[mi][3] = *(const u32*)(p + 8 * GM_STR + 16);
            }
#pragma unroll
            for (int ni = 0; ni < NI; ++ni) {
                const u8* p = sB + (wn * 8 * NI + ni * 8 + g) * GM_STR + kb * 32 + t * 4;
                b[ni][0] = *(const u32*)p;
                b[ni][1] = *(const u32*)(p + 16);
            }
#pragma unroll
            for (int mi = 0; mi < 2; ++mi) {
                const int r0 = wm * 32 + mi * 16 + g;
                const float dw[2] = {sAd[kb][r0], sAd[kb][r0 + 8]};
                const float mw[2] = {sAm[kb][r0], sAm[kb][r0 + 8]};
#pragma unroll
                for (int ni = 0; ni < NI; ++ni) {
                    const int c0 = wn * 8 * NI + ni * 8 + 2 * t;
                    const float dx[2] = {sBd[kb][c0], sBd[kb][c0 + 1]};
                    if constexpr (G::HALF16) {
                        // The block's halves apart (k 0..15 are fragments 0, 1; 16..31 are 2, 3),
                        // each with its scale (sAd the low half's, sAm the high's).
                        const u32 alo[4] = {a[mi][0], a[mi][1], 0u, 0u}, ahi[4] = {0u, 0u, a[mi][2], a[mi][3]};
                        int dl[4], dh[4];
                        mma_s8_16832(dl, alo, b[ni]);
                        mma_s8_16832(dh, ahi, b[ni]);
#pragma unroll
                        for (int e = 0; e < 4; ++e) {
                            float v = fmaf(__fmul_rn(dw[e >> 1], dx[e & 1]), (float)dl[e], acc[mi][ni][e]);
                            acc[mi][ni][e] = fmaf(__fmul_rn(mw[e >> 1], dx[e & 1]), (float)dh[e], v);
                        }
                        continue;
                    }
                    int d[4];
                    mma_s8_16832(d, a[mi], b[ni]);
                    const float sx[2] = {sBs[kb][c0], sBs[kb][c0 + 1]};
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        float v = fmaf(__fmul_rn(dw[e >> 1], dx[e & 1]), (float)d[e], acc[mi][ni][e]);
                        if (G::MIN) v = fmaf(mw[e >> 1], sx[e & 1], v);
                        acc[mi][ni][e] = v;
                    }
                }
            }
        }
    }
    if constexpr (PAIR) {
        // The gate's warps (wm 0, 1) leave their values with the bias in sA, now free; the up's
        // (wm 2, 3: the same rows and tokens, the same lanes) apply the GLU, then the residual.
        float* const sg = (float*)sA;  // [64 rows][BN tokens]: 16 KiB of sA's 18
        // f(accumulator, row of the pair's 64, token of the tile's BN) for each of the warp's.
        auto each = [&](auto f) {
#pragma unroll
            for (int mi = 0; mi < 2; ++mi)
#pragma unroll
                for (int ni = 0; ni < NI; ++ni)
#pragma unroll
                    for (int e = 0; e < 4; ++e)
                        f(acc[mi][ni][e], (wm & 1) * 32 + mi * 16 + g + 8 * (e >> 1),
                          wn * 8 * NI + ni * 8 + 2 * t + (e & 1));
        };
        __syncthreads();  // every warp's last fragments are read
        if (wm < 2) {
            each([&](float v, int r, int tl) {
                if (bias && j0 + r < m) v = __fadd_rn(v, bias[j0 + r]);
                sg[r * BN + tl] = v;
            });
        }
        __syncthreads();
        if (wm >= 2) {
            each([&](float u, int r, int tl) {
                const i64 j = j0 + r;
                const int tok = n0 + tl;
                if (j >= m || tok >= n) return;
                const i64 o = (i64)(rows ? rows[tok] : (unsigned)tok) * m + j;
                float v = glu_value_call(sg[r * BN + tl], u, act);
                if (res) v = __fadd_rn(res[o], v);
                y[o] = v;
            });
        }
        return;
    } else {  // (not instantiated for a pair: NVRTC warned of the loop as unreachable)
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const i64 j = j0 + wm * 32 + mi * 16 + g + 8 * (e >> 1);
                const int tok = n0 + wn * 8 * NI + ni * 8 + 2 * t + (e & 1);
                if (j >= total || tok >= n) continue;
                const i64 tr = (i64)(rows ? rows[tok] : (unsigned)tok);
                if constexpr (MULTI) {  // bias only (the ABI: no res, no gin)
                    const MvSel sel = mv_select(j, w, bias, y, m, wb, bias_b, yb, mb, wc, bias_c, yc, mc);
                    float v = acc[mi][ni][e];
                    if (sel.bias) v = __fadd_rn(v, sel.bias[sel.j]);
                    sel.y[tr * sel.m + sel.j] = v;
                    continue;
                }
                const i64 o = tr * m + j;
                float v = acc[mi][ni][e];
                if (bias) v = __fadd_rn(v, bias[j]);
#ifndef MMQ_FAT  // the activation out of line (its 32 inlined copies were 8,000 of 10,784 instructions)
                if (gin) v = glu_value_call(gin[o], v, act);
#else
                if (gin) v = glu_value(gin[o], v, act);
#endif
                if (res) v = __fadd_rn(res[o], v);
                y[o] = v;
            }
    }
}

#define MMQ_PARAMS                                                                                             \
    const unsigned char *w, const signed char *xq, const float *xd, const float *xs, float *y, int n, int k, int m, \
        long long row_bytes, const unsigned *rows, const float *bias, const float *res, const float *gin, int act
#define MMQ_BOUNDS __launch_bounds__(GM_THREADS, 2)  // 125 registers: two blocks an SM
#define MMQ_ARGS w, xq, xd, xs, y, n, k, m, row_bytes, rows, bias, res, gin, act
// A GLU pair in one launch (the default since stop 44; ORCD_CUDA_MMQ_PAIR=0 keeps two launches):
// gate rows from w, up rows from w2, y = res + glu(gate + bias, up); `gin` unused. Tiles of 64
// rows of each × 64 tokens.
#define MMQG_PARAMS MMQ_PARAMS, const unsigned char *w2
extern "C" __global__ void MMQ_BOUNDS mmqg_q8_0(MMQG_PARAMS) { mmq_t<G_q8_0, 4, 4, false, true>(MMQ_ARGS, w2); }
extern "C" __global__ void MMQ_BOUNDS mmqg_q4_0(MMQG_PARAMS) { mmq_t<G_q4_0, 4, 4, false, true>(MMQ_ARGS, w2); }
extern "C" __global__ void MMQ_BOUNDS mmqg_q4_1(MMQG_PARAMS) { mmq_t<G_q4_1, 4, 4, false, true>(MMQ_ARGS, w2); }
extern "C" __global__ void MMQ_BOUNDS mmqg_q4_k(MMQG_PARAMS) { mmq_t<G_q4_k, 4, 4, false, true>(MMQ_ARGS, w2); }
extern "C" __global__ void MMQ_BOUNDS mmqg_q6_k(MMQG_PARAMS) { mmq_t<G_q6_k, 4, 4, false, true>(MMQ_ARGS, w2); }
extern "C" __global__ void MMQ_BOUNDS mmqg_q5_0(MMQG_PARAMS) { mmq_t<G_q5_0, 4, 4, false, true>(MMQ_ARGS, w2); }
extern "C" __global__ void MMQ_BOUNDS mmqg_q5_1(MMQG_PARAMS) { mmq_t<G_q5_1, 4, 4, false, true>(MMQ_ARGS, w2); }
extern "C" __global__ void MMQ_BOUNDS mmq_q8_0(MMQ_PARAMS) { mmq_t<G_q8_0, 4>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmq_q4_0(MMQ_PARAMS) { mmq_t<G_q4_0, 4>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmq_q4_1(MMQ_PARAMS) { mmq_t<G_q4_1, 4>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmq_q4_k(MMQ_PARAMS) { mmq_t<G_q4_k, 4>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmq_q6_k(MMQ_PARAMS) { mmq_t<G_q6_k, 4>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmq_q5_0(MMQ_PARAMS) { mmq_t<G_q5_0, 4>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmq_q5_1(MMQ_PARAMS) { mmq_t<G_q5_1, 4>(MMQ_ARGS); }
// 32 tokens a block (mmq32_): twice the blocks where 64-token tiles leave SMs idle (a 896-row
// projection of 512 tokens is 7 × 8 = 56 blocks); the same values (a value's order is k's alone).
extern "C" __global__ void MMQ_BOUNDS mmq32_q8_0(MMQ_PARAMS) { mmq_t<G_q8_0, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmq32_q4_0(MMQ_PARAMS) { mmq_t<G_q4_0, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmq32_q4_1(MMQ_PARAMS) { mmq_t<G_q4_1, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmq32_q4_k(MMQ_PARAMS) { mmq_t<G_q4_k, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmq32_q6_k(MMQ_PARAMS) { mmq_t<G_q6_k, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmq32_q5_0(MMQ_PARAMS) { mmq_t<G_q5_0, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmq32_q5_1(MMQ_PARAMS) { mmq_t<G_q5_1, 2>(MMQ_ARGS); }
// 64-row tiles (mmqh_: 64 tokens, mmqh32_: 32), for the narrow projections whose 128-row grids
// leave SMs idle (ORCD_CUDA_MMQ64=1, not yet timed): the same values.
extern "C" __global__ void MMQ_BOUNDS mmqh_q8_0(MMQ_PARAMS) { mmq_t<G_q8_0, 2, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqh_q4_0(MMQ_PARAMS) { mmq_t<G_q4_0, 2, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqh_q4_1(MMQ_PARAMS) { mmq_t<G_q4_1, 2, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqh_q4_k(MMQ_PARAMS) { mmq_t<G_q4_k, 2, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqh_q6_k(MMQ_PARAMS) { mmq_t<G_q6_k, 2, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqh_q5_0(MMQ_PARAMS) { mmq_t<G_q5_0, 2, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqh_q5_1(MMQ_PARAMS) { mmq_t<G_q5_1, 2, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqh32_q8_0(MMQ_PARAMS) { mmq_t<G_q8_0, 1, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqh32_q4_0(MMQ_PARAMS) { mmq_t<G_q4_0, 1, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqh32_q4_1(MMQ_PARAMS) { mmq_t<G_q4_1, 1, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqh32_q4_k(MMQ_PARAMS) { mmq_t<G_q4_k, 1, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqh32_q6_k(MMQ_PARAMS) { mmq_t<G_q6_k, 1, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqh32_q5_0(MMQ_PARAMS) { mmq_t<G_q5_0, 1, 2>(MMQ_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqh32_q5_1(MMQ_PARAMS) { mmq_t<G_q5_1, 1, 2>(MMQ_ARGS); }
// q, k and v of one activation in one launch (mmqm32_: 128 × 32 tiles, mmqmh32_: 64 × 32; the
// host's default since stop 43; ORCD_CUDA_MMQ_QKV=0 keeps three launches): each projection's
// values as mmq_ gives them.
#define MMQM_PARAMS MMQ_PARAMS, const unsigned char *wb, const float *bias_b, float *yb, int mb, \
    const unsigned char *wc, const float *bias_c, float *yc, int mc
#define MMQM_ARGS MMQ_ARGS, wb, bias_b, yb, mb, wc, bias_c, yc, mc
extern "C" __global__ void MMQ_BOUNDS mmqm32_q8_0(MMQM_PARAMS) { mmq_t<G_q8_0, 2, 4, true>(MMQM_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqm32_q4_0(MMQM_PARAMS) { mmq_t<G_q4_0, 2, 4, true>(MMQM_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqm32_q4_1(MMQM_PARAMS) { mmq_t<G_q4_1, 2, 4, true>(MMQM_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqm32_q4_k(MMQM_PARAMS) { mmq_t<G_q4_k, 2, 4, true>(MMQM_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqm32_q6_k(MMQM_PARAMS) { mmq_t<G_q6_k, 2, 4, true>(MMQM_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqm32_q5_0(MMQM_PARAMS) { mmq_t<G_q5_0, 2, 4, true>(MMQM_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqm32_q5_1(MMQM_PARAMS) { mmq_t<G_q5_1, 2, 4, true>(MMQM_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqmh32_q8_0(MMQM_PARAMS) { mmq_t<G_q8_0, 1, 2, true>(MMQM_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqmh32_q4_0(MMQM_PARAMS) { mmq_t<G_q4_0, 1, 2, true>(MMQM_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqmh32_q4_1(MMQM_PARAMS) { mmq_t<G_q4_1, 1, 2, true>(MMQM_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqmh32_q4_k(MMQM_PARAMS) { mmq_t<G_q4_k, 1, 2, true>(MMQM_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqmh32_q6_k(MMQM_PARAMS) { mmq_t<G_q6_k, 1, 2, true>(MMQM_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqmh32_q5_0(MMQM_PARAMS) { mmq_t<G_q5_0, 1, 2, true>(MMQM_ARGS); }
extern "C" __global__ void MMQ_BOUNDS mmqmh32_q5_1(MMQM_PARAMS) { mmq_t<G_q5_1, 1, 2, true>(MMQM_ARGS); }
