"""A corrupted model inside the firmware, on the emulated target: the runtime returns an error
code, the harness reports it (``TP_ERROR init: ... status=N``, exit status 2) and the core does
not fault. Also the emulator's resource limits: a firmware that prints forever is stopped at the
output cap.

The harness build is ``tinyprune.verify``'s, minus its refusal of invalid models (it asks the
host runtime for the arena first): the test writes the harness sources itself around the corrupt
bytes and gives the arena the valid model needs. The board is rpi-pico (Cortex-M0+ code on the
AN385's M3 with unaligned-access trapping on): a reader that read a 32-bit field from an odd
offset of the corrupt model would fault there.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinyprune import runtime
from tinyprune.boards import load_board
from tinyprune.errors import EmulatorError
from tinyprune.firmware import COMMON_DIR, build_elf, emulation_layout
from tinyprune.qemu import MAX_OUTPUT_BYTES, run_elf
from tinyprune.verify import HARNESS_DIR, HarnessBuild, _write_harness_sources, run_on_qemu, size_breakdown

pytestmark = [pytest.mark.compile, pytest.mark.emulate]

BOARD = "rpi-pico"
EXIT_MODEL = 2  # harness.c: the model was refused
EXIT_FAULT = 3  # startup.c: a fault handler ran


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    return s


def _repack(model: bytes, edit) -> bytes:
    import flatbuffers

    m = _schema().ModelT.InitFromPackedBuf(bytearray(model), 0)
    edit(m)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _bad_buffer_index(m):
    t = next(t for t in m.subgraphs[0].tensors if t.buffer > 0)
    t.buffer = len(m.buffers) + 5


def _unknown_operator(m):
    m.operatorCodes[0].builtinCode = 98  # LEAKY_RELU: not implemented
    m.operatorCodes[0].deprecatedBuiltinCode = 98


def _flipped_header(model: bytes) -> bytes:
    b = bytearray(model)
    b[0:4] = (len(model) - 3).to_bytes(4, "little")  # root table offset near the end, odd
    return bytes(b)


@pytest.fixture(scope="module")
def valid_model():
    import runtime_models

    return runtime_models.direct_network(np.random.default_rng(5))


def _firmware(tmp_path, model: bytes, arena: int, ops: list[str], name: str) -> HarnessBuild:
    board = load_board(BOARD)
    src = tmp_path / f"{name}.src"
    _write_harness_sources(src, model, arena, ops, None)
    build = build_elf(board, [HARNESS_DIR / "harness.c", src / "harness_model.c", COMMON_DIR / "timer.c",
                              *runtime.sources()], tmp_path, name=name,
                      include_dirs=[src, *runtime.include_dirs()], defines={"TPR_USE_OPS_HEADER": "1"},
                      layout=emulation_layout(board))
    return HarnessBuild(build, len(model), arena, ops, sizes=size_breakdown(build))


CASES = {
    "bad-buffer-index": lambda m: _repack(m, _bad_buffer_index),
    "unknown-operator": lambda m: _repack(m, _unknown_operator),
    "truncated": lambda m: m[: len(m) // 2],
    "root-offset-odd": _flipped_header,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_corrupt_model_is_reported_by_the_firmware_without_a_fault(tmp_path, valid_model, case):
    corrupt = CASES[case](valid_model)
    host_status, host_detail = runtime.check_model(corrupt)
    assert host_status != "TPR_OK", host_detail
    arena = runtime.required_arena_bytes(valid_model)
    ops = runtime.ops_used(valid_model)
    hb = _firmware(tmp_path, corrupt, arena, ops, case.replace("-", "_"))
    run = run_elf(hb.elf, load_board(BOARD).qemu_machine, cwd=tmp_path, timeout_s=60)
    assert not run.timed_out and "HardFault" not in run.stdout and "Fault" not in run.stdout, run.stdout
    assert run.exit_code == EXIT_MODEL, (run.exit_code, run.stdout, run.stderr)
    line = next(l for l in run.stdout.splitlines() if l.startswith("TP_ERROR init: "))
    status = int(line.split("status=")[1].split()[0])
    assert runtime.status_names()[status] == host_status, (line, host_status, host_detail)  # the same code as on the host
    assert runtime.load_library().tpr_status_str(status).decode() in line
    if case == "truncated":  # what `tinyprune verify` says: the harness's own report, not a crash
        with pytest.raises(EmulatorError, match=r"exit status 2\): TP_ERROR init: model truncated"):
            run_on_qemu(hb, load_board(BOARD), np.zeros((1, 300), np.int8), timeout_s=60)


def test_firmware_printing_forever_is_stopped_at_the_output_cap(tmp_path):
    """The emulator run has a cap on output size as well as a timeout: a firmware printing in a
    loop is killed once its console output passes MAX_OUTPUT_BYTES, long before the timeout."""
    import time

    src = tmp_path / "spam.c"
    src.write_text('#include "semihost.h"\nint main(void)\n{\n    for (;;) {\n'
                   '        tp_sh_puts("tinyprune output cap test: a firmware printing in a loop ......\\n");\n'
                   '    }\n}\n')
    board = load_board("mps2-an386")
    build = build_elf(board, [src], tmp_path, name="spam")
    start = time.monotonic()
    run = run_elf(build.elf, board.qemu_machine, cwd=tmp_path, timeout_s=300)
    assert run.output_capped and not run.timed_out and run.exit_code is None
    assert time.monotonic() - start < 120
    assert MAX_OUTPUT_BYTES // 2 < len(run.stdout) <= MAX_OUTPUT_BYTES
    hb = HarnessBuild(build, 0, 0, [], size_breakdown(build))
    with pytest.raises(EmulatorError, match="printed more than"):
        run_on_qemu(hb, board, np.zeros((1, 4), np.int8), timeout_s=300)
