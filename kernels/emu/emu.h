// emu.h — runs kernels/src/ops.cu as host C++ (g++ -std=c++20, x86-64), one CUDA thread per
// fiber, so a kernel's indexing, staging and warp-level logic can be checked without a GPU.
//
// What it models: threadIdx/blockIdx/blockDim/gridDim; __shared__ memory (function statics: one
// block runs at a time); __syncthreads (a barrier of the block's threads, threads that return
// drop out of it as on the GPU); the warp intrinsics ops.cu uses (__shfl_xor_sync, __shfl_sync,
// with every lane of the warp taking part, as ops.cu guarantees); the f16 tensor-core
// mma.sync.m16n8k16 (f32 sums, attention_mma) and the int8 tensor-core mma.sync.m16n8k32 (the PTX ISA's fragment layout: A row-major 16×32, B column-major 32×8, C
// 16×8); the rounding intrinsics (__fmul_rn … exact IEEE operations here; build with
// -ffp-contract=off so nothing else fuses); IEEE half conversions (F16C, round to nearest even).
// What it does not model: timing, memory ordering between blocks, PDL (griddepcontrol is a no-op
// off the device), the hardware's NaN payload details beyond what ops.cu spells out.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#define ORCD_EMU 1
using std::isfinite;
using std::isnan;
#define __global__
#define __device__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __shared__ static
#define __launch_bounds__(...)
// Alignment is not needed on the host (uint4 here is four unsigned, aligned to 4).
#define __align__(n)

struct EmuDim {
    unsigned x = 0, y = 0, z = 0;
};
inline EmuDim threadIdx, blockIdx;  // the running fiber's (one block at a time)
inline EmuDim blockDim, gridDim;

struct uint2 { unsigned x, y; };
struct uint4 { unsigned x, y, z, w; };
struct float4 { float x, y, z, w; };
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }

template <class T, class U> inline T emu_bits(U u) {
    static_assert(sizeof(T) == sizeof(U));
    T t;
    std::memcpy(&t, &u, sizeof t);
    return t;
}
inline float __uint_as_float(unsigned u) { return emu_bits<float>(u); }
inline float __int_as_float(int u) { return emu_bits<float>(u); }
inline unsigned __float_as_uint(float f) { return emu_bits<unsigned>(f); }
inline int __float_as_int(float f) { return emu_bits<int>(f); }
inline double __longlong_as_double(long long v) { return emu_bits<double>(v); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __ddiv_rn(double a, double b) { return a / b; }

inline int __dp4a(int a, int b, int c) {
    for (int i = 0; i < 4; ++i) c += (int)(int8_t)(a >> (8 * i)) * (int)(int8_t)(b >> (8 * i));
    return c;
}
inline unsigned __vsub4(unsigned a, unsigned b) {
    unsigned r = 0;
    for (int i = 0; i < 4; ++i) r |= ((((a >> (8 * i)) & 0xffu) - ((b >> (8 * i)) & 0xffu)) & 0xffu) << (8 * i);
    return r;
}
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    const uint64_t v = (uint64_t)x | ((uint64_t)y << 32);
    unsigned r = 0;
    for (int i = 0; i < 4; ++i) r |= (unsigned)((v >> (8 * ((s >> (4 * i)) & 7u))) & 0xffu) << (8 * i);
    return r;
}

inline float emu_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t emu_f32_to_f16(float x) { return (uint16_t)_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT); }

// ---- the block: its threads as fibers on one OS thread ------------------------------------------
// A block's threads run as fibers (own stacks, an x86-64 context switch of the callee-saved
// registers), round-robin on the calling thread: each runs until it reaches a barrier (the
// block's __syncthreads, or its warp's: a shuffle or an mma is write, warp barrier, read, warp
// barrier) or returns. A barrier releases its threads once every live thread of its scope has
// arrived (a returned thread no longer counts, as on the GPU). Nothing runs in parallel, so
// shared memory (function statics) needs no locks; a barrier no thread can pass is reported.
extern "C" void emu_switch(void** save_sp, void* load_sp);
extern "C" void emu_fiber_start();
asm(R"(
    .text
    .globl emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
    .globl emu_fiber_start
    .type emu_fiber_start, @function
emu_fiber_start:
    movq %rbx, %rdi
    callq *%r12
    ud2
    .size emu_fiber_start, .-emu_fiber_start
)");

enum class EmuState { Run, Block, Warp, Done };
struct EmuFiber {
    void* sp = nullptr;
    unsigned tid = 0;
    EmuState st = EmuState::Run;
};
struct EmuBlock {
    std::vector<EmuFiber> f;
    std::vector<uint64_t> xch;       // per warp: 32 lanes × 8 words (shuffles, mma fragments)
    std::vector<unsigned char> dyn;  // dynamic shared memory
    void* sched_sp = nullptr;
    EmuFiber* cur = nullptr;
    const std::function<void()>* kernel = nullptr;
};
inline EmuBlock* g_emu = nullptr;
constexpr size_t EMU_STACK = 256 * 1024;
inline std::vector<std::unique_ptr<unsigned char[]>> g_emu_stacks;  // reused by every block

