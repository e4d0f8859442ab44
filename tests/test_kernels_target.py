"""The optimized CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED kernels on the target cores.

The host library never defines __ARM_FEATURE_DSP, so the property tests in test_runtime_ops.py
only see the portable kernels. Here the same kind of models (random shapes and quantization from
runtime_models.DIRECT, plus wider ones that reach every fast path: 2x2 blocks, whole words, one
word per kernel row, four-channel depthwise, one-row fully connected, odd channel counts, borders,
groups, dilation, depth multipliers, batches, per-tensor filter zero points) run in one firmware
per core and optimization level under QEMU, each in its smallest arena (the multipliers computed
on every invoke) and in its fast one (kept in the arena by tpr_init), and every output byte is
compared with TFLite Micro on the host. Cortex-M0+ runs its Thumb-1 assembly, the M3 the portable kernels, the M4, M7 and M33
the DSP ones (SMLAD/SXTB16) and the M55 Helium, which the test also finds in the image.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess

import numpy as np
import pytest

from runtime_models import DIRECT, Graph, compare, conv_quantization, direct_network, log_uniform, opts, rand_q, weights

pytestmark = pytest.mark.compile

ACTS = (0, 1, 2, 3)
SAMPLES = 2  # random inputs per model

# (core, QEMU board to run it on, optimization level): the firmware's default -Os, the -O2 the
# benchmarks use, and -O0; the M3 build runs on the AN385 with a board file borrowed from the Pico.
TARGETS = [
    ("cortex-m0plus", "rpi-pico", "-O2"),  # ARMv6-M: tpr_dot22_v6m's assembly (on the AN385's M3)
    ("cortex-m0plus", "rpi-pico", "-Os -DTPR_FAST_KERNELS=1"),  # the fast C paths without the assembly
    ("cortex-m3", "rpi-pico", "-O2"),
    ("cortex-m4", "mps2-an386", "-O0"),  # the DSP intrinsics without the assembly loop
    ("cortex-m4", "mps2-an386", "-Os"),
    ("cortex-m4", "mps2-an386", "-Os -DTPR_FAST_KERNELS=1"),  # --optimize balanced: -O2's kernels at -Os
    ("cortex-m4", "mps2-an386", "-O2"),
    ("cortex-m4", "mps2-an386", "-O2 -DTPR_WIDE_MAX=576"),  # 2x2 blocks widen 3x3 windows of 64 channels
    ("cortex-m7", "nucleo-h743zi", "-O2"),  # on the AN500
    ("cortex-m33", "mps2-an505", "-O2"),
    ("cortex-m55", "mps3-an547", "-O2"),
]


# ---- wider models than runtime_models.DIRECT: the fast paths need more channels and columns ----

def _out_size(n, k, stride, dil, padding):
    eff = (k - 1) * dil + 1
    return (n + stride - 1) // stride if padding == 0 else (n - eff + stride) // stride


def _geometry(rng, kernels):
    for _ in range(100):
        kh, kw = kernels[int(rng.integers(len(kernels)))]
        h, w = int(rng.integers(kh, kh + 9)), int(rng.integers(kw, kw + 9))
        sh, sw = (int(x) for x in rng.choice([1, 1, 2], size=2))
        dh, dw = (int(x) for x in rng.integers(1, 3, size=2)) if rng.random() < 0.15 else (1, 1)
        padding = int(rng.integers(0, 2))
        oh, ow = _out_size(h, kh, sh, dh, padding), _out_size(w, kw, sw, dw, padding)
        if oh >= 1 and ow >= 1:
            return h, w, kh, kw, sh, sw, dh, dw, padding, oh, ow
    raise AssertionError("no geometry found")


def wide_conv(rng, kernels=((1, 1), (3, 3), (10, 4), (1, 5), (2, 2)), cin: int | None = None) -> bytes:
    """CONV_2D with up to 128 input channels: 1x1 (a matrix product), 3x3, 10x4 over one channel
    (one word per kernel row), 1x5 (Conv1D), 2x2; sometimes grouped or dilated."""
    h, w, kh, kw, sh, sw, dh, dw, padding, oh, ow = _geometry(rng, list(kernels))
    if cin is None:
        cin = int(rng.choice([1, 2, 3, 4, 8, 13, 16, 40, 64, 128]))
    groups = int(rng.choice([g for g in (2, 4) if cin % g == 0] or [1])) if rng.random() < 0.15 else 1
    cout = groups * int(rng.integers(1, 12))
    fic = cin // groups
    n = int(rng.integers(1, 3))
    s_in, z_in, ws, s_out, z_out = conv_quantization(rng, kh * kw * fic, cout)
    g = Graph()
    ti = g.tensor((n, h, w, cin), scale=s_in, zero_point=z_in)
    tw = g.tensor((cout, kh, kw, fic), scale=ws, data=weights(rng, (cout, kh, kw, fic)), qdim=0)
    ins = [ti, tw]
    if rng.random() < 0.85:
        ins.append(g.tensor((cout,), "int32", scale=np.float32(s_in) * ws * np.ones(cout, np.float32),
                            data=rng.integers(-20000, 20000, size=cout).astype(np.int32)))
    to = g.tensor((n, oh, ow, cout), scale=s_out, zero_point=z_out)
    t, o = opts("Conv2DOptions", padding=padding, strideW=sw, strideH=sh, fusedActivationFunction=int(rng.choice(ACTS)),
                dilationWFactor=dw, dilationHFactor=dh)
    g.op(3, ins, [to], t, o, version=3)
    return g.build([ti], [to])


def wide_depthwise(rng, per_tensor: bool = False) -> bytes:
    """DEPTHWISE_CONV_2D with 4..64 channels (four at a time) and remainders, or a depth
    multiplier above one; 3x3 mostly, SAME or VALID, strides and dilations; per-channel weight
    scales unless per_tensor."""
    h, w, kh, kw, sh, sw, dh, dw, padding, oh, ow = _geometry(rng, [(3, 3), (3, 3), (5, 5), (1, 3), (2, 1)])
    if rng.random() < 0.75:
        cin, dm = int(rng.choice([4, 6, 8, 13, 16, 64])), 1
    else:
        cin, dm = int(rng.integers(1, 6)), int(rng.integers(2, 5))
    cout = cin * dm
    n = int(rng.integers(1, 3))
    s_in, z_in = rand_q(rng)
    ws = log_uniform(rng, 2e-3, 0.05, 1 if per_tensor else cout)
    spread = np.sqrt(kh * kw) * 60 * 70 * s_in * float(ws.mean())
    s_out, z_out = float(spread * log_uniform(rng, 0.003, 0.05)), int(rng.integers(-128, 128))
    g = Graph()
    ti = g.tensor((n, h, w, cin), scale=s_in, zero_point=z_in)
    tw = g.tensor((1, kh, kw, cout), scale=ws, data=weights(rng, (1, kh, kw, cout)), qdim=3)
    ins = [ti, tw]
    if rng.random() < 0.85:
        ins.append(g.tensor((cout,), "int32", scale=np.float32(s_in) * ws,
                            data=rng.integers(-20000, 20000, size=cout).astype(np.int32)))
    to = g.tensor((n, oh, ow, cout), scale=s_out, zero_point=z_out)
    t, o = opts("DepthwiseConv2DOptions", padding=padding, strideW=sw, strideH=sh, depthMultiplier=dm,
                fusedActivationFunction=int(rng.choice(ACTS)), dilationWFactor=dw, dilationHFactor=dh)
    g.op(4, ins, [to], t, o, version=3)
    return g.build([ti], [to])


def wide_fully_connected(rng, depth: int | None = None, batches: int | None = None) -> bytes:
    """FULLY_CONNECTED up to 200 deep (half the time a multiple of 4 up to 64, as matmul4 needs),
    1-8 batches (pairs of rows; four and more: matmul4; one: the widened input), odd and even unit
    counts, per-channel or per-tensor weights, sometimes with a filter zero point (TFLM accepts
    it). ``depth`` and ``batches`` fix those."""
    d = 4 * int(rng.integers(1, 17)) if rng.random() < 0.5 else int(rng.integers(1, 200))
    u, b = int(rng.integers(1, 34)), int(rng.integers(1, 9))
    d, b = depth or d, batches or b
    per_channel = rng.random() < 0.5
    s_in, z_in = rand_q(rng)
    ws = log_uniform(rng, 1e-3, 0.05, u if per_channel else 1)
    w_zp = int(rng.integers(-20, 20)) if not per_channel and rng.random() < 0.3 else 0
    spread = np.sqrt(d) * 60 * 70 * s_in * float(ws.mean())
    s_out, z_out = float(spread * log_uniform(rng, 0.003, 0.05)), int(rng.integers(-128, 128))
    g = Graph()
    ti = g.tensor((b, d), scale=s_in, zero_point=z_in)
    tw = g.tensor((u, d), scale=ws, zero_point=np.full(len(ws), w_zp), data=weights(rng, (u, d)))
    ins = [ti, tw]
    if rng.random() < 0.85:
        ins.append(g.tensor((u,), "int32", scale=np.float32(s_in) * ws,
                            data=rng.integers(-20000, 20000, size=u).astype(np.int32)))
    to = g.tensor((b, u), scale=s_out, zero_point=z_out)
    t, o = opts("FullyConnectedOptions", fusedActivationFunction=int(rng.choice(ACTS)))
    g.op(9, ins, [to], t, o, version=4 if len(ins) == 3 else 6)
    return g.build([ti], [to])


def flat_add(rng):
    """ADD of two inputs of the output's shape (no broadcasting, as a residual connection): mostly
    without an activation or with ReLU/ReLU6 at output zero point -128, where the output is
    requantized without a clamp; the inputs' scales in either order or equal."""
    shape = tuple(int(x) for x in rng.integers(1, 9, size=int(rng.integers(1, 5))))
    sa, za = rand_q(rng)
    sb, zb = rand_q(rng)
    if rng.random() < 0.15:
        sb = sa
    act = int(rng.choice([0, 0, 1, 3, 2]))
    so = float((sa + sb) * log_uniform(rng, 0.5, 2.0))
    zo = -128 if act in (1, 3) and rng.random() < 0.7 else int(rng.integers(-128, 128))
    g = Graph()
    ta = g.tensor(shape, scale=sa, zero_point=za)
    tb = g.tensor(shape, scale=sb, zero_point=zb)
    to = g.tensor(shape, scale=so, zero_point=zo)
    g.op(0, [ta, tb], [to], *opts("AddOptions", fusedActivationFunction=act), version=2)
    return g.build([ta, tb], [to])


