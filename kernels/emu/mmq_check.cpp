// mmq_check.cpp — the prefill GEMM (quant_x_q8 + mmq_<ty>, kernels/ABI.md) run on the host through
// emu.h, checked against plain loops written from the ABI's words, value for value:
//   - quant_x_q8's codes, scales and sums against the Q8_0 / Q8_1 rounding rule (amax / 127 as f16,
//     round half to even, Σ codes · amax / 127 as f16);
//   - mmq_<ty> against acc = fmaf(d_w·d_x, Σ qw·qx, acc) over the blocks in order (Q4_1:
//     then fmaf(m_w, s_x, acc)), then bias, GLU of the gate, residual: bit for bit;
//   - rows left out of a row map are not written;
//   - the same matmul through the mat-vec (matvec_<ty>, fast numerics) agrees to NMSE ≤ 1e-6
//     (the same integers, other float roundings), and with the float64 product of the
//     dequantized values to NMSE ≤ 5e-4 (test-backend-ops's max_nmse_err for matmul).
//   - the batched mat-vec (matvecq_ / matvecqg_ on quant_x_q8's codes, matvecf_ / matvecfg_ on
//     floats: several rows a block) bit for bit with matvec_<ty> run one row a block (rpb 1), the
//     row-independence of kernels/ABI.md: a row's value does not depend on the batch it is in.
// Exit 0 when every case holds, 1 otherwise; one line per case.
#include "emu.h"
#include "../src/ops.cu"
#include "check.h"

#include <cstdio>
#include <string>

// The batched GLU entry points with matvecq_'s parameters: their four more (the output's codes,
// ORCD_CUDA_GLU_CODES; kernels/emu/codes_check.cpp checks those) null.
#define GLU_WRAP(K) \
    void K##_w(MVQ_PARAMS) { K(MVQ_ARGS, nullptr, nullptr, nullptr, nullptr); }
GLU_WRAP(matvecqg_q8_0)
GLU_WRAP(matvecqg_q4_0)
GLU_WRAP(matvecqg_q4_1)
GLU_WRAP(matvectg_q8_0)
#undef GLU_WRAP

