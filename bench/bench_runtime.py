"""The micro runtime: code size per object and per core, arena against TFLite Micro's, and host
invoke time against the tflite_micro interpreter.

Models: the zoo's architectures. Until the convert stage lands they are the Keras rebuilds in
tests/runtime_models.py (same layers and shapes, random weights, plus the digits CNN trained;
cached on disk and shared with the tests), converted with the TFLite converter."""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
CODE_SIZE_TARGET = 16 * 1024


def _code_size_sections() -> list[dict]:
    from tinyprune import runtime
    from tinyprune.boards import list_boards

    rows_core, per_object = [], {}
    boards = sorted({b.core: b for b in list_boards()}.items())
    with tempfile.TemporaryDirectory() as tmp:
        for core, board in boards:
            sizes = runtime.object_text_sizes(runtime.cross_compile(board, Path(tmp) / core))
            if core == "cortex-m4":
                per_object = sizes
            rows_core.append({"core": core, "board": board.name, "text_bytes": sum(sizes.values())})
    m4_total = sum(per_object.values())
    rows_obj = [{"object": k, "text_bytes": v} for k, v in sorted(per_object.items(), key=lambda kv: -kv[1]) if v]
    return [
        {"title": "Runtime code size per object (cortex-m4, -Os, every operator)", "rows": rows_obj,
         "notes": [f"total {m4_total} bytes; target <= {CODE_SIZE_TARGET}: "
                   f"{'met' if m4_total <= CODE_SIZE_TARGET else 'MISSED'}",
                   "text = code + read-only data, from arm-none-eabi-size; no .data/.bss (no global state)"]},
        {"title": "Runtime code size per core (-Os, every operator)", "rows": rows_core,
         "notes": ["a per-model build (runtime.op_defines / ops_header) compiles only the operators used"]},
    ]


def _models() -> dict[str, bytes]:
    sys.path.insert(0, str(ROOT / "tests"))
    from runtime_models import zoo_models

    return zoo_models()


def _time_per_invoke(fn, budget_s: float = 1.0) -> float:
    fn()  # warm up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget_s or n < 3:
        fn()
        n += 1
    return (time.perf_counter() - start) / n


def _model_sections() -> list[dict]:
    from tinyprune import runtime
    from tinyprune.tflite_info import read_model
    from tinyprune.tflm import make_interpreter

    arena_rows, time_rows, ratios = [], [], []
    for name, model in _models().items():
        ours = runtime.Model(model)
        tflm_host, tflm_32 = runtime.tflm_arena_bytes(model)
        ratio = ours.arena_bytes / tflm_32
        ratios.append(ratio)
        info = read_model(model)
        arena_rows.append({"model": name, "runtime_arena_bytes": ours.arena_bytes, "tflm_arena_bytes_64bit": tflm_host,
                           "tflm_arena_bytes_32bit_est": tflm_32, "ratio_vs_32bit": round(ratio, 3),
                           "tensors": info.num_tensors})
        x = np.random.default_rng(0).integers(-128, 128, size=ours.inputs[0].shape).astype(np.int8)
        ours.set_input(0, x)
        oracle = make_interpreter(model, tflm_host + 1024)
        oracle.set_input(x, 0)
        t_ours = _time_per_invoke(ours.invoke)
        t_tflm = _time_per_invoke(oracle.invoke)
        time_rows.append({"model": name, "macs": info.macs, "runtime_us": round(t_ours * 1e6, 1),
                          "tflm_us": round(t_tflm * 1e6, 1), "runtime_vs_tflm": round(t_ours / t_tflm, 2)})
    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    return [
        {"title": "Arena: runtime plan vs TFLite Micro (zoo architectures)", "rows": arena_rows,
         "notes": [f"geometric mean ratio {geo:.2f}; target <= 1.0 for every model: "
                   f"{'met' if max(ratios) <= 1.0 else 'MISSED'}",
                   "runtime arena = 4 bytes per tensor + planned activations (exact, from tpr_required_arena_bytes)",
                   "TFLM: smallest arena that allocates and invokes (bisection on the 64-bit host) and "
                   "tinyprune.tflm's 32-bit estimate"]},
        {"title": "Host invoke time: runtime (gcc -O2, portable kernels) vs tflite_micro interpreter", "rows": time_rows,
         "notes": ["wall time on the build machine, one inference, after a warm-up; the runtime's portable "
                   "kernels (the DSP ones need an Arm core) against TFLM's reference kernels; target-core "
                   "instruction counts: bench_kernels"]},
    ]


def run() -> list[dict]:
    return _code_size_sections() + _model_sections()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    from run import print_section

    for section in run():
        print_section(section)