WIDE = {"CONV_2D": wide_conv, "DEPTHWISE_CONV_2D": wide_depthwise, "FULLY_CONNECTED": wide_fully_connected,
        "ADD": flat_add}


def kernel_models(seed: int = 0) -> list[tuple[str, bytes]]:
    """The models one firmware runs: (label, .tflite bytes)."""
    rng = np.random.default_rng(seed)
    cases = []
    for op in sorted(WIDE):
        cases += [(f"{op} direct {k}", DIRECT[op](rng)) for k in range(12)]
        cases += [(f"{op} wide {k}", WIDE[op](rng)) for k in range(24)]
    cases += [(f"network {k}", direct_network(rng)) for k in range(3)]
    # 1x1 at the widened-weight paths' limits: four channels at a time up to 64 input channels,
    # pairs up to 128, the dot products beyond
    cases += [(f"CONV_2D 1x1 cin {cin} {k}", wide_conv(rng, kernels=[(1, 1)], cin=cin))
              for cin in (60, 64, 68, 128, 132) for k in range(2)]
    # one batch row, the input widened once for every channel: up to 256 deep, then the pairs
    cases += [(f"FULLY_CONNECTED 1 row depth {d} {k}", wide_fully_connected(rng, depth=d, batches=1))
              for d in (4, 128, 256, 260) for k in range(2)]
    # per-tensor weight scales: every channel shares one multiplier
    cases += [(f"DEPTHWISE_CONV_2D per-tensor {k}", wide_depthwise(rng, per_tensor=True)) for k in range(8)]
    return cases


