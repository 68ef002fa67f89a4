// mmq_check.cpp — the prefill GEMM (quant_x_q8 + mmq_<ty>, kernels/ABI.md) run on the host through
// emu.h, checked against plain loops written from the ABI's words, value for value:
//   - quant_x_q8's codes, scales and sums against the Q8_0 / Q8_1 rounding rule (amax / 127 as f16,
//     round half to even, Σ codes · amax / 127 as f16);
//   - mmq_<ty> against acc = fmaf(d_w·d_x, Σ qw·qx, acc) over the blocks in order (Q4_1:
//     then fmaf(m_w, s_x, acc)), then bias, GLU of the gate, residual: bit for bit;
//   - rows left out of a row map are not written;
//   - the same matmul through the mat-vec (fast numerics): bit for bit for Q8_0, Q4_0 and Q4_1,
//     every entry point (their sums are in the GEMM's order: batch-invariant); Q5_0 / Q5_1's
//     mat-vec multiplies dequantized floats: NMSE ≤ 1e-6;
//   - mmq with the float64 product of the dequantized values to NMSE ≤ 5e-4 (test-backend-ops's
//     max_nmse_err for matmul).
// Exit 0 when every case holds, 1 otherwise; one line per case.
#include "emu.h"
#include "../src/ops.cu"

#include <cstdio>
#include <string>