namespace {

using check::next_u64;
using check::report;
using check::uniform;
using check::failures;

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

// The weight as the kernels read it, and its row stride: the GGUF bytes, or, built with
// Q8_GROUPED (the host's ORCD_CUDA_Q8_GROUPED=1), Q8_0 rows regrouped by four blocks as
// kernels/ABI.md says (written here from its words: four f16 scales, then the four blocks' codes;
// a short last group keeps its 8-byte header).
struct DevW {
    std::vector<uint8_t> b;
    long long row_bytes;
};
DevW device_weight(Ty ty, const std::vector<uint8_t>& w, int m, int k) {
    const int nb = k / 32, bb = block_bytes(ty);
    if (!Q8G || ty != Ty::Q8_0 || w.empty()) return {w, (long long)nb * bb};
    const long long rb = (long long)k + 8LL * ((nb + 3) / 4);
    std::vector<uint8_t> out((size_t)(m * rb), 0);
    for (int j = 0; j < m; ++j)
        for (int c = 0; c < nb; ++c) {
            const uint8_t* src = &w[((size_t)j * nb + c) * 34];
            uint8_t* g = &out[(size_t)(j * rb) + (size_t)(c / 4) * 136];
            std::memcpy(g + 2 * (c % 4), src, 2);
            std::memcpy(g + 8 + 32 * (c % 4), src + 2, 32);
        }
    return {out, rb};
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


// A launch whose barriers deadlock is a failure of its own.
void launch(EmuDim grid, unsigned block, const std::function<void()>& k) {
    if (!emu_launch(grid, block, 0, k)) report(false, "a block's threads wait at barriers none can pass");
}

// mmq_<ty>'s value of activation row i and weight row j, from the ABI's words: over the row's
// blocks in order, acc = fmaf(d_w·d_x, Σ qw·qx, acc) (then fmaf(m_w, s_x, acc) for the types with a
// min); `exact` gets the float64 product of the dequantized values.
float abi_dot(Ty ty, const std::vector<uint8_t>& wt, int k, int i, int j, const Quant& ref,
              const std::vector<float>& x, double* exact) {
    const int nb = k / 32;
    float acc = 0.0f;
    double e = 0.0;
    for (int b = 0; b < nb; ++b) {
        int code[32];
        float dw, mw;
        weight_block(ty, wt.data(), k, j, b, code, &dw, &mw);
        int isum = 0;
        for (int l = 0; l < 32; ++l) {
            isum += code[l] * ref.q[(size_t)i * k + 32 * b + l];
            e += ((double)dw * code[l] + mw) * x[(size_t)i * k + 32 * b + l];
        }
        acc = std::fmaf(dw * ref.d[(size_t)i * nb + b], (float)isum, acc);
        if (has_min(ty)) acc = std::fmaf(mw, ref.s[(size_t)i * nb + b], acc);
    }
    *exact = e;
    return acc;
}

// mmqm32_ / mmqmh32_: three projections (m, mb, mc rows, each with a bias) of one activation in
// one launch, every output bit for bit the ABI's formula of its own weight.
void run_multi(Ty ty, int k, int m, int mb, int mc, int R, bool bm64) {
    const int nb = k / 32, total = m + mb + mc;
    const std::string name = std::string(bm64 ? "mmqmh32_" : "mmqm32_") + ty_name(ty) + " k" + std::to_string(k) +
                             " m" + std::to_string(m) + "+" + std::to_string(mb) + "+" + std::to_string(mc) + " rows" +
                             std::to_string(R);
    const int ms[3] = {m, mb, mc};
    std::vector<uint8_t> ws[3];
    std::vector<float> bs[3], ys[3];
    DevW dws[3];
    for (int p = 0; p < 3; ++p) {
        ws[p] = make_weight(ty, ms[p], k);
        dws[p] = device_weight(ty, ws[p], ms[p], k);
        bs[p].resize(ms[p]);
        for (auto& v : bs[p]) v = uniform(-1.0f, 1.0f);
        ys[p].assign((size_t)R * ms[p], -7.0f);
    }
    std::vector<float> x((size_t)R * k);
    for (auto& v : x) v = uniform(-3.0f, 3.0f);
    Quant q;
    q.q.assign((size_t)R * k, 0);
    q.d.assign((size_t)R * nb, 0.0f);
    q.s.assign((size_t)R * nb, 0.0f);
    launch({(unsigned)R, 1, 1}, 128, [&] { quant_x_q8(x.data(), q.q.data(), q.d.data(), q.s.data(), R, k, 0, nullptr, 0.0f); });
    const int bm = bm64 ? 64 : 128;
    launch({(unsigned)((total + bm - 1) / bm), (unsigned)((R + 31) / 32), 1}, 256, [&] {
#define MMQM_PICK(T) (bm64 ? mmqmh32_##T : mmqm32_##T)
        auto f = ty == Ty::Q8_0 ? MMQM_PICK(q8_0) : ty == Ty::Q4_0 ? MMQM_PICK(q4_0) : ty == Ty::Q4_1 ? MMQM_PICK(q4_1)
                 : ty == Ty::Q5_0 ? MMQM_PICK(q5_0) : MMQM_PICK(q5_1);
#undef MMQM_PICK
        f(dws[0].b.data(), q.q.data(), q.d.data(), q.s.data(), ys[0].data(), R, k, m, dws[0].row_bytes, nullptr,
          bs[0].data(), nullptr, nullptr, 0, dws[1].b.data(), bs[1].data(), ys[1].data(), mb, dws[2].b.data(),
          bs[2].data(), ys[2].data(), mc);
    });
    bool bits = true;
    for (int p = 0; p < 3 && bits; ++p)
        for (int i = 0; i < R && bits; ++i)
            for (int j = 0; j < ms[p]; ++j) {
                double e = 0;
                const float v = abi_dot(ty, ws[p], k, i, j, q, x, &e) + bs[p][j];
                const float have = ys[p][(size_t)i * ms[p] + j];
                if (std::memcmp(&v, &have, 4) != 0) {
                    std::printf("     first difference: projection %d row %d col %d: %.9g, wanted %.9g\n", p, i, j, have, v);
                    bits = false;
                    break;
                }
            }
    report(bits, name + " bit for bit with the ABI's formula, each projection its own");
}


struct Case {
    Ty ty;
    int k, m, rows_total;
    std::vector<unsigned> rows;  // empty: every row
    bool bias, res, glu;
    bool matvec;  // also run the mat-vec for comparison (slow under emulation)
    bool bn32 = false;  // mmq32_ (32-token tiles) instead of mmq_ (64): the same values
    bool bm64 = false;  // mmqh_ / mmqh32_ (64-row tiles): the same values
    bool pair = false;  // a GLU pair through mmqg_ (one launch) instead of two: the same values
};

void run(const Case& c) {
    const int k = c.k, m = c.m, nb = k / 32, R = c.rows_total;
    std::string name = std::string(ty_name(c.ty)) + " k" + std::to_string(k) + " m" + std::to_string(m) + " rows" +
                       std::to_string(R) + (c.rows.empty() ? "" : " map" + std::to_string(c.rows.size())) +
                       (c.bias ? " bias" : "") + (c.res ? " res" : "") + (c.glu ? " glu" : "") +
                       (c.bn32 ? " mmq32" : "") + (c.bm64 ? " bm64" : "") + (c.pair ? " mmqg" : "");
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
    const DevW dw = device_weight(c.ty, w, m, k), dw2 = device_weight(c.ty, w2, m, k);
    const long long row_bytes = dw.row_bytes;
    auto gemm = [&](const DevW& wt, float* out, const float* b, const float* r, const float* gin) {
        const int bn = c.bn32 ? 32 : 64, bm = c.bm64 ? 64 : 128;
        launch({(unsigned)((m + bm - 1) / bm), (unsigned)((n + bn - 1) / bn), 1}, 256, [&] {
            const unsigned* rp = rows.empty() ? nullptr : rows.data();
#define MMQ_PICK(T) (c.bm64 ? (c.bn32 ? mmqh32_##T : mmqh_##T) : (c.bn32 ? mmq32_##T : mmq_##T))
            auto f = c.ty == Ty::Q8_0   ? MMQ_PICK(q8_0)
                     : c.ty == Ty::Q4_0 ? MMQ_PICK(q4_0)
                     : c.ty == Ty::Q4_1 ? MMQ_PICK(q4_1)
                     : c.ty == Ty::Q5_0 ? MMQ_PICK(q5_0)
                                        : MMQ_PICK(q5_1);
#undef MMQ_PICK
            f(wt.b.data(), got.q.data(), got.d.data(), got.s.data(), out, n, k, m, row_bytes, rp, b, r, gin, 0);
        });
    };
    if (c.glu && c.pair) {
        launch({(unsigned)((m + 63) / 64), (unsigned)((n + 63) / 64), 1}, 256, [&] {
            const unsigned* rp = rows.empty() ? nullptr : rows.data();
            auto f = c.ty == Ty::Q8_0   ? mmqg_q8_0
                     : c.ty == Ty::Q4_0 ? mmqg_q4_0
                     : c.ty == Ty::Q4_1 ? mmqg_q4_1
                     : c.ty == Ty::Q5_0 ? mmqg_q5_0
                                        : mmqg_q5_1;
            f(dw.b.data(), got.q.data(), got.d.data(), got.s.data(), y.data(), n, k, m, row_bytes, rp,
              c.bias ? bias.data() : nullptr, c.res ? res.data() : nullptr, nullptr, 0, dw2.b.data());
        });
    } else if (c.glu) {
        gemm(dw, gate.data(), c.bias ? bias.data() : nullptr, nullptr, nullptr);
        gemm(dw2, y.data(), nullptr, c.res ? res.data() : nullptr, gate.data());
    } else {
        gemm(dw, y.data(), c.bias ? bias.data() : nullptr, c.res ? res.data() : nullptr, nullptr);
    }

    // The ABI's formula, loop by loop; and the float64 product of the dequantized values.
    std::vector<char> wanted(R, rows.empty() ? 1 : 0);
    for (unsigned r : rows) wanted[r] = 1;
    auto dot = [&](const std::vector<uint8_t>& wt, int i, int j, double* exact) {
        return abi_dot(c.ty, wt, k, i, j, ref, x, exact);
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
            mv(dw.b.data(), x.data(), ym.data(), R, k, m, row_bytes, nullptr, 0, 0, b, 8, r, 0, nullptr, 0, 0, nullptr,
               0.0f, nullptr, nullptr, nullptr, 0, nullptr, nullptr, nullptr, 0);
        });
        std::vector<double> ymd(ym.begin(), ym.end());
        const double nm = nmse(y, ymd);
        std::snprintf(buf, sizeof buf, " (NMSE %.2e)", nm);
        report(nm <= 1e-6, "mmq vs matvec (fast numerics)" + std::string(buf) + ": " + name);
    }
}