@pytest.fixture(scope="module")
def models():
    return kernel_models()


# ---- host: the same models through the portable kernels -------------------------------------------

@pytest.mark.parametrize("op", sorted(WIDE))
def test_wide_models_bit_exact_on_host(op):
    rng = np.random.default_rng(17)
    failures = []
    for k in range(80):
        r = compare(WIDE[op](rng), samples=2, seed=k, fast=k % 2 == 1)  # both arenas
        if not r:
            failures.append(f"case {k}: " + "; ".join(r.details[:2]))
    assert not failures, f"{len(failures)} cases differ from TFLM:\n" + "\n".join(failures[:8])


# ---- target: one firmware runs them all ---------------------------------------------------------------

MAIN_C = r"""
#include <stdint.h>
#include "semihost.h"
#include "tpr_runtime.h"

extern const unsigned char *const tk_models[];
extern const unsigned int tk_sizes[];
extern const unsigned int tk_count;
extern const unsigned int tk_arenas[]; /* per model: its smallest arena, its fast arena */
static uint8_t arena[TK_ARENA] __attribute__((aligned(16)));

/* In the smallest arenas, then in the fast ones (the multipliers kept in the arena), for each
 * model: init, then TK_SAMPLES times read its inputs from inputs.bin, invoke, append its outputs
 * to outputs.bin. */
int main(void)
{
    tpr_model_t m;
    tpr_io_t io;
    uint32_t k, j, i, fast;
    int fi = tp_sh_open("inputs.bin", TP_SH_MODE_RB), fo = tp_sh_open("outputs.bin", TP_SH_MODE_WB);
    if (fi < 0 || fo < 0) {
        return 5;
    }
    for (fast = 0; fast < 2; ++fast)
    for (k = 0; k < tk_count; ++k) {
        tpr_status_t s = tpr_init(&m, tk_models[k], tk_sizes[k], arena, tk_arenas[2 * k + fast]);
        if (s != TPR_OK) {
            tp_sh_puts("init failed: model ");
            tp_sh_put_u32(k);
            tp_sh_puts("\n");
            return 2;
        }
        if (m.mult_kept != (fast ? m.mult_count : 0u)) {
            tp_sh_puts("multipliers not where expected: model ");
            tp_sh_put_u32(k);
            tp_sh_puts("\n");
            return 6;
        }
        for (j = 0; j < TK_SAMPLES; ++j) {
            for (i = 0; i < tpr_input_count(&m); ++i) {
                tpr_input(&m, i, &io);
                if (tp_sh_read(fi, io.data, io.bytes) != io.bytes) {
                    return 5;
                }
            }
            if (tpr_invoke(&m) != TPR_OK) {
                tp_sh_puts("invoke failed: model ");
                tp_sh_put_u32(k);
                tp_sh_puts("\n");
                return 4;
            }
            for (i = 0; i < tpr_output_count(&m); ++i) {
                tpr_output(&m, i, &io);
                tp_sh_write(fo, io.data, io.bytes);
            }
        }
    }
    tp_sh_close(fi);
    tp_sh_close(fo);
    return 0;
}
"""


