//! orcd-kernels: the CUDA C source of worker-orcd's GPU kernels and the table of their entry
//! points.
//!
//! [`OPS_CU`] is compiled at run time by NVRTC (`--gpu-architecture=sm_90a --std=c++17
//! -default-device`; it includes no headers). The contract with the host — every kernel's name,
//! parameters, launch shape and semantics — is `kernels/ABI.md`; the numerics are those of the
//! exact CPU backend and of the GGUF dequantizers. [`KERNELS`] lists every `extern "C"` entry
//! point of [`OPS_CU`], so a host can resolve them all right after loading the module.

/// The CUDA C source of every kernel.
pub const OPS_CU: &str = include_str!("ops.cu");

/// The host emulator (kernels/emu): ops.cu as host C++, and the library entry point that
/// engine/cuda's emulated device (`ORCD_CUDA_EMU=1`) builds with the system C++ compiler.
pub const EMU_H: &str = include_str!("../emu/emu.h");
pub const EMU_LIB_CPP: &str = include_str!("../emu/emu_lib.cpp");

/// The `extern "C"` kernel names defined in [`OPS_CU`].
pub const KERNELS: &[&str] = &[
    "rms_norm",
    "layer_norm",
    "mul_row",
    "add_row",
    "add",
    "scale",
    "softcap",
    "glu",
    "round_x",
    "quant_x_q8",
    "quant_x_q8k",
    "mmq_q8_0",
    "mmq_q4_0",
    "mmq_q4_1",
    "mmq_q4_k",
    "mmq_q6_k",
    "mmq_q5_0",
    "mmq_q5_1",
    "mmq32_q8_0",
    "mmq32_q4_0",
    "mmq32_q4_1",
    "mmq32_q4_k",
    "mmq32_q6_k",
    "mmq32_q5_0",
    "mmq32_q5_1",
    "mmqh_q8_0",
    "mmqh_q4_0",
    "mmqh_q4_1",
    "mmqh_q4_k",
    "mmqh_q6_k",
    "mmqh_q5_0",
    "mmqh_q5_1",
    "mmqh32_q8_0",
    "mmqh32_q4_0",
    "mmqh32_q4_1",
    "mmqh32_q4_k",
    "mmqh32_q6_k",
    "mmqh32_q5_0",
    "mmqh32_q5_1",
    "mmqm32_q8_0",
    "mmqm32_q4_0",
    "mmqm32_q4_1",
    "mmqm32_q4_k",
    "mmqm32_q6_k",
    "mmqm32_q5_0",
    "mmqm32_q5_1",
    "mmqmh32_q8_0",
    "mmqmh32_q4_0",
    "mmqmh32_q4_1",
    "mmqmh32_q4_k",
    "mmqmh32_q6_k",
    "mmqmh32_q5_0",
    "mmqmh32_q5_1",
    "mmqg_q8_0",
    "mmqg_q4_0",
    "mmqg_q4_1",
    "mmqg_q4_k",
    "mmqg_q6_k",
    "mmqg_q5_0",
    "mmqg_q5_1",
    "swiglu_oai",
    "slice_cols",
    "gather_rows",
    "rope",
    "rope_table",
    "kv_write",
    "attention",
    "attention_h",
    "attention_tile",
    "attention_tile_lpt",
    "attention_mma",
    "argmax_part",
    "argmax_final",
    "topk_rows",
    "moe_route",
    "moe_combine",
    "matvec_f32",
    "matvec8_q4_0",
    "matvec8_q4_1",
    "matvec8_q4_k",
    "matvec8_q5_k",
    "matvec8_q6_k",
    "matvec8_q5_0",
    "matvec8_q8_0",
    "matvec8r_q4_0",
    "matvec8r_q4_1",
    "matvec8r_q5_0",
    "matvec8r_q8_0",
    "matvec8g_q4_0",
    "matvec8g_q4_1",
    "matvec8g_q4_k",
    "matvec8g_q5_k",
    "matvec8g_q6_k",
    "matvec8g_q5_0",
    "matvec8g_q8_0",
    "matvec8gp_q4_0",
    "matvec8gp_q4_k",
    "matvec8gp_q5_0",
    "matvec8gp_q8_0",
    "matvec8p_q4_0",
    "matvec8p_q4_k",
    "matvec8p_q5_0",
    "matvec8p_q8_0",
    "matvec2l_q4_0",
    "matvec2l_q4_1",
    "matvec2l_q4_k",
    "matvec2l_q5_k",
    "matvec2l_q6_k",
    "matvec2l_q5_0",
    "matvec2l_q8_0",
    "matvec8n_q4_0",
    "matvec8n_q4_1",
    "matvec8n_q4_k",
    "matvec8n_q5_k",
    "matvec8n_q6_k",
    "matvec8n_q5_0",
    "matvec8n_q8_0",
    "matvec2ln_q4_0",
    "matvec2ln_q4_1",
    "matvec2ln_q4_k",
    "matvec2ln_q5_k",
    "matvec2ln_q6_k",
    "matvec2ln_q5_0",
    "matvec2ln_q8_0",
    "matvec8x_q5_0_q8_0",
    "matvec8x_q4_k_q6_k",
    "matvec8h_q5_0_q8_0",
    "matvec8h_q8_0_q8_0",
    "matvec8h_q4_k_q4_k",
    "matvec8h_q4_k_q6_k",
    "matvec4_q4_0",
    "matvec4_q4_1",
    "matvec4_q4_k",
    "matvec4_q5_k",
    "matvec4_q6_k",
    "matvec4_q5_0",
    "matvec4_q8_0",
    "matvecq1_q4_0",
    "matvecq1_q4_1",
    "matvecq1_q5_0",
    "matvecq1_q8_0",
    "matvecq_q4_0",
    "matvecq_q4_1",
    "matvecq_q5_0",
    "matvecq_q8_0",
    "matvecqg_q4_0",
    "matvecqg_q4_1",
    "matvecqg_q5_0",
    "matvecqg_q8_0",
    "matvecqp_q4_0",
    "matvecqp_q4_1",
    "matvecqp_q5_0",
    "matvecqp_q8_0",
    "matvecqpg_q4_0",
    "matvecqpg_q4_1",
    "matvecqpg_q5_0",
    "matvecqpg_q8_0",
    "attention_split",
    "attention_combine",
    "matvect_q8_0",
    "matvectn_q8_0",
    "matvectl_q8_0",
    "matvectg_q8_0",
    "matvectw_q8_0",
    "matvectgw_q8_0",
    "matvecf_q4_0",
    "matvecf_q4_1",
    "matvecf_q4_k",
    "matvecf_q5_k",
    "matvecf_q6_k",
    "matvecf_q5_0",
    "matvecf_q8_0",
    "matvecfg_q4_0",
    "matvecfg_q4_1",
    "matvecfg_q4_k",
    "matvecfg_q5_k",
    "matvecfg_q6_k",
    "matvecfg_q5_0",
    "matvecfg_q8_0",
    "matvecqr_q4_0",
    "matvecqr_q4_1",
    "matvecqr_q5_0",
    "matvecqr_q8_0",
    "matvecfr_q4_0",
    "matvecfr_q4_1",
    "matvecfr_q5_0",
    "matvecfr_q8_0",
    "matvec_f16",
    "matvec_bf16",
    "matvec_q4_0",
    "matvec_q4_1",
    "matvec_q5_0",
    "matvec_q5_1",
    "matvec_q8_0",
    "matvec_q2_k",
    "matvec_q3_k",
    "matvec_q4_k",
    "matvec_q5_k",
    "matvec_q6_k",
    "matvec_iq4_nl",
    "matvec_mxfp4",
    "dequant_rows_f32",
    "dequant_rows_f16",
    "dequant_rows_bf16",
    "dequant_rows_q4_0",
    "dequant_rows_q4_1",
    "dequant_rows_q5_0",
    "dequant_rows_q5_1",
    "dequant_rows_q8_0",
    "dequant_rows_q2_k",
    "dequant_rows_q3_k",
    "dequant_rows_q4_k",
    "dequant_rows_q5_k",
    "dequant_rows_q6_k",
    "dequant_rows_iq4_nl",
    "dequant_rows_mxfp4",
];

