#!/usr/bin/env python3
"""Each kernel's code size in a cubin: the bytes of its `.text.<kernel>` section (ELF64).

    ORCD_CUBIN_OUT=/tmp/cb python3 ci/nvrtc_check.py kernels/src/ops.cu   # the cubin, here
    python3 ci/cubin_text.py /tmp/cb/ops.cubin matvec8r_q8_0 attention    # those kernels
    python3 ci/cubin_text.py /tmp/cb/ops.cubin                            # every kernel, largest first

A decode step's launches fetch their code cold (docs/perf/GPU.md, seventeenth block: a body past
~32 KB does not stay in the instruction cache), so a kernel's size is worth watching. readelf
prints the same sizes, with a warning for every CUDA-specific section.
"""
import struct
import sys


def text_sizes(path):
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise SystemExit(f"{path}: not an ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    def section(i):  # (name offset, file offset, size)
        base = shoff + i * shentsize
        name, = struct.unpack_from("<I", data, base)
        off, size = struct.unpack_from("<QQ", data, base + 0x18)
        return name, off, size
    _, stroff, _ = section(shstrndx)
    sizes = {}
    for i in range(shnum):
        name_off, _, size = section(i)
        end = data.index(b"\0", stroff + name_off)
        name = data[stroff + name_off:end].decode()
        if name.startswith(".text."):
            sizes[name[len(".text."):]] = size
    return sizes


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip())
        return 2
    sizes = text_sizes(sys.argv[1])
    names = sys.argv[2:] or sorted(sizes, key=lambda n: -sizes[n])
    missing = [n for n in names if n not in sizes]
    for n in names:
        if n in sizes:
            print(f"{sizes[n]:9d} B {sizes[n] / 1000:8.1f} kB  {n}")
    if missing:
        print(f"not in the cubin: {' '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