def _models_c(blobs: list[bytes], arenas: list[tuple[int, int]]) -> str:
    parts = []
    for k, data in enumerate(blobs):
        parts.append(f"static const unsigned char tk_m{k}[] __attribute__((aligned(16))) = {{"
                     + ",".join(map(str, data)) + "};\n")
    parts.append("const unsigned char *const tk_models[] = {" + ",".join(f"tk_m{k}" for k in range(len(blobs))) + "};\n")
    parts.append("const unsigned int tk_sizes[] = {" + ",".join(f"{len(b)}u" for b in blobs) + "};\n")
    parts.append(f"const unsigned int tk_count = {len(blobs)}u;\n")
    parts.append("const unsigned int tk_arenas[] = {" + ",".join(f"{a}u,{b}u" for a, b in arenas) + "};\n")
    return "".join(parts)


def _target_board(core: str, board_name: str):
    from tinyprune.boards import load_board

    board = load_board(board_name)
    if board.core != core:  # the same QEMU machine with another core's code (ARMv7-M runs ARMv6-M/M3 code)
        board = dataclasses.replace(board, name=f"{board_name}-{core}", core=core, fpu="none", dsp=False)
    return board


def _oracle(model: bytes, inputs: list[list[np.ndarray]], n_outputs: int) -> list[np.ndarray]:
    """TFLite Micro's outputs for each sample, flattened, in the firmware's order."""
    from tinyprune.tflm import make_interpreter

    interp = make_interpreter(model, max(64 * 1024, len(model) * 4 + 256 * 1024))
    outs = []
    for xs in inputs:
        for i, x in enumerate(xs):
            interp.set_input(x, i)
        interp.invoke()
        outs += [np.array(interp.get_output(j)).reshape(-1) for j in range(n_outputs)]
    return outs


