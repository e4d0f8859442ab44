"""The per-channel multipliers (tpr_quant.c) on the target cores, value by value.

Model-level tests rarely notice a multiplier off by one in its last bit: an output changes only
when its requantized value sits on a rounding boundary. So this runs the conv and FC multipliers
(tpr_mult_layer, tpr_mult_channel) and tpr_mult_ratio under QEMU on scales whose quotient lies
next to QuantizeMultiplier's rounding boundary, and on random ones, and compares every
(multiplier, shift) with TFLite's computation in double precision (numpy's doubles,
test_fixedpoint's references). Cortex-M4 runs the integer arithmetic (at -O2 by the output
scale's reciprocal, at -Os by long division), Cortex-M0+ the same without CLZ or a divide
instruction, and the Cortex-M7 (FPv5-D16) and M55 their double-precision FPU (TPR_FP64).
"""

from __future__ import annotations

import numpy as np
import pytest

from test_fixedpoint import _f32_bits, _near_ties, reference_mult_conv, reference_mult_fc
from test_kernels_target import _target_board

pytestmark = [pytest.mark.compile, pytest.mark.emulate]

TARGETS = [
    ("cortex-m4", "mps2-an386", "-O2"),
    ("cortex-m4", "mps2-an386", "-Os"),
    ("cortex-m0plus", "rpi-pico", "-O2"),
    ("cortex-m7", "nucleo-h743zi", "-O2"),  # FPv5-D16: the double-precision path too
    ("cortex-m55", "mps3-an547", "-O2"),
]

MAIN_C = r"""
#include <stdint.h>
#include "semihost.h"
#include "tpr_fixedpoint.h"

/* A conv (fc 0) or per-tensor FULLY_CONNECTED (fc 1) multiplier, as the kernels compute it. */
static int mult(uint32_t in_s, uint32_t filt_s, uint32_t out_s, int fc, int32_t *m, int *shift)
{
    tpr_mult_layer_t l;
    return tpr_mult_layer(in_s, out_s, fc, &l) && tpr_mult_channel(&l, filt_s, m, shift);
}

/* For each (input, filter, output) scale triple in scales.bin: ok, multiplier and shift of the
 * conv and FC multipliers and of tpr_mult_ratio(input, output), appended to results.bin. */
int main(void)
{
    uint32_t s[3];
    int fi = tp_sh_open("scales.bin", TP_SH_MODE_RB), fo = tp_sh_open("results.bin", TP_SH_MODE_WB);
    if (fi < 0 || fo < 0) {
        return 5;
    }
    while (tp_sh_read(fi, s, sizeof s) == sizeof s) {
        int32_t r[9], m = 0;
        int shift = 0;
        r[0] = mult(s[0], s[1], s[2], 0, &m, &shift);
        r[1] = m;
        r[2] = shift;
        r[3] = mult(s[0], s[1], s[2], 1, &m, &shift);
        r[4] = m;
        r[5] = shift;
        r[6] = tpr_mult_ratio(s[0], s[2], &m, &shift);
        r[7] = m;
        r[8] = shift;
        tp_sh_write(fo, r, sizeof r);
    }
    return 0;
}
"""


def _scales() -> list[tuple[float, float, float]]:
    rng = np.random.default_rng(11)
    cases = [c for b in (2**23, 0xA3D70B, 0xFFFFFF) for c in _near_ties(b, 12, seed=b & 0xFF)]
    cases += [tuple(float(np.float32(10.0 ** rng.uniform(lo, hi))) for lo, hi in ((-4, 0), (-5, 0), (-4, 1)))
              for _ in range(1500)]
    return cases


@pytest.mark.parametrize("core, board_name, opt", TARGETS, ids=[f"{c}{o}" for c, _, o in TARGETS])
def test_multipliers_match_double_precision_on_target(tmp_path, core, board_name, opt):
    from tinyprune import runtime
    from tinyprune.firmware import build_elf, emulation_layout
    from tinyprune.qemu import run_elf

    board = _target_board(core, board_name)
    cases = _scales()
    (tmp_path / "main.c").write_text(MAIN_C)
    build = build_elf(board, [tmp_path / "main.c", *runtime.sources()], tmp_path / "build", name="mult",
                      include_dirs=runtime.include_dirs(), layout=emulation_layout(board, stack_bytes=4096),
                      opt=opt, extra_cflags=["-pedantic"])
    work = tmp_path / "run"
    work.mkdir()
    bits = np.array([[_f32_bits(s) for s in c] for c in cases], dtype=np.uint32)
    (work / "scales.bin").write_bytes(bits.tobytes())
    run = run_elf(build.elf, board.qemu_machine, cwd=work, timeout_s=120)
    assert run.exit_code == 0, run.stdout + run.stderr
    got = np.frombuffer((work / "results.bin").read_bytes(), dtype=np.int32).reshape(-1, 3, 3)
    assert got.shape[0] == len(cases)
    bad = []
    for (in_s, w_s, out_s), row in zip(cases, got):
        expected = [reference_mult_conv(in_s, w_s, out_s), reference_mult_fc(in_s, w_s, out_s),
                    reference_mult_conv(in_s, 1.0, out_s)]
        for name, (ok, m, shift), want in zip(("conv", "fc", "ratio"), row.tolist(), expected):
            if not ok or (m, shift) != want:
                bad.append((name, (in_s, w_s, out_s), (ok, m, shift), want))
    assert not bad, f"{core} {opt}: {len(bad)} of {3 * len(cases)} multipliers differ: {bad[:3]}"
