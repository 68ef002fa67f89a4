#!/usr/bin/env python3
"""Map ncu's per-SASS-instruction rows of a kernel (ci/gpu-quick.sh NCU_SRC=1: --page source
--print-source sass --csv) onto kernels/src/ops.cu's source lines, here, without a GPU: compile
the source with NVRTC (-lineinfo, the engine's options, the layout defines), disassemble with
nvdisasm -g, align the two instruction sequences by opcode, and print the source lines with the
most executed instructions and their share of the kernel's stall samples. The card's NVRTC may
differ from this one: the alignment reports how much matched.

  ORCD_NVRTC_LIB=…/libnvrtc.so.12 NVDISASM=…/nvdisasm python3 ci/ncu_map.py ncusrc-fast.csv matvec8r_q8_0 [N] [ops.cu]

nvdisasm: `pip download --no-deps nvidia-cuda-nvdisasm` and unzip the wheel; libnvrtc: `pip
install --target DIR nvidia-cuda-nvrtc-cu12`. Extra defines: ORCD_NVRTC_EXTRA (e.g. -DQ8_GROUPED,
the default layout's, is always passed)."""
import collections
import ctypes
import difflib
import os
import pathlib
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from ncu_src import num, read_tables  # noqa: E402  (the same csv reading)

csv_path, kern = sys.argv[1], sys.argv[2]
top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
root = pathlib.Path(__file__).resolve().parent.parent
cu = pathlib.Path(sys.argv[4]) if len(sys.argv) > 4 else root / "kernels" / "src" / "ops.cu"
src_lines = cu.read_text().split("\n")

# ncu's rows of the kernel: (opcode, executed, stall samples).
tables = read_tables(csv_path)
mine = [t for t in tables if t["name"] == kern]
if not mine:
    sys.exit(f"no rows for {kern} in {csv_path} (kernels: {sorted({t['name'] for t in tables})})")
t = mine[0]
h = t["hdr"]
si, ei, st = h.index("Source"), h.index("Instructions Executed"), h.index("Warp Stall Sampling (All Samples)")


def opcode(text):
    text = re.sub(r"^@!?U?P\w+\s+", "", text.strip())
    return text.split(" ")[0] if text else ""


card = [(opcode(r[si]), num(r[ei]), num(r[st])) for r in t["rows"]]

# This machine's SASS of the kernel, each instruction with its source line.
lib = ctypes.CDLL(os.environ.get("ORCD_NVRTC_LIB", "libnvrtc.so.12"))
prog = ctypes.c_void_p()
assert lib.nvrtcCreateProgram(ctypes.byref(prog), cu.read_bytes(), cu.name.encode(), 0, None, None) == 0
opts = [b"--gpu-architecture=sm_90a", b"--std=c++17", b"-default-device", b"-lineinfo", b"-DQ8_GROUPED"]
opts += [o.encode() for o in os.environ.get("ORCD_NVRTC_EXTRA", "").split()]
if lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts)) != 0:
    sys.exit("nvrtc: compile failed")
size = ctypes.c_size_t()
lib.nvrtcGetCUBINSize(prog, ctypes.byref(size))
buf = ctypes.create_string_buffer(size.value)
lib.nvrtcGetCUBIN(prog, buf)
with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
    f.write(buf.raw)
    f.flush()
    sass = subprocess.run([os.environ.get("NVDISASM", "nvdisasm"), "-c", "-g", f.name], capture_output=True, text=True).stdout
here, fn, line = [], None, None
for l in sass.split("\n"):
    if l.startswith(".text."):
        fn = l.strip()[6:].rstrip(":")
        continue
    if fn != kern:
        continue
    m = re.search(r"line (\d+)", l)
    if m:
        line = int(m.group(1))
        continue
    m = re.search(r"/\*[0-9a-f]{4,}\*/\s+(.*?);", l)
    if m:
        here.append((opcode(m.group(1)), line))

sm = difflib.SequenceMatcher(None, [c[0] for c in card], [x[0] for x in here], autojunk=False)
executed, stalls, matched = collections.Counter(), collections.Counter(), 0
for a, b, n in sm.get_matching_blocks():
    for i in range(n):
        matched += 1
        if card[a + i][1] > 0:
            executed[here[b + i][1]] += 1
        stalls[here[b + i][1]] += card[a + i][2]
print(f"{kern}: card {len(card)} instructions, here {len(here)}, matched {matched}, executed {sum(1 for c in card if c[1] > 0)}")
total = sum(stalls.values()) or 1.0
for ln, n in sorted(executed.items(), key=lambda e: -e[1])[:top]:
    text = src_lines[ln - 1].strip()[:90] if ln else ""
    print(f"{n:5d} executed  {100 * stalls[ln] / total:5.1f}% stalls  {ln}: {text}")
