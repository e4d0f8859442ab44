"""TFLite Micro on the host (the ``tflite_micro`` package): the project's bit-exactness oracle and
the source of TFLM arena sizes.

TFLM's Python interpreter has no "arena used" query and prints allocation details to stderr,
so the smallest working arena is found by bisection on ``arena_size``: the interpreter's
allocation fails below it. The figure is for the 64-bit host build; on a 32-bit core TFLM's
pointer-sized bookkeeping is smaller (see ``estimate_arena_32bit``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyprune.errors import BadInput
from tinyprune.quiet import silenced

# TFLM recommends head-room over the measured minimum for alignment of the tail allocations.
ARENA_ALIGNMENT_MARGIN = 16


def make_interpreter(model: bytes, arena_bytes: int):
    """A TFLM interpreter with ``arena_bytes`` of arena; raises RuntimeError/ValueError if too small."""
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(bytes(model), arena_size=int(arena_bytes))


def _allocates_and_runs(model: bytes, arena_bytes: int) -> bool:
    try:
        with silenced(2):
            interp = make_interpreter(model, arena_bytes)
            for i, detail in enumerate(_input_details(interp)):
                interp.set_input(np.zeros(detail["shape"], dtype=detail["dtype"]), i)
            interp.invoke()
        return True
    except (RuntimeError, ValueError):
        return False


def _input_details(interp) -> list[dict]:
    details = []
    i = 0
    while True:
        try:
            details.append(interp.get_input_details(i))
        except (RuntimeError, ValueError, IndexError):
            return details
        i += 1


@dataclass(frozen=True)
class ArenaSize:
    minimum_bytes: int  # smallest arena for which allocation and one inference succeed (64-bit host)
    recommended_bytes: int  # minimum + TFLM's alignment margin, rounded up to 16
    estimated_32bit_bytes: int  # estimate for a 32-bit core, see estimate_arena_32bit


def minimal_arena(model: bytes, upper_bytes: int | None = None) -> ArenaSize:
    """Bisection for the smallest TFLM arena that allocates and invokes ``model``."""
    hi = upper_bytes or max(64 * 1024, len(model) * 10)
    while not _allocates_and_runs(model, hi):
        hi *= 2
        if hi > 512 * 1024 * 1024:
            raise BadInput("TFLM could not allocate this model with a 512 MiB arena; is it a valid int8 model?")
    lo = 0  # invariant: lo fails (or is 0), hi works
    while hi - lo > 16:
        mid = (lo + hi) // 2 // 16 * 16
        if mid <= lo:
            break
        if _allocates_and_runs(model, mid):
            hi = mid
        else:
            lo = mid
    recommended = (hi + ARENA_ALIGNMENT_MARGIN + 15) // 16 * 16
    return ArenaSize(hi, recommended, estimate_arena_32bit(model, hi))


def estimate_arena_32bit(model: bytes, host_bytes: int) -> int:
    """Host arena minus the pointer-size difference of TFLM's per-tensor/per-node bookkeeping.

    The persistent tail holds one TfLiteEvalTensor (data pointer, dims pointer, type: 24 bytes
    on 64-bit, 12 on 32-bit) per tensor, and a TfLiteNode + registration pointer per operator
    (about 64 bytes on 64-bit, 36 on 32-bit); the rest of the arena (activations, scratch,
    quantization params) does not depend on the word size.
    """
    from tinyprune.tflite_info import read_model

    info = read_model(model)
    saving = 12 * info.num_tensors + 28 * len(info.operators)
    return max(host_bytes - saving, host_bytes // 2)


def run(model: bytes, inputs: list[np.ndarray], arena_bytes: int | None = None) -> list[np.ndarray]:
    """One inference; ``inputs`` in the model's own layout and dtype (e.g. int8 NHWC)."""
    interp = make_interpreter(model, arena_bytes or minimal_arena(model).recommended_bytes)
    for i, x in enumerate(inputs):
        interp.set_input(x, i)
    interp.invoke()
    outputs = []
    i = 0
    while True:
        try:
            outputs.append(np.array(interp.get_output(i)))
        except (RuntimeError, ValueError, IndexError):
            return outputs
        i += 1


def run_batch(model: bytes, batch: np.ndarray, arena_bytes: int | None = None) -> np.ndarray:
    """Run a single-input, single-output model on each sample of ``batch`` (shape N x input shape)."""
    interp = make_interpreter(model, arena_bytes or minimal_arena(model).recommended_bytes)
    outs = []
    for x in batch:
        interp.set_input(x[None, ...], 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0))[0])
    return np.stack(outs) if outs else np.zeros((0,))
