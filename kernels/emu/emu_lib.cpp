// emu_lib.cpp — the kernels of ops.cu behind one C entry point, for the emulated device of
// engine/cuda (ORCD_CUDA_EMU=1: engine/cuda/src/emu.rs builds this file as a shared library with
// $CXX and calls orcd_emu_launch where the driver would launch a kernel). Every kernel of
// kernels/src/lib.rs `KERNELS` is in the table (a test checks it); its parameters are read from
// the launch's 8-byte slots by the kernel's own signature, as the driver reads them.
#include "emu.h"
#include "../src/ops.cu"

#include <string_view>
#include <unordered_map>
#include <utility>

namespace {

template <class T> T from_slot(uint64_t s) {
    static_assert(sizeof(T) <= 8);
    T t{};
    std::memcpy(&t, &s, sizeof(T));  // little-endian: a 4-byte value is the slot's low half
    return t;
}
template <class... A, size_t... I> void call(void (*f)(A...), const uint64_t* s, std::index_sequence<I...>) {
    f(from_slot<A>(s[I])...);
}
struct Entry {
    int arity;
    std::function<void(const uint64_t*)> run;
};
template <class... A> Entry entry(void (*f)(A...)) {
    return {(int)sizeof...(A), [f](const uint64_t* s) { call(f, s, std::index_sequence_for<A...>{}); }};
}
#define E(name) {#name, entry(name)}

const std::unordered_map<std::string_view, Entry>& table() {
    static const std::unordered_map<std::string_view, Entry> t = {
        E(rms_norm),
        E(layer_norm),
        E(mul_row),
        E(add_row),
        E(add),
        E(scale),
        E(softcap),
        E(glu),
        E(round_x),
        E(quant_x_q8),
        E(quant_x_q8k),
        E(mmq_q8_0),
        E(mmq_q4_0),
        E(mmq_q4_1),
        E(mmq_q4_k),
        E(mmq_q6_k),
        E(mmq_q5_0),
        E(mmq_q5_1),
        E(mmq32_q8_0),
        E(mmq32_q4_0),
        E(mmq32_q4_1),
        E(mmq32_q4_k),
        E(mmq32_q6_k),
        E(mmq32_q5_0),
        E(mmq32_q5_1),
        E(mmqh_q8_0),
        E(mmqh_q4_0),
        E(mmqh_q4_1),
        E(mmqh_q4_k),
        E(mmqh_q6_k),
        E(mmqh_q5_0),
        E(mmqh_q5_1),
        E(mmqh32_q8_0),
        E(mmqh32_q4_0),
        E(mmqh32_q4_1),
        E(mmqh32_q4_k),
        E(mmqh32_q6_k),
        E(mmqh32_q5_0),
        E(mmqh32_q5_1),
        E(mmqm32_q8_0),
        E(mmqm32_q4_0),
        E(mmqm32_q4_1),
        E(mmqm32_q4_k),
        E(mmqm32_q6_k),
        E(mmqm32_q5_0),
        E(mmqm32_q5_1),
        E(mmqmh32_q8_0),
        E(mmqmh32_q4_0),
        E(mmqmh32_q4_1),
        E(mmqmh32_q4_k),
        E(mmqmh32_q6_k),
        E(mmqmh32_q5_0),
        E(mmqmh32_q5_1),
        E(mmqg_q8_0),
        E(mmqg_q4_0),
        E(mmqg_q4_1),
        E(mmqg_q4_k),
        E(mmqg_q6_k),
        E(mmqg_q5_0),
        E(mmqg_q5_1),
        E(swiglu_oai),
        E(slice_cols),
        E(gather_rows),
        E(rope),
        E(kv_write),
        E(attention),
        E(attention_h),
        E(attention_tile),
        E(attention_tile_lpt),
        E(attention_mma),
        E(argmax_part),
        E(argmax_final),
        E(topk_rows),
        E(moe_route),
        E(moe_combine),
        E(matvec_f32),
        E(matvec8_q4_0),
        E(matvec8_q4_1),
        E(matvec8_q4_k),
        E(matvec8_q5_k),
        E(matvec8_q6_k),
        E(matvec8_q5_0),
        E(matvec8_q8_0),
        E(matvec8r_q4_0),
        E(matvec8r_q4_1),
        E(matvec8r_q5_0),
        E(matvec8r_q8_0),
        E(matvec8g_q4_0),
        E(matvec8g_q4_1),
        E(matvec8g_q4_k),
        E(matvec8g_q5_k),
        E(matvec8g_q6_k),
        E(matvec8g_q5_0),
        E(matvec8g_q8_0),
        E(matvec2l_q4_0),
        E(matvec2l_q4_1),
        E(matvec2l_q4_k),
        E(matvec2l_q5_k),
        E(matvec2l_q6_k),
        E(matvec2l_q5_0),
        E(matvec2l_q8_0),
        E(matvec8n_q4_0),
        E(matvec8n_q4_1),
        E(matvec8n_q4_k),
        E(matvec8n_q5_k),
        E(matvec8n_q6_k),
        E(matvec8n_q5_0),
        E(matvec8n_q8_0),
        E(matvec2ln_q4_0),
        E(matvec2ln_q4_1),
        E(matvec2ln_q4_k),
        E(matvec2ln_q5_k),
        E(matvec2ln_q6_k),
        E(matvec2ln_q5_0),
        E(matvec2ln_q8_0),
        E(matvec8x_q5_0_q8_0),
        E(matvec8x_q4_k_q6_k),
        E(matvec8h_q5_0_q8_0),
        E(matvec8h_q8_0_q8_0),
        E(matvec8h_q4_k_q4_k),
        E(matvec8h_q4_k_q6_k),
        E(matvec4_q4_0),
        E(matvec4_q4_1),
        E(matvec4_q4_k),
        E(matvec4_q5_k),
        E(matvec4_q6_k),
        E(matvec4_q5_0),
        E(matvec4_q8_0),
        E(matvecq1_q4_0),
        E(matvecq1_q4_1),
        E(matvecq1_q5_0),
        E(matvecq1_q8_0),
        E(matvecq_q4_0),
        E(matvecq_q4_1),
        E(matvecq_q5_0),
        E(matvecq_q8_0),
        E(matvecqg_q4_0),
        E(matvecqg_q4_1),
        E(matvecqg_q5_0),
        E(matvecqg_q8_0),
        E(matvecqp_q4_0),
        E(matvecqp_q4_1),
        E(matvecqp_q5_0),
        E(matvecqp_q8_0),
        E(matvecqpg_q4_0),
        E(matvecqpg_q4_1),
        E(matvecqpg_q5_0),
        E(matvecqpg_q8_0),
        E(attention_split),
        E(attention_combine),
        E(matvect_q8_0),
        E(matvectn_q8_0),
        E(matvectl_q8_0),
        E(matvectg_q8_0),
        E(matvecf_q4_0),
        E(matvecf_q4_1),
        E(matvecf_q4_k),
        E(matvecf_q5_k),
        E(matvecf_q6_k),
        E(matvecf_q5_0),
        E(matvecf_q8_0),
        E(matvecfg_q4_0),
        E(matvecfg_q4_1),
        E(matvecfg_q4_k),
        E(matvecfg_q5_k),
        E(matvecfg_q6_k),
        E(matvecfg_q5_0),
        E(matvecfg_q8_0),
        E(matvec_f16),
        E(matvec_bf16),
        E(matvec_q4_0),
        E(matvec_q4_1),
        E(matvec_q5_0),
        E(matvec_q5_1),
        E(matvec_q8_0),
        E(matvec_q2_k),
        E(matvec_q3_k),
        E(matvec_q4_k),
        E(matvec_q5_k),
        E(matvec_q6_k),
        E(matvec_iq4_nl),
        E(matvec_mxfp4),
        E(dequant_rows_f32),
        E(dequant_rows_f16),
        E(dequant_rows_bf16),
        E(dequant_rows_q4_0),
        E(dequant_rows_q4_1),
        E(dequant_rows_q5_0),
        E(dequant_rows_q5_1),
        E(dequant_rows_q8_0),
        E(dequant_rows_q2_k),
        E(dequant_rows_q3_k),
        E(dequant_rows_q4_k),
        E(dequant_rows_q5_k),
        E(dequant_rows_q6_k),
        E(dequant_rows_iq4_nl),
        E(dequant_rows_mxfp4),
    };
    return t;
}

}  // namespace

// 0: ran; -1: no such kernel; -2: the wrong number of parameters; -3: a block's threads wait at
// barriers none can pass; -4: a block size that is not a positive multiple of 32 (≤ 1024).
extern "C" int orcd_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned block,
                               unsigned smem, const uint64_t* slots, int n) {
    const auto it = table().find(name);
    if (it == table().end()) return -1;
    if (it->second.arity != n) return -2;
    if (block == 0 || block % 32 != 0 || block > 1024) return -4;
    const std::function<void()> k = [&] { it->second.run(slots); };
    return emu_launch(EmuDim{gx, gy, gz}, block, smem, k) ? 0 : -3;
}
