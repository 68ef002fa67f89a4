// boundary.cu — what a kernel boundary costs on this card, against a barrier inside one persistent
// kernel: the measurement issue 13's item 4 (a persistent megakernel "if the timeline still shows
// gaps") turns on. Not part of the engine: a probe built and run on the GPU machine by
// ci/gpu-probe.sh (nvcc -arch=sm_90a), printing one table.
//
// The model of a decode step (the Qwen2.5-0.5B shape, Q8_0): 24 layers of 5 dependent steps whose
// weight slices are 1.1 MB (q·k·v), 0 (attention: no weights here), 0.85 MB (o), 9.3 MB (gate·up)
// and 4.6 MB (down): 380 MB a token, every slice its own buffer (so DRAM, not L2, after the
// first replay: the sum is 7× the L2). Each step reads its slice (16-byte loads, before the wait,
// as a mat-vec under PDL stages its weights), then waits for the step before, reads that step's
// output (one float a block) and writes its own: a real dependency chain, each block's value
// depends on every block of the step before.
//
// Modes (each the median of REPS timed replays after warm-ups, CUDA events):
//   chain       one kernel a step, captured in a CUDA graph, no PDL
//   chain-pdl   the same with programmatic dependent launch (the engine's mat-vecs)
//   persist-G   one kernel of G blocks for the whole token, a grid barrier (one counter, release
//               add / acquire spin) between steps; the next step's weights are loaded before the
//               wait, as PDL does
//   persist-pf<D>-G  the same, each block's share of step i + D - 1 copied into shared memory
//               (cp.async, D stages) before it waits on step i - 1: the DRAM stream runs ahead
//               of the barriers (a megakernel's weight pipeline)
// and the same three with every slice 0 bytes: the pure cost of 120 boundaries.
#include "probe.h"

constexpr int THREADS = 256;

__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

// This block's share of a slice: 16-byte loads, four in flight a thread, folded so none is dead.
__device__ __forceinline__ unsigned read_slice(const uint4* w, long long n16, int blk, int nblk) {
    unsigned acc = 0;
    const long long stride = (long long)nblk * THREADS;
    long long j = (long long)blk * THREADS + threadIdx.x;
    for (; j + 3 * stride < n16; j += 4 * stride) {
        const uint4 a = w[j], b = w[j + stride], c = w[j + 2 * stride], d = w[j + 3 * stride];
        acc += (a.x ^ a.y ^ a.z ^ a.w) + (b.x ^ b.y ^ b.z ^ b.w) + (c.x ^ c.y ^ c.z ^ c.w) + (d.x ^ d.y ^ d.z ^ d.w);
    }
    for (; j < n16; j += stride) {
        const uint4 a = w[j];
        acc += a.x ^ a.y ^ a.z ^ a.w;
    }
    return acc;
}

// After the wait: read the step before's outputs (nin floats), write this block's one.
__device__ __forceinline__ void consume(unsigned acc, const float* in, int nin, float* out, int blk) {
    __shared__ float red[THREADS / 32];
    float v = (float)(acc & 0xffu) * 1e-9f;
    for (int i = threadIdx.x; i < nin; i += THREADS) v += in[i];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0.0f;
        for (int i = 0; i < THREADS / 32; ++i) t += red[i];
        out[blk] = t * 0.5f;
    }
    __syncthreads();
}

__global__ void __launch_bounds__(THREADS) step_kernel(const uint4* w, long long n16, const float* in, int nin,
                                                       float* out) {
    pdl_trigger();  // the next step's blocks may start and load their slice meanwhile
    const unsigned acc = read_slice(w, n16, blockIdx.x, gridDim.x);
    pdl_wait();
    consume(acc, in, nin, out, blockIdx.x);
}

