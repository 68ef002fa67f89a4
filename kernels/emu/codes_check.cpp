// codes_check.cpp — the batched GLU's rounding epilogue (mv_glu_codes, stop 48: a GLU's 32-column
// groups rounded by each group's last block), run on the host through emu.h, checked bit for bit
// against the kernel it replaces (quant_x_q8 without a norm): the same codes, scales and Q8_1
// sums, and every counter zero again after the launch.
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

// The probe: one thread block's view of the device function.
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
    // matvecqg_ (2 × 8), matvectg_ (8 × 16).
    check_glu<2, 8>(5, 1536);
    check_glu<2, 8>(9, 4864);
    check_glu<8, 16>(16, 4864);
    check_glu<8, 16>(20, 2048);
    std::printf("codes_check passed: %d failure(s)\n", check::failures);
    return check::failures == 0 ? 0 : 1;
}
