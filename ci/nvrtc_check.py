#!/usr/bin/env python3
"""Compile kernels/src/*.cu (or the .cu files named as arguments) with NVRTC for sm_90a on a machine without a GPU (a compile check).

Needs libnvrtc (the pip wheel nvidia-cuda-nvrtc-cu12 carries it): set ORCD_NVRTC_LIB to its path
or put it on LD_LIBRARY_PATH; ORCD_NVRTC_EXTRA adds options. Prints NVRTC's log and exits 1 on a compile error. The engine
compiles the same source with the same options at run time (engine/cuda/src/nvrtc.rs).
"""
import ctypes, os, sys, pathlib

lib = ctypes.CDLL(os.environ.get("ORCD_NVRTC_LIB", "libnvrtc.so.12"))
root = pathlib.Path(__file__).resolve().parent.parent
arch = os.environ.get("ORCD_ARCH", "sm_90a")
ok = True
files = [pathlib.Path(a) for a in sys.argv[1:]] or sorted((root / "kernels" / "src").glob("*.cu"))
for cu in files:
    src = cu.read_bytes()
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, cu.name.encode(), 0, None, None) == 0
    opts = [f"--gpu-architecture={arch}".encode(), b"--std=c++17", b"-default-device"]
    opts += [f"--include-path={cu.resolve().parent}".encode()]  # the probes' probe.h (ops.cu includes nothing)
    # e.g. ORCD_NVRTC_EXTRA=--ptxas-options=--verbose: registers, spills, shared memory per kernel
    opts += [o.encode() for o in os.environ.get("ORCD_NVRTC_EXTRA", "").split()]
    arr = (ctypes.c_char_p * len(opts))(*opts)
    rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
    n = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
    log = ctypes.create_string_buffer(n.value)
    lib.nvrtcGetProgramLog(prog, log)
    text = log.value.decode(errors="replace").strip()
    if text:
        print(f"--- {cu.name}\n{text}")
    if rc != 0:
        ok = False
        print(f"FAIL {cu.name}: nvrtc error {rc}")
    else:
        size = ctypes.c_size_t()
        lib.nvrtcGetCUBINSize(prog, ctypes.byref(size))
        print(f"ok   {cu.name}: cubin {size.value} bytes for {arch}")
        # ORCD_CUBIN_OUT=DIR: the cubin written as DIR/<name>.cubin (each kernel's code size:
        # ci/cubin_text.py).
        if os.environ.get("ORCD_CUBIN_OUT"):
            buf = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetCUBIN(prog, buf)
            out = pathlib.Path(os.environ["ORCD_CUBIN_OUT"]) / (cu.stem + ".cubin")
            out.write_bytes(buf.raw)
        # ORCD_PTX_OUT=DIR: the PTX too (DIR/<name>.ptx), to read a kernel's loops and loads.
        if os.environ.get("ORCD_PTX_OUT"):
            lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
            buf = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetPTX(prog, buf)
            (pathlib.Path(os.environ["ORCD_PTX_OUT"]) / (cu.stem + ".ptx")).write_bytes(buf.raw.rstrip(b"\0"))
sys.exit(0 if ok else 1)
