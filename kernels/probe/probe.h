// probe.h — what the probes of kernels/probe/ share (each is one program, built by
// ci/gpu-probe.sh with nvcc there): the host headers and CK, which stops on a failed CUDA call.
// NVRTC (ci/nvrtc_check.py here) compiles the device code alone, without them.
#pragma once
#ifndef __CUDACC_RTC__
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>
#endif

#define CK(x)                                                                                   \
    do {                                                                                        \
        cudaError_t e_ = (x);                                                                   \
        if (e_ != cudaSuccess) {                                                                \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
            exit(1);                                                                            \
        }                                                                                       \
    } while (0)