// The batched mat-vec against the single-row one (kernels/ABI.md `matvecq_<ty>`): R rows of x,
// C × R blocks from the codes (`codes`) or the floats, a GLU pair with `glu`; every output bit
// for bit with matvec_<ty> at rpb 1 on the same activation (xq 0 from x itself, or xq -1).
struct MvqCase {
    Ty ty;
    int k, m, rows;
    bool codes, glu, bias, res;
};

void run_mvq(const MvqCase& c) {
    const int k = c.k, m = c.m, R = c.rows, nb = k / 32;
    const std::string name = std::string(c.codes ? (c.glu ? "matvecqg_" : R <= 2 ? "matvecq1_" : "matvecq_") : (c.glu ? "matvecfg_" : "matvecf_")) +
                             ty_name(c.ty) + " k" + std::to_string(k) + " m" + std::to_string(m) + " rows" +
                             std::to_string(R) + (c.bias ? " bias" : "") + (c.res ? " res" : "");
    const auto w = make_weight(c.ty, m, k);
    const auto w2 = c.glu ? make_weight(c.ty, m, k) : std::vector<uint8_t>();
    std::vector<float> x((size_t)R * k), bias(m), res((size_t)R * m);
    for (auto& v : x) v = uniform(-3.0f, 3.0f);
    for (auto& v : bias) v = uniform(-1.0f, 1.0f);
    for (auto& v : res) v = uniform(-1.0f, 1.0f);
    const DevW dw = device_weight(c.ty, w, m, k), dw2 = device_weight(c.ty, w2, m, k);
    const long long row_bytes = dw.row_bytes;
    const float* b = c.bias ? bias.data() : nullptr;
    const float* r = c.res ? res.data() : nullptr;
    const uint8_t* g2 = c.glu ? dw2.b.data() : nullptr;
    std::vector<int8_t> q((size_t)R * k);
    std::vector<float> qd((size_t)R * nb), qs((size_t)R * nb);
    if (c.codes)
        launch({(unsigned)R, 1, 1}, 128, [&] { quant_x_q8(x.data(), q.data(), qd.data(), qs.data(), R, k, 0, nullptr, 0.0f); });
    std::vector<float> batched((size_t)R * m, -1.0f), alone((size_t)R * m, -2.0f);
    const bool one = c.codes && !c.glu && R <= 2;  // the host's matvecq1_ (8 × 1)
    const int C = c.codes ? (c.glu ? 2 : one ? 8 : 4) : (c.glu ? 4 : 8), RB = one ? 1 : c.codes ? 8 : 4;
    const unsigned grid = (unsigned)(((R + RB - 1) / RB) * ((m + C - 1) / C));
    // The ABI's flat grid, and a persistent one (fewer blocks, each taking flat blocks b,
    // b + grid, …; 3 blocks: not a multiple of the row blocks, so a block changes rows too).
    std::vector<float> persist((size_t)R * m, -3.0f);
    const bool pf = c.codes && !one;  // matvecqp_ / matvecqpg_: matvecq_'s, matvecqg_'s blocks on a persistent grid
    for (int pass = 0; pass < (pf ? 2 : 1); ++pass)
    launch({pass == 0 ? grid : std::min(grid, 3u), 1, 1}, 128, [&] {
        float* out = pass == 0 ? batched.data() : persist.data();
        const void* xin = c.codes ? (const void*)q.data() : (const void*)x.data();
        const float* d = c.codes ? qd.data() : nullptr;
        const float* s = c.codes ? qs.data() : nullptr;
#define MVQ_PICK(P) (c.ty == Ty::Q8_0 ? P##_q8_0 : c.ty == Ty::Q4_0 ? P##_q4_0 : P##_q4_1)
#define MVQG_PICK (c.ty == Ty::Q8_0 ? matvecqg_q8_0_w : c.ty == Ty::Q4_0 ? matvecqg_q4_0_w : matvecqg_q4_1_w)
        auto f = c.codes ? (c.glu ? MVQG_PICK : one ? MVQ_PICK(matvecq1) : MVQ_PICK(matvecq))
                         : (c.glu ? MVQ_PICK(matvecfg) : MVQ_PICK(matvecf));
        if (pass == 1) f = c.glu ? MVQ_PICK(matvecqpg) : MVQ_PICK(matvecqp);
#undef MVQ_PICK
#undef MVQG_PICK
        f(dw.b.data(), xin, d, s, out, R, k, m, row_bytes, b, r, g2, 0, nullptr, nullptr, nullptr, 0, nullptr,
          nullptr, nullptr, 0);
    });
    launch({(unsigned)m, (unsigned)R, 1}, 128, [&] {
        auto mv = c.ty == Ty::Q8_0 ? matvec_q8_0 : c.ty == Ty::Q4_0 ? matvec_q4_0 : matvec_q4_1;
        mv(dw.b.data(), x.data(), alone.data(), R, k, m, row_bytes, nullptr, 0, 0, b, 1, r, c.codes ? 0 : -1, g2, 0, 0,
           nullptr, 0.0f, nullptr, nullptr, nullptr, 0, nullptr, nullptr, nullptr, 0);
    });
    // matvec_ one row a block against kernels/ABI.md's order, from its words and the GGUF bytes
    // (so the device layout is checked too): thread t's chain over parts s ≡ t mod 128 in order
    // (codes: fmaf(d_w·d_x, Σ part, acc), Q4_1 then fmaf(m_w, s_x, acc) on a block's first part;
    // floats: fmaf(w_l, x_l, acc) over the part's 8 elements), each warp's xor tree 16..1, the
    // warps in order; then bias, the GLU of (gate, up), the residual.
    Quant ref;
    if (c.codes) ref = reference_quant(x, R, k);
    auto col = [&](const std::vector<uint8_t>& wt, int i, int j) {
        float lane[128] = {};
        for (int s = 0; s < k / 8; ++s) {
            int code[32];
            float dwv, mw;
            weight_block(c.ty, wt.data(), k, j, s / 4, code, &dwv, &mw);
            const int q = s % 4;
            float& a = lane[s % 128];
            if (c.codes) {
                int isum = 0;
                for (int l = 0; l < 8; ++l) isum += code[8 * q + l] * ref.q[(size_t)i * k + 8 * s + l];
                a = std::fmaf(dwv * ref.d[(size_t)i * nb + s / 4], (float)isum, a);
                if (has_min(c.ty) && q == 0) a = std::fmaf(mw, ref.s[(size_t)i * nb + s / 4], a);
            } else {
                for (int l = 0; l < 8; ++l) {
                    const float wv = has_min(c.ty) ? dwv * (float)code[8 * q + l] + mw : dwv * (float)code[8 * q + l];
                    a = std::fmaf(wv, x[(size_t)i * k + 8 * s + l], a);
                }
            }
        }
        float total = 0.0f;
        for (int wp = 0; wp < 4; ++wp) {
            float v[32];
            std::memcpy(v, lane + 32 * wp, sizeof v);
            for (int o = 16; o > 0; o >>= 1) {
                float nv[32];
                for (int l = 0; l < 32; ++l) nv[l] = v[l] + v[l ^ o];
                std::memcpy(v, nv, sizeof v);
            }
            total = wp == 0 ? v[0] : total + v[0];
        }
        return total;
    };
    bool formula = true;
    for (int i = 0; i < R && formula; ++i)
        for (int j = 0; j < m; ++j) {
            float v = col(w, i, j);
            if (c.bias) v = v + bias[j];
            if (c.glu) v = glu_value(v, col(w2, i, j), 0);
            if (c.res) v = res[(size_t)i * m + j] + v;
            const float have = alone[(size_t)i * m + j];
            if (std::memcmp(&v, &have, 4) != 0) {
                std::printf("     first difference: row %d col %d: %.9g, wanted %.9g\n", i, j, have, v);
                formula = false;
                break;
            }
        }
    report(formula, "matvec_" + std::string(ty_name(c.ty)) + (c.codes ? " (codes)" : " (floats)") +
                        " bit for bit with the ABI's order: " + name);
    bool bits = true;
    for (size_t i = 0; i < batched.size(); ++i) {
        if (std::memcmp(&batched[i], &alone[i], 4) != 0) {
            if (bits)
                std::printf("     first difference: row %zu col %zu: %.9g, alone %.9g\n", i / m, i % m, batched[i], alone[i]);
            bits = false;
        }
    }
    report(bits, name + " bit for bit with matvec_ one row a block");
    // matvect_ / matvectg_ (Q8_0, k ≤ 1,024: the tensor-core form): matvecq_'s / matvecqg_'s bits.
    // matvectl_ (rows past 1,024, no pair) likewise, its chains in 64 KB of dynamic shared memory.
    const bool longk = k > 1024;
    if (pf && c.ty == Ty::Q8_0 && (!longk || !c.glu)) {
        std::vector<float> tc((size_t)R * m, -4.0f);
        const int ncol = longk ? 8 : c.glu ? 8 : 16;
        const unsigned tgrid = (unsigned)(((R + 15) / 16) * ((m + ncol - 1) / ncol));
        if (!emu_launch({tgrid, 1, 1}, 128, longk ? 65536u : 0u, [&] {
                auto f = longk ? matvectl_q8_0 : c.glu ? matvectg_q8_0_w : matvect_q8_0;
                f(dw.b.data(), q.data(), qd.data(), qs.data(), tc.data(), R, k, m, row_bytes, b, r, g2, 0, nullptr,
                  nullptr, nullptr, 0, nullptr, nullptr, nullptr, 0);
            }))
            report(false, "a block's threads wait at barriers none can pass");
        bool tbits = true;
        for (size_t i = 0; i < tc.size() && tbits; ++i)
            if (std::memcmp(&tc[i], &batched[i], 4) != 0) {
                std::printf("     first difference: row %zu col %zu: %.9g, matvecq %.9g\n", i / m, i % m, tc[i], batched[i]);
                tbits = false;
            }
        report(tbits, std::string(longk ? "matvectl_" : c.glu ? "matvectg_" : "matvect_") + name.substr(name.find('_') + 1) +
                          " (tensor cores) bit for bit with " + name.substr(0, name.find('_') + 1));
        if (!longk && !c.glu) {  // matvectn_: matvect_ on 8-column tiles
            std::vector<float> tn((size_t)R * m, -5.0f);
            const unsigned ngrid = (unsigned)(((R + 15) / 16) * ((m + 7) / 8));
            if (!emu_launch({ngrid, 1, 1}, 128, 0u, [&] {
                    matvectn_q8_0(dw.b.data(), q.data(), qd.data(), qs.data(), tn.data(), R, k, m, row_bytes, b, r, g2,
                                  0, nullptr, nullptr, nullptr, 0, nullptr, nullptr, nullptr, 0);
                }))
                report(false, "a block's threads wait at barriers none can pass");
            report(std::memcmp(tn.data(), batched.data(), tn.size() * 4) == 0,
                   "matvectn_" + name.substr(name.find('_') + 1) + " (8-column tiles) bit for bit with " +
                       name.substr(0, name.find('_') + 1));
        }
    }
    if (pf)
        report(std::memcmp(persist.data(), batched.data(), persist.size() * 4) == 0,
               name + " as matvecqp(g)_ on a persistent grid of " + std::to_string(std::min(grid, 3u)) + " blocks: the same bits");
}

