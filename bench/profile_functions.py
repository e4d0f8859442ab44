"""Where one inference's instructions go, per runtime function: for kernel work, below what
`tinyprune verify --profile` splits per operator.

    .venv/bin/python bench/profile_functions.py MODEL.tflite [--core cortex-m4] [--opt -O2] [--top 25]

The verification harness for the core (bench_kernels' board, fast arena except at -Os) runs under
`qemu -icount shift=0 -d exec,nochain,in_asm`: QEMU logs every translation block's instructions
once and every execution of a block, so instructions per function are exact counts, not samples.
It runs twice, with no input and with one random one: the difference is one tpr_invoke (tpr_init
and the boot drop out). The log is a few hundred bytes per executed block, tens of MB per model.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

_TRACE = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")


def instructions_by_function(log: Path) -> collections.Counter:
    """Instructions executed per function (QEMU's symbol for each block) in an exec,in_asm log."""
    length, owner, counts = {}, {}, collections.Counter()
    name, block = None, []
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("IN: "):
                name, block = line[4:].strip() or "?", []
            elif name is not None and line.startswith("0x"):
                block.append(int(line.split(":", 1)[0], 16))
            elif line.startswith("Trace "):
                m = _TRACE.match(line)
                if not m:
                    continue
                if name is not None and block:  # the block just translated: its size and function
                    length[block[0]], owner[block[0]] = len(block), name
                    name, block = None, []
                counts[int(m.group(1), 16)] += 1
    by_function = collections.Counter()
    for pc, n in counts.items():
        by_function[owner.get(pc, "?")] += n * length.get(pc, 0)
    return by_function


def profile(model: bytes, core: str, opt: str) -> collections.Counter:
    """One inference's instructions per function on `core`'s QEMU machine."""
    from bench_kernels import bench_board

    from tinyprune import verify
    from tinyprune.qemu import run_elf
    from tinyprune.samples import random_inputs
    from tinyprune.tflite_info import read_model

    board = bench_board(core)
    x = random_inputs(read_model(model).inputs[0], 1, seed=1)
    with tempfile.TemporaryDirectory(prefix="profile-functions-") as tmp:
        work = Path(tmp)
        hb = verify.build_harness(model, board, work / "build", opt=opt)
        runs = []
        for samples in (x[:0], x):
            (work / "inputs.bin").write_bytes(samples.tobytes())
            log = work / "trace.log"
            run = run_elf(hb.elf, board.qemu_machine, cwd=work, timeout_s=600,
                          extra_args=["-d", "exec,nochain,in_asm", "-D", str(log)])
            if run.exit_code != 0:
                raise SystemExit(f"the harness failed (exit {run.exit_code}): {run.stdout[-300:]}")
            runs.append(instructions_by_function(log))
    base, one = runs
    return collections.Counter({fn: n - base.get(fn, 0) for fn, n in one.items() if n > base.get(fn, 0)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, metavar="MODEL.tflite")
    parser.add_argument("--core", default="cortex-m4", help="a core of bench_kernels.CORES (default cortex-m4)")
    parser.add_argument("--opt", default="-O2", help="compiler flags, as tinyprune build's (default -O2)")
    parser.add_argument("--top", type=int, default=25, help="functions to print (default 25)")
    args = parser.parse_args()
    by_function = profile(args.model.read_bytes(), args.core, args.opt)
    total = sum(by_function.values()) or 1
    print(f"{args.model.name} on {args.core} at {args.opt}: {total:,} instructions in one tpr_invoke")
    for fn, n in by_function.most_common(args.top):
        print(f"  {n:>11,}  {100 * n / total:5.1f} %  {fn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