/// The kernels a host may launch with more than 48 KiB of dynamic shared memory: the device
/// opts each in (`cuFuncSetAttribute`) at load, and refuses past 48 KiB for any other (CUDA's
/// `CUDA_ERROR_INVALID_VALUE` at launch; the emulator refuses the same). Attention keeps a key
/// row of scores (the per-row kernels) or its 16 rows' queries and scores (the tiles) there;
/// matvectl_q8_0 its slots' chains.
pub const OPT_IN_SMEM: &[&str] =
    &["attention", "attention_h", "attention_tile", "attention_tile_lpt", "attention_split", "matvectl_q8_0"];

/// Dynamic shared memory a launch gets without the opt-in (CUDA's default limit).
pub const DEFAULT_SMEM: u32 = 48 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opt_in_kernel_exists() {
        for name in OPT_IN_SMEM {
            assert!(KERNELS.contains(name), "{name} (OPT_IN_SMEM) is not a kernel");
        }
    }

    #[test]
    fn the_emulator_has_every_kernel() {
        for name in KERNELS {
            assert!(EMU_LIB_CPP.contains(&format!("E({name}),")), "{name} is missing from kernels/emu/emu_lib.cpp");
        }
    }

    #[test]
    fn every_kernel_is_defined() {
        for name in KERNELS {
            // `MV_BOUNDS` is the mat-vecs' __launch_bounds__.
            let defined = OPS_CU.contains(&format!("void {name}("))
                || OPS_CU.contains(&format!("void MV_BOUNDS {name}("))
                || OPS_CU.contains(&format!("void MVF_BOUNDS {name}("))
                || OPS_CU.contains(&format!("void MVM_BOUNDS {name}("))
                || OPS_CU.contains(&format!("void MVG_BOUNDS {name}("))
                || OPS_CU.contains(&format!("void MVP_BOUNDS {name}("))
                || OPS_CU.contains(&format!("void MMQ_BOUNDS {name}("))
                || OPS_CU.contains(&format!("void MVT_BOUNDS {name}("))
                || OPS_CU.contains(&format!("void ATT_BOUNDS {name}("))
                || OPS_CU.contains(&format!("void ATT_ROW_BOUNDS {name}("))
                || OPS_CU.contains(&format!("void AMMA_BOUNDS {name}("));
            assert!(defined, "{name} is not defined in ops.cu");
        }
    }

    #[test]
    fn every_entry_point_is_listed_once() {
        let defined: Vec<&str> = OPS_CU
            .split("extern \"C\" __global__ void ")
            .skip(1)
            .filter_map(|s| s.split('(').next())
            // The mat-vecs' __launch_bounds__ macros stand before the name.
            .map(|s| s.rsplit(' ').next().unwrap_or(s))
            .collect();
        let mut listed = KERNELS.to_vec();
        listed.sort_unstable();
        let before = listed.len();
        listed.dedup();
        assert_eq!(listed.len(), before, "a name is listed twice");
        let mut defined_sorted = defined.clone();
        defined_sorted.sort_unstable();
        assert_eq!(defined_sorted, listed);
    }
}
