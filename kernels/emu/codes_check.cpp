// codes_check.cpp — the producers' epilogues that round an output where it is made (stop 48),
// run on the host through emu.h, checked bit for bit against the kernels they replace:
//   - rms_scale_warp (one warp playing rms_norm's 256 threads) against rms_scale_256 (the block
//     of 128 every norm-fused kernel uses): the same double, for row lengths around the strides
//     and values of wide dynamic range (where the summation order shows in the last bit);
//   - mv_norm_codes (a batched projection's row tile normalized and rounded by its last block)
//     and mv_glu_codes (a GLU's 32-column groups rounded by each group's last block) against
//     quant_x_q8 with and without its norm: the same codes, scales and Q8_1 sums, and every
//     counter zero again after the launch.
// Exit 0 when every case holds, 1 otherwise; one line per case.
#include "emu.h"
#include "../src/ops.cu"
#include "check.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using check::next_u64;
using check::report;
using check::uniform;

// A row of `n` values: magnitudes spread over `decades` powers of ten, random signs.
std::vector<float> row(int n, int decades) {
    std::vector<float> v((size_t)n);
    for (auto& x : v) x = uniform(-1.0f, 1.0f) * std::pow(10.0f, (float)(next_u64() % (uint64_t)(decades + 1)) - 2.0f);
    return v;
}

// The probes: one thread block's view of each device function.
double got_256, got_warp;
void scale_probe(const float* x, int n, float eps) {
    __shared__ double red[9];
    const double a = rms_scale_256<true>(x, n, eps, red);
    const double b = threadIdx.x < 32 ? rms_scale_warp(x, n, eps) : 0.0;
    if (threadIdx.x == 0) { got_256 = a; got_warp = b; }
}
template <int C, int R>
void norm_probe(const float* y, int n_out, int m, const float* nw, float eps, i8* q, float* d, float* s, unsigned* c) {
    mv_norm_codes<C, R>(y, n_out, m, m, nw, eps, q, d, s, c);
}
template <int C, int R>
void glu_probe(const float* y, int n_out, int m, i8* q, float* d, float* s, unsigned* c) {
    mv_glu_codes<C, R>(y, n_out, m, q, d, s, c);
}

struct Codes {
    std::vector<i8> q;
    std::vector<float> d, s;
    Codes(int rows, int m) : q((size_t)rows * m), d((size_t)rows * m / 32), s((size_t)rows * m / 32) {}
    bool operator==(const Codes& o) const {
        return q == o.q && std::memcmp(d.data(), o.d.data(), d.size() * 4) == 0 &&
               std::memcmp(s.data(), o.s.data(), s.size() * 4) == 0;
    }
};

Codes reference(const std::vector<float>& y, int rows, int m, const float* nw, float eps) {
    Codes c(rows, m);
    emu_launch({(unsigned)rows, 1, 1}, MV_THREADS, 0, [&] {
        quant_x_q8(y.data(), c.q.data(), c.d.data(), c.s.data(), rows, m, nw != nullptr, nw, eps);
    });
    return c;
}

template <int C, int R>
void check_norm(int rows, int m, int decades) {
    std::vector<float> y((size_t)rows * m), nw = row(m, 1);
    for (int r = 0; r < rows; ++r) {
        const auto v = row(m, decades);
        std::copy(v.begin(), v.end(), y.begin() + (size_t)r * m);
    }
    const float eps = 1e-6f;
    const Codes want = reference(y, rows, m, nw.data(), eps);
    Codes got(rows, m);
    std::vector<unsigned> counts((size_t)(rows + R - 1) / R, 0u);
    const unsigned grid = (unsigned)(((rows + R - 1) / R) * ((m + C - 1) / C));
    emu_launch({grid, 1, 1}, MV_THREADS, 0, [&] {
        norm_probe<C, R>(y.data(), rows, m, nw.data(), eps, got.q.data(), got.d.data(), got.s.data(), counts.data());
    });
    bool zero = true;
    for (unsigned c : counts) zero = zero && c == 0;
    report(got == want && zero, "mv_norm_codes<" + std::to_string(C) + "," + std::to_string(R) + "> rows " +
                                    std::to_string(rows) + " m " + std::to_string(m) + " decades " +
                                    std::to_string(decades) + (zero ? "" : " (a counter left non-zero)"));
}

template <int C, int R>
void check_glu(int rows, int m) {
    std::vector<float> y((size_t)rows * m);
    for (int r = 0; r < rows; ++r) {
        const auto v = row(m, 3);
        std::copy(v.begin(), v.end(), y.begin() + (size_t)r * m);
    }
    const Codes want = reference(y, rows, m, nullptr, 0.0f);
    Codes got(rows, m);
    std::vector<unsigned> counts((size_t)((rows + R - 1) / R) * (m / 32), 0u);
    const unsigned grid = (unsigned)(((rows + R - 1) / R) * ((m + C - 1) / C));
    emu_launch({grid, 1, 1}, MV_THREADS, 0, [&] {
        glu_probe<C, R>(y.data(), rows, m, got.q.data(), got.d.data(), got.s.data(), counts.data());
    });
    bool zero = true;
    for (unsigned c : counts) zero = zero && c == 0;
    report(got == want && zero, "mv_glu_codes<" + std::to_string(C) + "," + std::to_string(R) + "> rows " +
                                    std::to_string(rows) + " m " + std::to_string(m) + (zero ? "" : " (a counter left non-zero)"));
}

}  // namespace

int main() {
    check::rng_state = 0x636f646573ull;  // "codes"
    // The scale: lengths below, at and past the 256-thread stride; 1 to 12 decades of magnitude.
    for (int n : {32, 200, 256, 576, 640, 896, 1000, 2048, 4864}) {
        for (int decades : {1, 6, 12}) {
            const auto x = row(n, decades);
            for (float eps : {1e-6f, 1e-5f}) {
                emu_launch({1, 1, 1}, MV_THREADS, 0, [&] { scale_probe(x.data(), n, eps); });
                uint64_t a, b;
                std::memcpy(&a, &got_256, 8);
                std::memcpy(&b, &got_warp, 8);
                report(a == b, "rms_scale_warp n " + std::to_string(n) + " decades " + std::to_string(decades) +
                                   " eps " + std::to_string(eps));
            }
        }
    }
    // The launches' layouts: matvecq_ (4 × 8), matvect_ (16 × 16), matvectn_ / matvectl_ (8 × 16);
    // partial row tiles, Qwen2.5-0.5B's and SmolLM2's widths.
    check_norm<4, 8>(5, 896, 3);
    check_norm<4, 8>(16, 896, 8);
    check_norm<4, 8>(9, 576, 3);
    check_norm<16, 16>(20, 896, 3);
    check_norm<8, 16>(16, 896, 12);
    check_norm<8, 16>(33, 640, 3);
    // matvecqg_ (2 × 8), matvectg_ (8 × 16).
    check_glu<2, 8>(5, 1536);
    check_glu<2, 8>(9, 4864);
    check_glu<8, 16>(16, 4864);
    check_glu<8, 16>(20, 2048);
    std::printf("codes_check passed: %d failure(s)\n", check::failures);
    return check::failures == 0 ? 0 : 1;
}