inline unsigned emu_lane() { return threadIdx.x & 31u; }
inline unsigned emu_warp() { return threadIdx.x >> 5; }
inline uint64_t* emu_slot(unsigned warp, unsigned lane) { return &g_emu->xch[((size_t)warp * 32 + lane) * 8]; }
inline void emu_yield(EmuState why) {
    EmuFiber* f = g_emu->cur;
    f->st = why;
    emu_switch(&f->sp, g_emu->sched_sp);
}
inline void emu_warp_sync() { emu_yield(EmuState::Warp); }
inline void __syncthreads() { emu_yield(EmuState::Block); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu_warp_sync(); }

extern "C" inline void emu_fiber_main(EmuFiber* f) {
    (*g_emu->kernel)();
    f->st = EmuState::Done;
    emu_switch(&f->sp, g_emu->sched_sp);
    __builtin_unreachable();
}

template <class T> T emu_shfl_from(T v, unsigned src) {
    static_assert(sizeof(T) <= 8);
    uint64_t raw = 0;
    std::memcpy(&raw, &v, sizeof v);
    *emu_slot(emu_warp(), emu_lane()) = raw;
    emu_warp_sync();
    const uint64_t got = *emu_slot(emu_warp(), src & 31u);
    emu_warp_sync();  // nobody writes again before every lane has read
    T out;
    std::memcpy(&out, &got, sizeof out);
    return out;
}
template <class T> T __shfl_xor_sync(unsigned, T v, int o) { return emu_shfl_from(v, emu_lane() ^ (unsigned)o); }
template <class T> T __shfl_sync(unsigned, T v, int src) { return emu_shfl_from(v, (unsigned)src); }

// mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 with C = 0: lane (g = lane / 4, t = lane % 4)
// holds A rows g and g + 8, k bytes 4t.. and 16 + 4t.. (a0: g, a1: g + 8, a2: g / +16, a3: g + 8 / +16),
// B column g, k bytes 4t.. (b0) and 16 + 4t.. (b1), and gets D (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1).
// Every lane's A (4 registers) and B (2) fragments into the warp's exchange slots, then a warp
// barrier: each lane may read any lane's (slot words 0..3: A, 4..5: B).
inline void emu_mma_exchange(const unsigned* a, const unsigned* b) {
    uint64_t* mine = emu_slot(emu_warp(), emu_lane());
    for (int i = 0; i < 4; ++i) mine[i] = a[i];
    mine[4] = b[0];
    mine[5] = b[1];
    emu_warp_sync();
}

// Element (row, k) of the exchanged A fragments and (k, col) of B, for EPR elements a 32-bit
// register (4 int8, 2 f16): `elt(word, k)` takes element k mod EPR of a register.
template <int EPR, class Elt> inline auto emu_frag_a(int row, int k, Elt elt) {
    const unsigned lane = (unsigned)((row & 7) * 4 + (k % (4 * EPR)) / EPR);
    const int reg = (row >= 8 ? 1 : 0) + (k >= 4 * EPR ? 2 : 0);
    return elt(emu_slot(emu_warp(), lane)[reg], k);
}
template <int EPR, class Elt> inline auto emu_frag_b(int k, int col, Elt elt) {
    const unsigned lane = (unsigned)(col * 4 + (k % (4 * EPR)) / EPR);
    return elt(emu_slot(emu_warp(), lane)[4 + (k >= 4 * EPR ? 1 : 0)], k);
}

inline void emu_mma_s8_16832(int* d, const unsigned* a, const unsigned* b) {
    emu_mma_exchange(a, b);
    auto byte = [](uint64_t w, int k) { return (int)(int8_t)(w >> (8 * (k & 3))); };
    auto A = [&](int row, int k) { return emu_frag_a<4>(row, k, byte); };
    auto B = [&](int k, int col) { return emu_frag_b<4>(k, col, byte); };
    const int g = (int)emu_lane() >> 2, t = (int)emu_lane() & 3;
    for (int e = 0; e < 4; ++e) {
        const int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
        int s = 0;
        for (int k = 0; k < 32; ++k) s += A(row, k) * B(k, col);
        d[e] = s;
    }
    emu_warp_sync();
}

// mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32, D = A·B + C: lane (g, t) holds A rows g and
// g + 8 at columns 2t, 2t + 1 (a0: g, a1: g + 8) and 2t + 8, 2t + 9 (a2: g, a3: g + 8), B column
// g at rows 2t, 2t + 1 (b0) and 2t + 8, 2t + 9 (b1), the lower half of a register the lower
// index; C/D as the int8 form's. The hardware's order and width of the sum are unspecified: here
// the products (exact in f32) summed in double, then C added and rounded once.
inline void emu_mma_f16_16816(float* d, const unsigned* a, const unsigned* b) {
    emu_mma_exchange(a, b);
    auto half = [](uint64_t w, int k) { return emu_f16_to_f32((uint16_t)(w >> (16 * (k & 1)))); };
    auto A = [&](int row, int k) { return emu_frag_a<2>(row, k, half); };
    auto B = [&](int k, int col) { return emu_frag_b<2>(k, col, half); };
    const int g = (int)emu_lane() >> 2, t = (int)emu_lane() & 3;
    float out[4];
    for (int e = 0; e < 4; ++e) {
        const int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
        double s = 0.0;
        for (int k = 0; k < 16; ++k) s += (double)A(row, k) * (double)B(k, col);
        out[e] = (float)((double)d[e] + s);
    }
    emu_warp_sync();
    for (int e = 0; e < 4; ++e) d[e] = out[e];
}

// Run one block of `block` threads. Returns false when its threads wait at barriers none can pass.
inline bool emu_run_block(EmuBlock& b, unsigned block) {
    while (g_emu_stacks.size() < block) g_emu_stacks.emplace_back(new unsigned char[EMU_STACK]);
    b.f.assign(block, EmuFiber{});
    for (unsigned t = 0; t < block; ++t) {
        EmuFiber& f = b.f[t];
        f.tid = t;
        // The first switch into a fiber "returns" into emu_fiber_start with rbx = the fiber and
        // r12 = emu_fiber_main; the frame below is what emu_switch pops (16-byte aligned).
        auto top = (uintptr_t)(g_emu_stacks[t].get() + EMU_STACK) & ~(uintptr_t)15;
        auto* sp = (uint64_t*)(top - 128);
        uint32_t ctl[2] = {0x1f80u, 0x037fu};  // MXCSR, x87 control word: the defaults
        std::memcpy(&sp[0], ctl, 8);
        sp[1] = 0;                               // r15
        sp[2] = 0;                               // r14
        sp[3] = 0;                               // r13
        sp[4] = (uint64_t)(uintptr_t)&emu_fiber_main;  // r12
        sp[5] = (uint64_t)(uintptr_t)&f;         // rbx
        sp[6] = 0;                               // rbp
        sp[7] = (uint64_t)(uintptr_t)&emu_fiber_start;  // return address
        f.sp = sp;
    }
    const unsigned warps = (block + 31) / 32;
    for (;;) {
        bool ran = false;
        for (EmuFiber& f : b.f) {
            if (f.st != EmuState::Run) continue;
            ran = true;
            threadIdx = EmuDim{f.tid, 0, 0};
            b.cur = &f;
            emu_switch(&b.sched_sp, f.sp);
        }
        // Release what every live thread of a scope has reached.
        unsigned live = 0, at_block = 0;
        for (EmuFiber& f : b.f) {
            live += f.st != EmuState::Done;
            at_block += f.st == EmuState::Block;
        }
        if (live == 0) return true;
        bool released = false;
        if (at_block == live) {
            for (EmuFiber& f : b.f) if (f.st == EmuState::Block) f.st = EmuState::Run;
            released = true;
        }
        for (unsigned w = 0; w < warps; ++w) {
            unsigned wl = 0, wat = 0;
            for (unsigned l = 32 * w; l < std::min(block, 32 * w + 32); ++l) {
                wl += b.f[l].st != EmuState::Done;
                wat += b.f[l].st == EmuState::Warp;
            }
            if (wl > 0 && wat == wl) {
                for (unsigned l = 32 * w; l < std::min(block, 32 * w + 32); ++l) b.f[l].st = EmuState::Run;
                released = true;
            }
        }
        if (!ran && !released) return false;
    }
}

// Run `kernel` over `grid` blocks of `block` threads (a multiple of 32), one block at a time.
// Returns false (and stops) at a block whose barriers deadlock.
inline bool emu_launch(EmuDim grid, unsigned block, size_t dyn_smem, const std::function<void()>& kernel) {
    gridDim = grid;
    blockDim = EmuDim{block, 1, 1};
    EmuBlock b;
    b.kernel = &kernel;
    b.xch.assign((size_t)((block + 31) / 32) * 32 * 8, 0);
    b.dyn.assign(dyn_smem, 0);
    g_emu = &b;
    bool ok = true;
    for (unsigned z = 0; z < grid.z && ok; ++z)
        for (unsigned y = 0; y < grid.y && ok; ++y)
            for (unsigned x = 0; x < grid.x && ok; ++x) {
                blockIdx = EmuDim{x, y, z};
                ok = emu_run_block(b, block);
            }
    g_emu = nullptr;
    return ok;
}