namespace {

uint64_t rng_state = 0x9e3779b97f4a7c15ull;
uint64_t next_u64() {  // splitmix64
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
float uniform(float lo, float hi) { return lo + (hi - lo) * (float)((next_u64() >> 40) * (1.0 / 16777216.0)); }

enum class Ty { Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 };
const char* ty_name(Ty t) {
    switch (t) {
        case Ty::Q8_0: return "q8_0";
        case Ty::Q4_0: return "q4_0";
        case Ty::Q4_1: return "q4_1";
        case Ty::Q5_0: return "q5_0";
        default: return "q5_1";
    }
}
int block_bytes(Ty t) {
    switch (t) {
        case Ty::Q8_0: return 34;
        case Ty::Q4_0: return 18;
        case Ty::Q4_1: return 20;
        case Ty::Q5_0: return 22;
        default: return 24;
    }
}
bool has_min(Ty t) { return t == Ty::Q4_1 || t == Ty::Q5_1; }
// The types whose mat-vec sums in the GEMM's order (kernels/ABI.md, "batch-invariant").
bool invariant(Ty t) { return t == Ty::Q8_0 || t == Ty::Q4_0 || t == Ty::Q4_1; }

void put16(uint8_t* p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
uint16_t get16(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }

// A GGUF weight of m rows of k elements, random codes and scales.
std::vector<uint8_t> make_weight(Ty ty, int m, int k) {
    const int nb = k / 32, bb = block_bytes(ty);
    std::vector<uint8_t> w((size_t)m * nb * bb);
    for (size_t b = 0; b < (size_t)m * nb; ++b) {
        uint8_t* p = &w[b * bb];
        put16(p, emu_f32_to_f16(uniform(0.002f, 0.03f)));
        if (ty == Ty::Q8_0) {
            for (int i = 0; i < 32; ++i) p[2 + i] = (uint8_t)(int8_t)((int)(next_u64() % 255) - 127);
        } else if (ty == Ty::Q4_0) {
            for (int i = 0; i < 16; ++i) p[2 + i] = (uint8_t)next_u64();
        } else if (ty == Ty::Q4_1) {
            put16(p + 2, emu_f32_to_f16(uniform(-0.1f, 0.1f)));
            for (int i = 0; i < 16; ++i) p[4 + i] = (uint8_t)next_u64();
        } else if (ty == Ty::Q5_0) {
            for (int i = 0; i < 20; ++i) p[2 + i] = (uint8_t)next_u64();  // qh, then the nibbles
        } else {
            put16(p + 2, emu_f32_to_f16(uniform(-0.1f, 0.1f)));
            for (int i = 0; i < 20; ++i) p[4 + i] = (uint8_t)next_u64();
        }
    }
    return w;
}

// Block b of row j: integer codes, scale, min (value = d·code + m).
void weight_block(Ty ty, const uint8_t* w, int k, int j, int b, int* code, float* d, float* mn) {
    const int nb = k / 32, bb = block_bytes(ty);
    const uint8_t* p = w + ((size_t)j * nb + b) * bb;
    *d = emu_f16_to_f32(get16(p));
    *mn = 0.0f;
    if (ty == Ty::Q8_0) {
        for (int i = 0; i < 32; ++i) code[i] = (int8_t)p[2 + i];
    } else if (ty == Ty::Q4_0 || ty == Ty::Q4_1) {
        const uint8_t* q = p + (ty == Ty::Q4_0 ? 2 : 4);
        if (ty == Ty::Q4_1) *mn = emu_f16_to_f32(get16(p + 2));
        for (int i = 0; i < 16; ++i) {
            code[i] = (q[i] & 15) - (ty == Ty::Q4_0 ? 8 : 0);
            code[16 + i] = (q[i] >> 4) - (ty == Ty::Q4_0 ? 8 : 0);
        }
    } else {
        // ggml's block_q5_0 / q5_1: qh's bit j is element j's fifth bit, bit 16 + j element 16 + j's.
        const uint8_t* h = p + (ty == Ty::Q5_0 ? 2 : 4);
        const uint32_t qh = (uint32_t)h[0] | ((uint32_t)h[1] << 8) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 24);
        const uint8_t* q = h + 4;
        if (ty == Ty::Q5_1) *mn = emu_f16_to_f32(get16(p + 2));
        const int off = ty == Ty::Q5_0 ? 16 : 0;
        for (int i = 0; i < 16; ++i) {
            code[i] = ((q[i] & 15) | (int)(((qh >> i) & 1) << 4)) - off;
            code[16 + i] = ((q[i] >> 4) | (int)(((qh >> (16 + i)) & 1) << 4)) - off;
        }
    }
}

struct Quant {
    std::vector<int8_t> q;
    std::vector<float> d, s;
};

// The Q8_0 / Q8_1 rounding of kernels/ABI.md, from its words.
Quant reference_quant(const std::vector<float>& x, int rows, int k) {
    Quant r;
    r.q.resize((size_t)rows * k);
    r.d.resize((size_t)rows * k / 32);
    r.s.resize(r.d.size());
    for (int i = 0; i < rows; ++i)
        for (int b = 0; b < k / 32; ++b) {
            const float* v = &x[(size_t)i * k + 32 * b];
            float amax = 0.0f;
            for (int l = 0; l < 32; ++l) amax = std::fmax(amax, std::fabs(v[l]));
            const float d0 = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
            int sum = 0;
            for (int l = 0; l < 32; ++l) {
                const int c = (int)std::fmin(std::fmax(std::rint(v[l] * id), -128.0f), 127.0f);
                r.q[(size_t)i * k + 32 * b + l] = (int8_t)c;
                sum += c;
            }
            r.d[(size_t)i * (k / 32) + b] = emu_f16_to_f32(emu_f32_to_f16(d0));
            r.s[(size_t)i * (k / 32) + b] = emu_f16_to_f32(emu_f32_to_f16(d0 * (float)sum));
        }
    return r;
}

double nmse(const std::vector<float>& a, const std::vector<double>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den == 0 ? num : num / den;
}

int failures = 0;
void report(bool ok, const std::string& what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++failures;
}

// A launch whose barriers deadlock is a failure of its own.
void launch(EmuDim grid, unsigned block, const std::function<void()>& k) {
    if (!emu_launch(grid, block, 0, k)) report(false, "a block's threads wait at barriers none can pass");
}

struct Case {
    Ty ty;
    int k, m, rows_total;
    std::vector<unsigned> rows;  // empty: every row
    bool bias, res, glu;
    bool matvec;  // also run the mat-vec for comparison (slow under emulation)
};

void run(const Case& c) {
    const int k = c.k, m = c.m, nb = k / 32, R = c.rows_total;
    std::string name = std::string(ty_name(c.ty)) + " k" + std::to_string(k) + " m" + std::to_string(m) + " rows" +
                       std::to_string(R) + (c.rows.empty() ? "" : " map" + std::to_string(c.rows.size())) +
                       (c.bias ? " bias" : "") + (c.res ? " res" : "") + (c.glu ? " glu" : "");
    const auto w = make_weight(c.ty, m, k);
    const auto w2 = c.glu ? make_weight(c.ty, m, k) : std::vector<uint8_t>();
    std::vector<float> x((size_t)R * k), bias(m), res((size_t)R * m);
    for (auto& v : x) v = uniform(-3.0f, 3.0f);
    for (int i = 0; i < R; i += 7) x[(size_t)i * k + 5] = 40.0f;  // an outlier: one block's amax
    for (auto& v : bias) v = uniform(-1.0f, 1.0f);
    for (auto& v : res) v = uniform(-1.0f, 1.0f);

    // quant_x_q8 against the rule.
    Quant got;
    got.q.assign((size_t)R * k, 0);
    got.d.assign((size_t)R * nb, -1.0f);
    got.s.assign((size_t)R * nb, -1.0f);
    launch({(unsigned)R, 1, 1}, 128, [&] {
        quant_x_q8(x.data(), got.q.data(), got.d.data(), got.s.data(), R, k, 0, nullptr, 0.0f);
    });
    const Quant ref = reference_quant(x, R, k);
    const bool qok = got.q == ref.q && std::memcmp(got.d.data(), ref.d.data(), ref.d.size() * 4) == 0 &&
                     (!has_min(c.ty) || std::memcmp(got.s.data(), ref.s.data(), ref.s.size() * 4) == 0);
    report(qok, "quant_x_q8 " + name);

    // The GEMM.
    const std::vector<unsigned> rows = c.rows;
    const int n = rows.empty() ? R : (int)rows.size();
    const float sentinel = -12345.5f;
    std::vector<float> y((size_t)R * m, sentinel), gate((size_t)R * m, sentinel);
    const long long row_bytes = (long long)nb * block_bytes(c.ty);
    auto gemm = [&](const std::vector<uint8_t>& wt, float* out, const float* b, const float* r, const float* gin) {
        launch({(unsigned)((m + 127) / 128), (unsigned)((n + 63) / 64), 1}, 256, [&] {
            const unsigned* rp = rows.empty() ? nullptr : rows.data();
            auto f = c.ty == Ty::Q8_0   ? mmq_q8_0
                     : c.ty == Ty::Q4_0 ? mmq_q4_0
                     : c.ty == Ty::Q4_1 ? mmq_q4_1
                     : c.ty == Ty::Q5_0 ? mmq_q5_0
                                        : mmq_q5_1;
            f(wt.data(), got.q.data(), got.d.data(), got.s.data(), out, n, k, m, row_bytes, rp, b, r, gin, 0);
        });
    };
    if (c.glu) {
        gemm(w, gate.data(), c.bias ? bias.data() : nullptr, nullptr, nullptr);
        gemm(w2, y.data(), nullptr, c.res ? res.data() : nullptr, gate.data());
    } else {
        gemm(w, y.data(), c.bias ? bias.data() : nullptr, c.res ? res.data() : nullptr, nullptr);
    }

    // The ABI's formula, loop by loop; and the float64 product of the dequantized values.
    std::vector<char> wanted(R, rows.empty() ? 1 : 0);
    for (unsigned r : rows) wanted[r] = 1;
    auto dot = [&](const std::vector<uint8_t>& wt, int i, int j, double* exact) {
        float acc = 0.0f;
        double e = 0.0;
        for (int b = 0; b < nb; ++b) {
            int code[32];
            float dw, mw;
            weight_block(c.ty, wt.data(), k, j, b, code, &dw, &mw);
            int isum = 0;
            for (int l = 0; l < 32; ++l) {
                isum += code[l] * ref.q[(size_t)i * k + 32 * b + l];
                e += ((double)dw * code[l] + mw) * x[(size_t)i * k + 32 * b + l];
            }
            acc = std::fmaf(dw * ref.d[(size_t)i * nb + b], (float)isum, acc);
            if (has_min(c.ty)) acc = std::fmaf(mw, ref.s[(size_t)i * nb + b], acc);
        }
        *exact = e;
        return acc;
    };
    bool bits = true, untouched = true;
    std::vector<float> flat;
    std::vector<double> exact;
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < m; ++j) {
            const float have = y[(size_t)i * m + j];
            if (!wanted[i]) {
                untouched &= have == sentinel;
                continue;
            }
            double e1 = 0, e2 = 0;
            float v = dot(w, i, j, &e1);
            if (c.bias) v = v + bias[j], e1 += bias[j];
            if (c.glu) {
                const float u = dot(w2, i, j, &e2);
                v = glu_value(v, u, 0);
                e1 = e1 / (1.0 + std::exp(-e1)) * e2;
            }
            if (c.res) v = res[(size_t)i * m + j] + v, e1 += res[(size_t)i * m + j];
            if (std::memcmp(&v, &have, 4) != 0) {
                if (bits) std::printf("     first difference: row %d col %d: %.9g, wanted %.9g\n", i, j, have, v);
                bits = false;
            }
            flat.push_back(have);
            exact.push_back(e1);
        }
    report(bits, "mmq_" + std::string(ty_name(c.ty)) + " bit for bit with the ABI's formula: " + name);
    if (!rows.empty()) report(untouched, "mmq rows outside the map untouched: " + name);
    const double ne = nmse(flat, exact);
    char buf[64];
    std::snprintf(buf, sizeof buf, " (NMSE %.2e)", ne);
    report(ne <= 5e-4, "mmq vs the float64 product of the dequantized values" + std::string(buf) + ": " + name);

    if (c.matvec && !c.glu && rows.empty()) {
        // The mat-vec of the fast numerics on the same rows: grid (m, ceil(n / 8)), rpb 8.
        std::vector<float> ym((size_t)R * m, 0.0f);
        launch({(unsigned)m, (unsigned)((R + 7) / 8), 1}, 128, [&] {
            const float* b = c.bias ? bias.data() : nullptr;
            const float* r = c.res ? res.data() : nullptr;
            auto mv = c.ty == Ty::Q8_0   ? matvec_q8_0
                      : c.ty == Ty::Q4_0 ? matvec_q4_0
                      : c.ty == Ty::Q4_1 ? matvec_q4_1
                      : c.ty == Ty::Q5_0 ? matvec_q5_0
                                         : matvec_q5_1;
            mv(w.data(), x.data(), ym.data(), R, k, m, row_bytes, nullptr, 0, 0, b, 8, r, 0, nullptr, 0, 0, nullptr,
               0.0f, nullptr, nullptr, nullptr, 0, nullptr, nullptr, nullptr, 0);
        });
        if (invariant(c.ty)) {
            report(std::memcmp(y.data(), ym.data(), y.size() * 4) == 0, "matvec_" + std::string(ty_name(c.ty)) +
                                                                           " bit for bit with the GEMM: " + name);
        } else {
            std::vector<double> ymd(ym.begin(), ym.end());
            const double nm = nmse(y, ymd);
            std::snprintf(buf, sizeof buf, " (NMSE %.2e)", nm);
            report(nm <= 1e-6, "mmq vs matvec (fast numerics)" + std::string(buf) + ": " + name);
        }
    }
}

// Every mat-vec entry point of an invariant type (Q8_0, Q4_0, Q4_1) against the GEMM on the same
// rows, bit for bit (kernels/ABI.md: the fast numerics' order is the GEMM's): the one-column
// `matvec_` (rpb 8), `matvec8_`, `matvec4_` (rpb 2), `matvec2l_` (U = 6: two passes when
// k > 6,144), the GLU pair `matvec8g_`, the norm fused (`norm`, `nw`), and the pre-rounded
// input (xq 3: quant_x_q8p's records).
using MvFn = void (*)(MATVEC_PARAMS);
struct MvVariant {
    const char* name;
    MvFn fn;
    int cols, rpb;
};
void run_mv(Ty ty, int k, int m, int R) {
    const int nb = k / 32;
    const std::string name = std::string(ty_name(ty)) + " k" + std::to_string(k) + " m" + std::to_string(m) +
                             " rows" + std::to_string(R);
    const auto w = make_weight(ty, m, k), w2 = make_weight(ty, m, k);
    std::vector<float> x((size_t)R * k), bias(m), res((size_t)R * m), nw(k);
    for (auto& v : x) v = uniform(-3.0f, 3.0f);
    x[5] = 40.0f;
    for (auto& v : bias) v = uniform(-1.0f, 1.0f);
    for (auto& v : res) v = uniform(-1.0f, 1.0f);
    for (auto& v : nw) v = uniform(0.5f, 1.5f);
    const long long row_bytes = (long long)nb * block_bytes(ty);
    const float eps = 1e-6f;
    for (int norm = 0; norm < 2; ++norm) {
        // The GEMM's rows: quant_x_q8 (norm fused as the mat-vec fuses it), then mmq.
        Quant q;
        q.q.assign((size_t)R * k, 0);
        q.d.assign((size_t)R * nb, 0.0f);
        q.s.assign((size_t)R * nb, 0.0f);
        launch({(unsigned)R, 1, 1}, 128, [&] {
            quant_x_q8(x.data(), q.q.data(), q.d.data(), q.s.data(), R, k, norm, norm ? nw.data() : nullptr, eps);
        });
        auto mmq = ty == Ty::Q8_0 ? mmq_q8_0 : ty == Ty::Q4_0 ? mmq_q4_0 : mmq_q4_1;
        std::vector<float> g((size_t)R * m, 0.0f), gate((size_t)R * m, 0.0f), glu((size_t)R * m, 0.0f);
        launch({(unsigned)((m + 127) / 128), (unsigned)((R + 63) / 64), 1}, 256, [&] {
            mmq(w.data(), q.q.data(), q.d.data(), q.s.data(), g.data(), R, k, m, row_bytes, nullptr, bias.data(),
                res.data(), nullptr, 0);
        });
        launch({(unsigned)((m + 127) / 128), (unsigned)((R + 63) / 64), 1}, 256, [&] {
            mmq(w.data(), q.q.data(), q.d.data(), q.s.data(), gate.data(), R, k, m, row_bytes, nullptr, bias.data(),
                nullptr, nullptr, 0);
        });
        launch({(unsigned)((m + 127) / 128), (unsigned)((R + 63) / 64), 1}, 256, [&] {
            mmq(w2.data(), q.q.data(), q.d.data(), q.s.data(), glu.data(), R, k, m, row_bytes, nullptr, nullptr,
                res.data(), gate.data(), 0);
        });
        const bool q8 = ty == Ty::Q8_0, q4 = ty == Ty::Q4_0;
        const MvVariant vs[] = {
            {"matvec", q8 ? matvec_q8_0 : q4 ? matvec_q4_0 : matvec_q4_1, 1, 8},
            {"matvec8", q8 ? matvec8_q8_0 : q4 ? matvec8_q4_0 : matvec8_q4_1, 8, 1},
            {"matvec4", q8 ? matvec4_q8_0 : q4 ? matvec4_q4_0 : matvec4_q4_1, 4, 2},
            {"matvec2l", q8 ? matvec2l_q8_0 : q4 ? matvec2l_q4_0 : matvec2l_q4_1, 2, 1},
            {"matvec8g", q8 ? matvec8g_q8_0 : q4 ? matvec8g_q4_0 : matvec8g_q4_1, 8, 1},
            {"matvec4 (GLU pair)", q8 ? matvec4_q8_0 : q4 ? matvec4_q4_0 : matvec4_q4_1, 4, 2},
            {"matvec (GLU pair)", q8 ? matvec_q8_0 : q4 ? matvec_q4_0 : matvec_q4_1, 1, 8},
        };
        for (const MvVariant& v : vs) {
            const bool pair = std::string(v.name) == "matvec8g" || std::string(v.name).find("GLU") != std::string::npos;
            std::vector<float> y((size_t)R * m, -1.0f);
            launch({(unsigned)((m + v.cols - 1) / v.cols), (unsigned)((R + v.rpb - 1) / v.rpb), 1}, 128, [&] {
                v.fn(w.data(), x.data(), y.data(), R, k, m, row_bytes, nullptr, 0, 0, bias.data(), v.rpb, res.data(), 0,
                     pair ? w2.data() : nullptr, 0, norm, norm ? nw.data() : nullptr, eps, nullptr, nullptr, nullptr, 0,
                     nullptr, nullptr, nullptr, 0);
            });
            const std::vector<float>& want = pair ? glu : g;
            report(std::memcmp(y.data(), want.data(), y.size() * 4) == 0,
                   std::string(v.name) + (norm ? " (norm)" : "") + " bit for bit with the GEMM: " + name);
        }
        // Three projections of one input in one launch (q, k, v: `wb`, `wc`), against each one's GEMM.
        {
            const int mb = 8, mc = 12;
            const auto wb = make_weight(ty, mb, k), wc = make_weight(ty, mc, k);
            std::vector<float> gb((size_t)R * mb), gc((size_t)R * mc);
            auto gemm_to = [&](const std::vector<uint8_t>& wt, int mm, float* out) {
                launch({(unsigned)((mm + 127) / 128), (unsigned)((R + 63) / 64), 1}, 256, [&] {
                    mmq(wt.data(), q.q.data(), q.d.data(), q.s.data(), out, R, k, mm, row_bytes, nullptr, nullptr,
                        nullptr, nullptr, 0);
                });
            };
            std::vector<float> g0((size_t)R * m);
            gemm_to(w, m, g0.data());
            gemm_to(wb, mb, gb.data());
            gemm_to(wc, mc, gc.data());
            for (int vi = 0; vi < 3; ++vi) {
                const MvVariant& v = vs[vi];
                std::vector<float> y((size_t)R * m, -1.0f), yb((size_t)R * mb, -1.0f), yc((size_t)R * mc, -1.0f);
                launch({(unsigned)((m + mb + mc + v.cols - 1) / v.cols), (unsigned)((R + v.rpb - 1) / v.rpb), 1}, 128, [&] {
                    v.fn(w.data(), x.data(), y.data(), R, k, m, row_bytes, nullptr, 0, 0, nullptr, v.rpb, nullptr, 0,
                         nullptr, 0, norm, norm ? nw.data() : nullptr, eps, wb.data(), nullptr, yb.data(), mb,
                         wc.data(), nullptr, yc.data(), mc);
                });
                const bool same = std::memcmp(y.data(), g0.data(), y.size() * 4) == 0 &&
                                  std::memcmp(yb.data(), gb.data(), yb.size() * 4) == 0 &&
                                  std::memcmp(yc.data(), gc.data(), yc.size() * 4) == 0;
                report(same, std::string(v.name) + " q, k, v in one launch" + (norm ? " (norm)" : "") +
                                 " bit for bit with three GEMMs: " + name);
            }
        }
        // xq 3: the records of quant_x_q8p (the same values as quant_x_q8's) read as they are.
        std::vector<uint8_t> rec((size_t)R * (k + k / 4), 0);
        launch({(unsigned)R, 1, 1}, 128, [&] {
            quant_x_q8p(x.data(), rec.data(), R, k, norm, norm ? nw.data() : nullptr, eps);
        });
        for (int rw = 0; rw < 3; ++rw) {  // matvec8_, matvec_, matvec2l_ (the head's entry points)
            const MvVariant v = rw == 0 ? vs[1] : rw == 1 ? vs[0] : vs[3];
            std::vector<float> y((size_t)R * m, -1.0f);
            launch({(unsigned)((m + v.cols - 1) / v.cols), (unsigned)((R + v.rpb - 1) / v.rpb), 1}, 128, [&] {
                v.fn(w.data(), (const float*)rec.data(), y.data(), R, k, m, row_bytes, nullptr, 0, 0, bias.data(), v.rpb,
                     res.data(), 3, nullptr, 0, 0, nullptr, eps, nullptr, nullptr, nullptr, 0, nullptr, nullptr, nullptr,
                     0);
            });
            report(std::memcmp(y.data(), g.data(), y.size() * 4) == 0,
                   std::string(v.name) + " xq 3 (quant_x_q8p" + (norm ? ", norm" : "") + ") bit for bit with the GEMM: " +
                       name);
        }
    }
}

}  // namespace