// matvect_q8_0 with q, k and v in one launch (wb, wc: the norm_matmuls of a batched decode
// step): every projection's output bit for bit with matvecq_q8_0's of the same launch shape.
void run_mvt_multi(int k, int m, int mb, int mc, int R) {
    const int nb = k / 32, total = m + mb + mc;
    const int ms[3] = {m, mb, mc};
    std::vector<uint8_t> ws[3];
    std::vector<float> bs[3], ya[3], yt[3];
    DevW dws[3];
    for (int p = 0; p < 3; ++p) {
        ws[p] = make_weight(Ty::Q8_0, ms[p], k);
        dws[p] = device_weight(Ty::Q8_0, ws[p], ms[p], k);
        bs[p].resize(ms[p]);
        for (auto& v : bs[p]) v = uniform(-1.0f, 1.0f);
        ya[p].assign((size_t)R * ms[p], -7.0f);
        yt[p].assign((size_t)R * ms[p], -8.0f);
    }
    std::vector<float> x((size_t)R * k);
    for (auto& v : x) v = uniform(-3.0f, 3.0f);
    std::vector<int8_t> q((size_t)R * k);
    std::vector<float> qd((size_t)R * nb), qs((size_t)R * nb);
    launch({(unsigned)R, 1, 1}, 128, [&] { quant_x_q8(x.data(), q.data(), qd.data(), qs.data(), R, k, 0, nullptr, 0.0f); });
    // tcore 0: matvecq_, 1: matvect_ (16-column tiles), 2: matvectn_ (8-column tiles).
    auto go = [&](int tcore, std::vector<float>* ys) {
        const int C = tcore == 1 ? 16 : tcore == 2 ? 8 : 4, RB = tcore ? 16 : 8;
        launch({(unsigned)(((R + RB - 1) / RB) * ((total + C - 1) / C)), 1, 1}, 128, [&] {
            auto f = tcore == 1 ? matvect_q8_0 : tcore == 2 ? matvectn_q8_0 : matvecq_q8_0;
            f(dws[0].b.data(), q.data(), qd.data(), qs.data(), ys[0].data(), R, k, m, dws[0].row_bytes, bs[0].data(),
              nullptr, nullptr, 0, dws[1].b.data(), bs[1].data(), ys[1].data(), mb, dws[2].b.data(), bs[2].data(),
              ys[2].data(), mc);
        });
    };
    go(0, ya);
    for (int t = 1; t <= 2; ++t) {
        for (int p = 0; p < 3; ++p) yt[p].assign(yt[p].size(), -8.0f);
        go(t, yt);
        bool bits = true;
        for (int p = 0; p < 3; ++p) bits &= std::memcmp(ya[p].data(), yt[p].data(), ya[p].size() * 4) == 0;
        report(bits, std::string(t == 1 ? "matvect_q8_0" : "matvectn_q8_0") + " k" + std::to_string(k) + " m" +
                         std::to_string(m) + "+" + std::to_string(mb) + "+" + std::to_string(mc) + " rows" +
                         std::to_string(R) + " (q, k, v in one launch) bit for bit with matvecq_q8_0");
    }
}

}  // namespace