@pytest.mark.emulate
@pytest.mark.parametrize("core, board_name, opt", TARGETS, ids=[f"{c}{o}".replace(" -D", "-") for c, _, o in TARGETS])
def test_kernels_bit_exact_on_target(tmp_path, models, core, board_name, opt):
    from tinyprune import runtime
    from tinyprune.firmware import build_elf, emulation_layout
    from tinyprune.qemu import run_elf
    from tinyprune.toolchain import CrossTools

    board = _target_board(core, board_name)
    labels, blobs = zip(*models)
    hosted = [runtime.Model(b) for b in blobs]
    arenas = [(m.arena_bytes, runtime.required_arena_bytes(b, fast=True)) for b, m in zip(blobs, hosted)]
    arena = max(fast for _, fast in arenas)
    rng = np.random.default_rng(5)
    inputs, expected = [], []
    for blob, m in zip(blobs, hosted):
        xs = [[rng.integers(-128, 128, size=io.shape, dtype=np.int64).astype(np.int8) for io in m.inputs]
              for _ in range(SAMPLES)]
        inputs.append(xs)
        expected.append(_oracle(blob, xs, len(m.outputs)))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.c").write_text(MAIN_C)
    (tmp_path / "src" / "models.c").write_text(_models_c(list(blobs), arenas))
    build = build_elf(board, [tmp_path / "src" / "main.c", tmp_path / "src" / "models.c", *runtime.sources()],
                      tmp_path / "build", name="kernels", include_dirs=runtime.include_dirs(),
                      layout=emulation_layout(board, stack_bytes=4096), opt=opt,
                      defines={"TK_ARENA": str(arena), "TK_SAMPLES": str(SAMPLES)}, extra_cflags=["-pedantic"])

    # the compiler chose the DSP kernels from -mcpu alone: SMLAD is in the image exactly on DSP cores
    objdump = CrossTools.find().gcc.replace("-gcc", "-objdump")
    text = subprocess.run([objdump, "-d", str(build.elf)], capture_output=True, text=True, check=True).stdout
    assert bool(re.search(r"\bsmlad\b", text)) == (core not in ("cortex-m0plus", "cortex-m3")), \
        f"{core}: SMLAD presence is wrong"
    # and Helium (MVE) on the Cortex-M55 (binutils does not disassemble MVE: look for its kernel)
    nm = CrossTools.find().gcc.replace("-gcc", "-nm")
    symbols = subprocess.run([nm, str(build.elf)], capture_output=True, text=True, check=True).stdout
    assert ("tpr_dot14_mve" in symbols) == (core == "cortex-m55" and opt != "-O0"), f"{core}: MVE presence is wrong"
    fast = opt.startswith("-O2") or "-DTPR_FAST_KERNELS=1" in opt  # the fast variants, not the -Os ones
    assert ("tpr_words14x" in symbols) == (core in ("cortex-m4", "cortex-m7", "cortex-m33") and fast), \
        f"{core}: one-row FC path"

    work = tmp_path / "run"
    work.mkdir()
    (work / "inputs.bin").write_bytes(2 * b"".join(x.tobytes() for xs in inputs for sample in xs for x in sample))
    run = run_elf(build.elf, board.qemu_machine, cwd=work, timeout_s=120)
    assert run.exit_code == 0, run.stdout + run.stderr
    got = np.frombuffer((work / "outputs.bin").read_bytes(), dtype=np.int8)
    failures, pos = [], 0
    runs = [(f"{label} (smallest arena)", exp) for label, exp in zip(labels, expected)] + [
        (f"{label} (fast arena)", exp) for label, exp in zip(labels, expected)]
    for label, exp in runs:
        n = sum(e.size for e in exp)
        mine = got[pos:pos + n]
        pos += n
        want = np.concatenate(exp).astype(np.int8) if exp else np.zeros(0, np.int8)
        if mine.shape != want.shape or not np.array_equal(mine, want):
            bad = int((mine != want).sum()) if mine.shape == want.shape else n
            failures.append(f"{label}: {bad} of {n} bytes differ from TFLM")
    assert pos == got.size, f"{core}: the firmware wrote {got.size} bytes, expected {pos}"
    assert not failures, f"{core} {opt}: {len(failures)} of {len(runs)} runs differ:\n" + "\n".join(failures[:10])