int main() {
    std::vector<unsigned> some;
    for (unsigned r = 2; r < 75; r += (r % 5 == 0 ? 3 : 1)) some.push_back(r);
    const Case cases[] = {
        // Two 128-column tiles (the second partial) × two 64-token tiles (the second partial),
        // a last stage of two blocks (k = 192: 6 blocks), bias and residual.
        {Ty::Q8_0, 192, 130, 70, {}, true, true, false, false},
        {Ty::Q4_0, 192, 130, 70, {}, false, false, false, false},
        {Ty::Q4_1, 192, 130, 70, {}, true, false, false, false},
        // The mat-vec beside the GEMM on a narrow weight (each of its blocks is a thread set here).
        {Ty::Q8_0, 192, 12, 70, {}, true, true, false, true},
        {Ty::Q4_0, 192, 12, 70, {}, false, false, false, true},
        {Ty::Q4_1, 192, 12, 70, {}, true, false, false, true},
        // Q5_0 / Q5_1 (gemma-3's q, k, gate and up): the fifth bits from qh, Q5_1's min.
        {Ty::Q5_0, 192, 130, 70, {}, true, true, false, false},
        {Ty::Q5_1, 256, 40, 75, some, false, true, false, false},
        {Ty::Q5_0, 192, 12, 70, {}, false, false, false, true},
        {Ty::Q5_1, 192, 12, 70, {}, true, false, false, true},
        {Ty::Q5_0, 320, 64, 16, {}, false, true, true, false},
        // A row map (the GEMM rows of a mixed batch), one stage exactly (k = 128), a GLU pair.
        {Ty::Q8_0, 128, 40, 75, some, false, true, false, false},
        {Ty::Q4_1, 256, 33, 20, {}, false, false, true, false},
        {Ty::Q8_0, 320, 64, 16, {}, true, true, true, false},
    };
    for (const Case& c : cases) run(c);
    for (Ty ty : {Ty::Q8_0, Ty::Q4_0, Ty::Q4_1}) run_mv(ty, 1152, 20, 3);
    run_mv(Ty::Q4_0, 64, 20, 3);    // two blocks: 8 of the 128 threads hold a part
    run_mv(Ty::Q4_1, 6400, 4, 1);  // matvec2l_'s second pass (U · 128 = 768 parts a pass)
    std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