struct Steps {
    const uint4* const* w;  // per step: its slice
    const long long* n16;   // per step: 16-byte words
    float* const* buf;      // per step: its output (buf[s] has nblk floats); step s reads buf[s - 1]
    int n;
};

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void red_release_add(unsigned* p, unsigned v) {
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

__global__ void __launch_bounds__(THREADS) persistent_kernel(Steps s, unsigned* count) {
    const int nblk = gridDim.x;
    for (int i = 0; i < s.n; ++i) {
        const unsigned acc = read_slice(s.w[i], s.n16[i], blockIdx.x, nblk);
        if (i > 0) {  // wait for every block's step i - 1
            if (threadIdx.x == 0) {
                const unsigned target = (unsigned)i * (unsigned)nblk;
                while (ld_acquire(count) < target) {
                }
            }
            __syncthreads();
        }
        consume(acc, i > 0 ? s.buf[i - 1] : s.buf[s.n - 1], nblk, s.buf[i], blockIdx.x);
        if (threadIdx.x == 0) red_release_add(count, 1u);  // consume() ended with a barrier
    }
}

// persist-pf: the persistent kernel with its weights streamed ahead — each block copies its share
// of step i + D - 1 into shared memory (cp.async, D stages) before it waits on step i - 1, so the
// card's DRAM keeps reading while the blocks sit at the barrier and run the step's dependent work
// (a megakernel's pipeline; the mode above loads step i's share only after its own step i - 1).
// The weights are folded after the wait, as a mat-vec's dot needs the activation.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    const unsigned sa = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(sa), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

// Block blk's contiguous share of a slice of n16 words: [lo, hi).
__device__ __forceinline__ void share(long long n16, int blk, int nblk, long long* lo, long long* hi) {
    const long long per = (n16 + nblk - 1) / nblk;
    *lo = per * blk < n16 ? per * blk : n16;
    *hi = *lo + per < n16 ? *lo + per : n16;
}

template <int D>
__global__ void __launch_bounds__(THREADS) persistent_pf_kernel(Steps s, unsigned* count, long long stage16) {
    extern __shared__ uint4 stage[];  // D stages of stage16 words
    const int nblk = gridDim.x;
    auto issue = [&](int i) {
        if (i < s.n) {
            long long lo, hi;
            share(s.n16[i], blockIdx.x, nblk, &lo, &hi);
            uint4* dst = stage + (long long)(i % D) * stage16;
            for (long long j = lo + threadIdx.x; j < hi; j += THREADS) cp_async16(dst + (j - lo), s.w[i] + j);
        }
        cp_async_commit();  // an empty group past the end keeps the wait count uniform
    };
    for (int i = 0; i < D - 1; ++i) issue(i);
    for (int i = 0; i < s.n; ++i) {
        issue(i + D - 1);
        cp_async_wait<D - 1>();  // this thread's copies of step i landed
        __syncthreads();
        if (i > 0) {
            if (threadIdx.x == 0) {
                const unsigned target = (unsigned)i * (unsigned)nblk;
                while (ld_acquire(count) < target) {
                }
            }
            __syncthreads();
        }
        long long lo, hi;
        share(s.n16[i], blockIdx.x, nblk, &lo, &hi);
        const uint4* src = stage + (long long)(i % D) * stage16;
        unsigned acc = 0;
        for (long long j = threadIdx.x; j < hi - lo; j += THREADS) {
            const uint4 a = src[j];
            acc += a.x ^ a.y ^ a.z ^ a.w;
        }
        consume(acc, i > 0 ? s.buf[i - 1] : s.buf[s.n - 1], nblk, s.buf[i], blockIdx.x);
        if (threadIdx.x == 0) red_release_add(count, 1u);
    }
}

#ifdef __CUDACC_RTC__  // ci/nvrtc_check.py compiles the device code alone: instantiate what main() does
template __global__ void persistent_pf_kernel<2>(Steps, unsigned*, long long);
template __global__ void persistent_pf_kernel<3>(Steps, unsigned*, long long);
#else
static float median(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int main(int argc, char** argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 30;
    int dev = 0, sms = 0;
    CK(cudaSetDevice(dev));
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, dev));
    sms = prop.multiProcessorCount;
    printf("card: %s, %d SMs, L2 %d MB\n", prop.name, sms, prop.l2CacheSize >> 20);

    const int layers = 24;
    const double layer_mb[5] = {1.1, 0.0, 0.85, 9.3, 4.6};
    const int nsteps = layers * 5;
    std::vector<long long> n16(nsteps);
    long long total16 = 0;
    for (int i = 0; i < nsteps; ++i) {
        n16[i] = (long long)(layer_mb[i % 5] * 1e6 / 16.0);
        total16 += n16[i];
    }
    uint4* wall = nullptr;
    CK(cudaMalloc(&wall, (size_t)std::max(total16, 1LL) * 16));
    // Not zeros (METHOD.md): a byte pattern.
    CK(cudaMemset(wall, 0x5b, (size_t)std::max(total16, 1LL) * 16));
    std::vector<const uint4*> wptr(nsteps);
    long long off = 0;
    for (int i = 0; i < nsteps; ++i) {
        wptr[i] = wall + off;
        off += n16[i];
    }
    const int maxblk = sms * 16;
    float* bufall = nullptr;
    CK(cudaMalloc(&bufall, (size_t)nsteps * maxblk * sizeof(float)));
    CK(cudaMemset(bufall, 0, (size_t)nsteps * maxblk * sizeof(float)));
    std::vector<float*> bptr(nsteps);
    for (int i = 0; i < nsteps; ++i) bptr[i] = bufall + (size_t)i * maxblk;
    const uint4** d_w;
    long long* d_n16;
    float** d_buf;
    long long* d_zero16;
    CK(cudaMalloc(&d_w, nsteps * sizeof(void*)));
    CK(cudaMalloc(&d_n16, nsteps * sizeof(long long)));
    CK(cudaMalloc(&d_zero16, nsteps * sizeof(long long)));
    CK(cudaMalloc(&d_buf, nsteps * sizeof(void*)));
    CK(cudaMemcpy(d_w, wptr.data(), nsteps * sizeof(void*), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_n16, n16.data(), nsteps * sizeof(long long), cudaMemcpyHostToDevice));
    CK(cudaMemset(d_zero16, 0, nsteps * sizeof(long long)));
    CK(cudaMemcpy(d_buf, bptr.data(), nsteps * sizeof(void*), cudaMemcpyHostToDevice));
    unsigned* count = nullptr;
    CK(cudaMalloc(&count, sizeof(unsigned)));

    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));

    int occ = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, persistent_kernel, THREADS, 0));
    int occ_step = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ_step, step_kernel, THREADS, 0));
    printf("blocks of %d an SM: step_kernel %d, persistent_kernel %d\n", THREADS, occ_step, occ);

    // The chain's grid: as the engine's mat-vecs, enough blocks to fill the card, each step.
    const int chain_blk = std::min(sms * occ_step, maxblk);
    // The median of `reps` timed runs of `run` (after 3 warm-ups), CUDA events around each.
    auto time_reps = [&](auto run) {
        for (int i = 0; i < 3; ++i) run();
        std::vector<float> t;
        for (int r = 0; r < reps; ++r) {
            CK(cudaEventRecord(e0, st));
            run();
            CK(cudaEventRecord(e1, st));
            CK(cudaEventSynchronize(e1));
            float ms = 0;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            t.push_back(ms);
        }
        CK(cudaGetLastError());
        return median(t);
    };
    // A CUDA graph of one step_kernel launch per step in `steps` (each reading the step before
    // it in the token's order), with or without PDL, its slices empty or not: ms per replay.
    auto time_graph = [&](const std::vector<int>& steps, bool pdl, bool empty) {
        cudaGraph_t g;
        cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
        for (int i : steps) {
            cudaLaunchConfig_t cfg = {};
            cfg.gridDim = dim3(chain_blk);
            cfg.blockDim = dim3(THREADS);
            cfg.stream = st;
            cudaLaunchAttribute at[1];
            at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
            at[0].val.programmaticStreamSerializationAllowed = 1;
            cfg.attrs = at;
            cfg.numAttrs = pdl ? 1 : 0;
            const float* in = bptr[(i + nsteps - 1) % nsteps];
            CK(cudaLaunchKernelEx(&cfg, step_kernel, wptr[i], empty ? 0LL : n16[i], in, chain_blk, bptr[i]));
        }
        CK(cudaStreamEndCapture(st, &g));
        CK(cudaGraphInstantiate(&ge, g, 0));
        const float ms = time_reps([&] { CK(cudaGraphLaunch(ge, st)); });
        CK(cudaGraphExecDestroy(ge));
        CK(cudaGraphDestroy(g));
        return ms;
    };
    std::vector<int> all_steps(nsteps);
    for (int i = 0; i < nsteps; ++i) all_steps[i] = i;
    auto time_persist = [&](int nblk, bool empty) {
        Steps s{d_w, empty ? d_zero16 : d_n16, d_buf, nsteps};
        return time_reps([&] {
            CK(cudaMemsetAsync(count, 0, sizeof(unsigned), st));
            void* args[] = {&s, &count};
            // Cooperative: the launch fails rather than deadlock if the blocks cannot all be resident.
            CK(cudaLaunchCooperativeKernel((void*)persistent_kernel, dim3(nblk), dim3(THREADS), args, 0, st));
        });
    };
    // The streamed persistent kernel: stages of the largest share, D of them in shared memory.
    long long max16 = 0;
    for (long long v : n16) max16 = std::max(max16, v);
    auto time_persist_pf = [&](int nblk, int d, bool empty) -> float {
        const long long stage16 = empty ? 1 : (max16 + nblk - 1) / nblk;
        const size_t smem = (size_t)d * stage16 * 16;
        if (smem > (size_t)prop.sharedMemPerBlockOptin) return -1.0f;
        void* fn = d == 2 ? (void*)persistent_pf_kernel<2> : (void*)persistent_pf_kernel<3>;
        CK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        int occ_pf = 0;
        CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ_pf, fn, THREADS, smem));
        if (occ_pf * sms < nblk) return -1.0f;
        Steps s{d_w, empty ? d_zero16 : d_n16, d_buf, nsteps};
        long long st16 = stage16;
        return time_reps([&] {
            CK(cudaMemsetAsync(count, 0, sizeof(unsigned), st));
            void* args[] = {&s, &count, &st16};
            CK(cudaLaunchCooperativeKernel(fn, dim3(nblk), dim3(THREADS), args, smem, st));
        });
    };
    // The memset before each persistent launch, timed alone, is subtracted from nothing: it is
    // printed so a reader can.
    const double bytes = (double)total16 * 16.0;
    printf("steps a token: %d (%d layers x 5), weights %.1f MB a token\n", nsteps, layers, bytes / 1e6);
    printf("%-16s %10s %12s %12s %10s\n", "mode", "ms/token", "us/step", "GB/s", "tok/s");
    auto row = [&](const char* name, float ms, bool empty) {
        printf("%-16s %10.4f %12.3f %12.1f %10.1f\n", name, ms, 1e3 * ms / nsteps, empty ? 0.0 : bytes / (ms * 1e-3) / 1e9,
               1e3 / ms);
    };
    for (int empty = 1; empty >= 0; --empty) {
        const char* sfx = empty ? " (empty)" : "";
        char name[64];
        snprintf(name, sizeof name, "chain%s", sfx);
        row(name, time_graph(all_steps, false, empty), empty);
        snprintf(name, sizeof name, "chain-pdl%s", sfx);
        row(name, time_graph(all_steps, true, empty), empty);
        for (int per : {1, 2, 4, 8}) {
            if (per > occ) break;
            snprintf(name, sizeof name, "persist-%d%s", sms * per, sfx);
            row(name, time_persist(sms * per, empty), empty);
        }
        for (int d : {2, 3}) {
            for (int per : {1, 2}) {
                const float ms = time_persist_pf(sms * per, d, empty);
                if (ms < 0) continue;  // the stages do not fit
                snprintf(name, sizeof name, "persist-pf%d-%d%s", d, sms * per, sfx);
                row(name, ms, empty);
            }
        }
    }
    // Per step class: a graph of the 24 layers' slices of one class alone (PDL), so each
    // class's time is its own read at the card's occupancy: the floor a mat-vec of that size
    // can reach in a chain, against the engine's per-kernel times (docs/perf/GPU.md).
    for (int c = 0; c < 5; ++c) {
        if (layer_mb[c] == 0.0) continue;
        std::vector<int> steps;
        for (int l = 0; l < layers; ++l) steps.push_back(5 * l + c);
        const float ms = time_graph(steps, true, false);
        printf("class %.2f MB x %d (chain-pdl): %8.3f us a kernel, %8.1f GB/s\n", layer_mb[c], layers, 1e3 * ms / layers,
               layers * layer_mb[c] * 1e6 / (ms * 1e-3) / 1e9);
    }
    // A check that the chain ran: every output written (finite and not the memset's 0 pattern
    // alone is not provable here; the values are read so the work is not dead).
    std::vector<float> last(chain_blk);
    CK(cudaMemcpy(last.data(), bptr[nsteps - 1], chain_blk * sizeof(float), cudaMemcpyDeviceToHost));
    double sum = 0;
    for (float v : last) sum += v;
    printf("checksum %.6g\n", sum);
    return 0;
}
#endif