int main() {
    check::rng_state = 0x9e3779b97f4a7c15ull;
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
        // 32-token tiles (mmq32_): three token tiles (the last partial), a row map, a GLU pair.
        {Ty::Q8_0, 192, 130, 70, {}, true, true, false, false, true},
        {Ty::Q4_1, 256, 33, 20, {}, false, false, true, false, true},
        {Ty::Q5_1, 256, 40, 75, some, false, true, false, false, true},
        // 64-row tiles (mmqh_, mmqh32_): three row tiles (the last partial), bias and residual,
        // a row map, a GLU pair, Q4_1's and Q5_1's mins.
        {Ty::Q8_0, 192, 130, 70, {}, true, true, false, false, false, true},
        {Ty::Q4_1, 256, 33, 20, {}, false, false, true, false, true, true},
        {Ty::Q5_1, 256, 40, 75, some, false, true, false, false, true, true},
        {Ty::Q5_0, 320, 150, 16, {}, false, true, true, false, false, true},
        // A GLU pair in one launch (mmqg_): a partial row tile of each weight (m = 150: three
        // tiles of 64), two token tiles (the second partial), a row map, bias and residual, mins.
        {Ty::Q8_0, 192, 150, 70, {}, true, true, true, false, false, false, true},
        {Ty::Q8_0, 256, 40, 75, some, false, true, true, false, false, false, true},
        {Ty::Q4_1, 256, 96, 40, {}, true, false, true, false, false, false, true},
        {Ty::Q5_1, 320, 64, 16, {}, false, true, true, false, false, false, true},
        {Ty::Q4_0, 128, 96, 65, {}, true, true, true, false, false, false, true},
        {Ty::Q5_0, 192, 70, 40, {}, true, true, true, false, false, false, true},
    };
    for (const Case& c : cases) run(c);
    // q, k and v in one launch: tiles spanning two projections (130 = 128 + 2), k and v narrower
    // than a tile, a partial token tile, both tile sizes, a type with a min.
    run_multi(Ty::Q8_0, 256, 130, 40, 40, 37, false);
    run_multi(Ty::Q8_0, 256, 130, 40, 40, 37, true);
    run_multi(Ty::Q4_1, 192, 64, 72, 24, 20, true);
    run_multi(Ty::Q5_0, 320, 96, 32, 32, 33, false);
    const MvqCase mvq_cases[] = {
        // A partial column group and row block; a thread's second part (k = 1280: 160 parts);
        // GLU pairs (Q4_1's min); bias and residual.
        {Ty::Q8_0, 896, 37, 11, true, false, true, true},
        {Ty::Q4_1, 1280, 21, 9, true, true, false, false},
        {Ty::Q4_0, 256, 9, 16, true, false, false, true},
        {Ty::Q8_0, 896, 14, 17, true, true, true, false},
        {Ty::Q8_0, 896, 37, 6, false, false, true, true},
        // One and two rows (matvecq1_, the head of a decode step), a partial column group.
        {Ty::Q8_0, 896, 45, 1, true, false, false, false},
        {Ty::Q4_1, 1280, 21, 2, true, false, true, true},
        {Ty::Q4_0, 256, 17, 1, true, false, true, false},
        {Ty::Q4_1, 1280, 10, 5, false, true, false, false},
        // SmolLM2's width (k = 576: 18 blocks, a short last group of Q8_GROUPED), one row and five.
        {Ty::Q8_0, 576, 19, 1, true, false, true, false},
        {Ty::Q8_0, 576, 19, 5, false, false, false, true},
    };
    for (const MvqCase& c : mvq_cases) run_mvq(c);
    // The tensor-core batched mat-vec (matvect_, matvectg_): one row tile exactly, a partial
    // second one, the widest k it takes (32 blocks: every slot group of every warp), k = 96
    // (three blocks: most warps idle), column counts not a multiple of the tile.
    const MvqCase mvt_cases[] = {
        {Ty::Q8_0, 256, 40, 16, true, false, false, false},
        {Ty::Q8_0, 1024, 45, 20, true, false, true, true},
        {Ty::Q8_0, 96, 19, 33, true, true, false, true},
        {Ty::Q8_0, 896, 21, 16, true, true, true, false},
        // Rows past 1,024 (matvectl_): a second round of slots (k = 1,280: 40 blocks), a partial
        // third (k = 2,112: 66 blocks), five rounds as the Qwen shape's down projection (4,864).
        {Ty::Q8_0, 1280, 21, 16, true, false, true, true},
        {Ty::Q8_0, 2112, 13, 20, true, false, false, true},
        {Ty::Q8_0, 4864, 9, 17, true, false, true, false},
    };
    for (const MvqCase& c : mvt_cases) run_mvq(c);
    // q, k and v in one launch: tiles spanning two projections (m = 40: 16 + 16 + 8, then k).
    run_mvt_multi(896, 40, 24, 24, 18);
    run_mvt_multi(128, 72, 8, 8, 16);
    std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
