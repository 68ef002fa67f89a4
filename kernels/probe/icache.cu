// icache.cu — what fetching a kernel's instructions costs when they are not cached: the question
// behind a decode step's slow kernels (GPU.md seventeenth block). A decode step runs each kernel
// once a layer, and our kernels are long straight-line code (everything unrolled: attention's
// text is 172 KB, down's 117 KB), executed once per block, so every instruction line may be a
// miss to L2 at every launch. Not part of the engine: a probe built and run on the GPU machine by
// ci/gpu-probe.sh (nvcc -arch=sm_90a), printing one table.
//
// Kernels of N FFMAs (8 independent accumulators, an immediate each: 16 bytes an instruction),
// 132 blocks of 128 threads (one warp a scheduler, as our one-row kernels), in three shapes:
//   warm      one kernel launched K times in a graph: its code cached after the first launch
//   cold      K distinct kernels of the same shape (their immediates differ), each once, in a
//             graph: code the SM has not run since the K - 1 others (K·N·16 bytes in all)
//   loop      the same N FFMAs as N/64 iterations of a 64-instruction body (1 KB of code), cold
// and an empty kernel. Per launch: the median over REPS replays of the graph / K.
#include "probe.h"

constexpr int BLOCKS = 132, THREADS = 128, K = 8;

// N FFMAs, straight-line; ID makes the immediates (so the code) differ between instances.
template <int N, int ID>
__global__ void straight(float* out, float a) {
    float x[8];
#pragma unroll
    for (int l = 0; l < 8; ++l) x[l] = (float)(threadIdx.x + l);
#pragma unroll
    for (int i = 0; i < N; ++i) x[i & 7] = fmaf(x[i & 7], 1.0f + (float)(i + ID * N + 1) * 0x1p-22f, a);
    float s = 0.0f;
#pragma unroll
    for (int l = 0; l < 8; ++l) s += x[l];
    if (s == 12345.0f) out[blockIdx.x * THREADS + threadIdx.x] = s;  // never true: keeps the work
}

// The same N FFMAs as a loop over a 64-instruction body.
template <int N, int ID>
__global__ void looped(float* out, float a) {
    float x[8];
#pragma unroll
    for (int l = 0; l < 8; ++l) x[l] = (float)(threadIdx.x + l);
#pragma unroll 1
    for (int r = 0; r < N / 64; ++r) {
#pragma unroll
        for (int i = 0; i < 64; ++i) x[i & 7] = fmaf(x[i & 7], 1.0f + (float)(i + ID * 64 + 1) * 0x1p-22f, a);
    }
    float s = 0.0f;
#pragma unroll
    for (int l = 0; l < 8; ++l) s += x[l];
    if (s == 12345.0f) out[blockIdx.x * THREADS + threadIdx.x] = s;
}

__global__ void empty(float* out, float a) {
    if (a == 12345.0f) out[threadIdx.x] = a;
}

#ifndef __CUDACC_RTC__
typedef void (*Kern)(float*, float);

template <int N, int... I>
std::vector<Kern> straights(std::integer_sequence<int, I...>) {
    return {straight<N, I>...};
}
template <int N, int... I>
std::vector<Kern> loops(std::integer_sequence<int, I...>) {
    return {looped<N, I>...};
}

// µs a launch: a graph of `seq` (each launched once, in order), replayed; median over reps.
static double time_graph(const std::vector<Kern>& seq, float* out, cudaStream_t st, int reps) {
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    for (Kern k : seq) k<<<BLOCKS, THREADS, 0, st>>>(out, 0.5f);
    CK(cudaStreamEndCapture(st, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int w = 0; w < 3; ++w) CK(cudaGraphLaunch(ge, st));
    std::vector<float> ms;
    for (int r = 0; r < reps; ++r) {
        CK(cudaEventRecord(e0, st));
        CK(cudaGraphLaunch(ge, st));
        CK(cudaEventRecord(e1, st));
        CK(cudaEventSynchronize(e1));
        float t;
        CK(cudaEventElapsedTime(&t, e0, e1));
        ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    CK(cudaGraphExecDestroy(ge));
    CK(cudaGraphDestroy(g));
    return 1e3 * ms[ms.size() / 2] / seq.size();
}

template <int N>
static void row(float* out, cudaStream_t st, int reps, double t_empty) {
    auto s = straights<N>(std::make_integer_sequence<int, K>{});
    auto l = loops<N>(std::make_integer_sequence<int, K>{});
    std::vector<Kern> warm;
    for (int r = 0; r < 4; ++r)
        for (int i = 0; i < K; ++i) warm.push_back(s[0]);
    std::vector<Kern> cold, loop;
    for (int r = 0; r < 4; ++r)
        for (int i = 0; i < K; ++i) {
            cold.push_back(s[i]);
            loop.push_back(l[i]);
        }
    const double tw = time_graph(warm, out, st, reps), tc = time_graph(cold, out, st, reps),
                 tl = time_graph(loop, out, st, reps);
    printf("%6d FFMA %6d B   warm %7.2f us   cold %7.2f us   loop %7.2f us   cold - warm %7.2f us = %5.1f ns a 128-B line\n",
           N, N * 16, tw - t_empty, tc - t_empty, tl - t_empty, tc - tw, 1e3 * (tc - tw) / (N * 16 / 128.0));
}

int main(int argc, char** argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 30;
    float* out;
    CK(cudaMalloc(&out, BLOCKS * THREADS * sizeof(float)));
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, 0));
    std::vector<Kern> e(4 * K, empty);
    const double te = time_graph(e, out, st, reps);
    printf("%s: %d blocks of %d threads, %d distinct kernels a shape (cold), medians of %d; empty kernel %.2f us a launch (subtracted)\n",
           p.name, BLOCKS, THREADS, K, reps, te);
    row<256>(out, st, reps, te);
    row<1024>(out, st, reps, te);
    row<2048>(out, st, reps, te);
    row<4096>(out, st, reps, te);
    return 0;
}
#endif
