"""The runtime on the target cores: strict builds with arm-none-eabi-gcc for every core in boards/,
code size, per-model operator selection, no mutable global state, and two models in one
firmware image running bit-exact under QEMU on one board of each core."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from runtime_models import DIRECT, direct_network

pytestmark = pytest.mark.compile

# bytes of .text (+ .rodata) for every op, -Os, cortex-m4. The portable reference kernels fitted
# 16 KiB (15.9 KB); with the DSP fast paths, in-place execution and the multipliers kept in spare
# arena bytes the runtime took 21.1 KB; shared checks, one error exit per function, table-driven
# reads and one requantization copy brought it to 16.9 KB. Per-model builds compile only the
# model's operators.
CODE_SIZE_LIMIT = 17 * 1024 + 512
# The same at -O2: issue 9's 20 KB. Only the per-output loops of the convolution, depthwise and ADD
# kernels and the per-channel multipliers are compiled at -O2 (20.2 KB; 26.8 KB before the shrink).
O2_CODE_SIZE_LIMIT = 20 * 1024


def _one_board_per_core():
    from tinyprune.boards import list_boards

    return sorted({b.core: b.name for b in list_boards()}.values())


def _board(name):
    from tinyprune.boards import load_board

    return load_board(name)


@pytest.mark.parametrize("name", _one_board_per_core())
def test_strict_cross_build_without_globals(tmp_path, name):
    """-std=c99 -Wall -Wextra -Werror -pedantic for the core, and no .data/.bss in any object:
    the runtime keeps no mutable global state."""
    from tinyprune import runtime
    from tinyprune.toolchain import CrossTools

    board = _board(name)
    objects = runtime.cross_compile(board, tmp_path)
    size = CrossTools.find().size
    out = subprocess.run([size, *map(str, objects)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines()[1:]:
        text, data, bss = (int(x) for x in line.split()[:3])
        assert data == 0 and bss == 0, f"{board.core}: {line.split()[-1]} has .data/.bss: {line}"
    # no libc beyond memcpy/memset (the compiler's own helpers, __aeabi_*, are fine)
    nm = size.replace("-size", "-nm")
    undefined = subprocess.run([nm, "-u", *map(str, objects)], capture_output=True, text=True, check=True).stdout
    external = {s for s in re.findall(r"U (\w+)", undefined) if not s.startswith(("tpr_", "__aeabi_", "__gnu_"))}
    assert external <= {"memcpy", "memset"}, external


@pytest.mark.parametrize("name", _one_board_per_core())
def test_fast_kernels_at_os_build_for_every_core(tmp_path, name):
    """-Os -DTPR_FAST_KERNELS=1 (--optimize balanced) compiles strictly for every core (on Armv6-M
    without the Thumb-1 assembly, whose constraints GCC cannot meet at -Os)."""
    from tinyprune import runtime

    objects = runtime.cross_compile(_board(name), tmp_path, opt="-Os", defines=["-DTPR_FAST_KERNELS=1"])
    assert all(o.stat().st_size > 0 for o in objects)


def test_strict_host_build():
    """The host compiler with extra warnings on top of the project's strict set."""
    from tinyprune import runtime

    gcc = runtime._host_gcc()
    for src in [*runtime.sources(), runtime.DRIVER_SOURCE]:
        cmd = [gcc, *runtime.STRICT, "-Wshadow", "-Wmissing-prototypes", "-Wstrict-prototypes",
               "-Wcast-align", "-O2", *(f"-I{d}" for d in runtime.include_dirs()), "-c", str(src), "-o", "/dev/null"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{src.name}:\n{proc.stderr}"


def test_code_size_cortex_m4(tmp_path):
    from tinyprune import runtime

    sizes = runtime.object_text_sizes(runtime.cross_compile(_board("nucleo-f446re"), tmp_path))
    total = sum(sizes.values())
    assert total <= CODE_SIZE_LIMIT, f"runtime .text {total} bytes > {CODE_SIZE_LIMIT}: {sorted(sizes.items(), key=lambda kv: -kv[1])[:6]}"


def test_code_size_o2_cold_files_for_size(tmp_path):
    """In a -O2 build the files marked TPR_COLD_FILE (validation, planning, the operators linear in
    their tensors) are compiled for size, within 10 % of their -Os size; the MAC kernels keep -O2;
    -DTPR_COLD_FOR_SIZE=0 builds everything at -O2."""
    from tinyprune import runtime

    board = _board("nucleo-f446re")
    o2 = runtime.object_text_sizes(runtime.cross_compile(board, tmp_path / "o2", opt="-O2"))
    plain = runtime.object_text_sizes(
        runtime.cross_compile(board, tmp_path / "plain", opt="-O2", defines=["-DTPR_COLD_FOR_SIZE=0"]))
    small = runtime.object_text_sizes(runtime.cross_compile(board, tmp_path / "os", opt="-Os"))
    total = sum(o2.values())
    assert total <= O2_CODE_SIZE_LIMIT, f"-O2 runtime .text {total} bytes > {O2_CODE_SIZE_LIMIT}"
    assert total < sum(plain.values()) - 1000
    for name in ("tpr_runtime", "tpr_planner", "mean", "softmax", "mul", "pad"):
        assert o2[name] < plain[name], name
        assert abs(o2[name] - small[name]) <= 0.1 * small[name], (name, o2[name], small[name])
    # the depthwise per-output loops keep -O2, its per-row walk is compiled for size (TPR_SIZE_OPT)
    assert plain["depthwise_conv_2d"] > o2["depthwise_conv_2d"] > small["depthwise_conv_2d"]


def test_fast_kernels_at_os_change_only_the_convolution_files(tmp_path):
    """-Os -DTPR_FAST_KERNELS=1 (--optimize balanced): the convolution, depthwise and ADD files take
    their fast variants (larger than at -Os, smaller than at -O2); every other file is as at -Os."""
    from tinyprune import runtime

    board = _board("nucleo-f446re")
    small = runtime.object_text_sizes(runtime.cross_compile(board, tmp_path / "os", opt="-Os"))
    fast = runtime.object_text_sizes(runtime.cross_compile(board, tmp_path / "fast", opt="-Os",
                                                           defines=["-DTPR_FAST_KERNELS=1"]))
    o2 = runtime.object_text_sizes(runtime.cross_compile(board, tmp_path / "o2", opt="-O2"))
    hot = {"conv_common", "depthwise_conv_2d", "add"}
    for name in hot:
        assert small[name] < fast[name] < o2[name], (name, small[name], fast[name], o2[name])
    assert {k: v for k, v in fast.items() if k not in hot} == {k: v for k, v in small.items() if k not in hot}
    assert sum(fast.values()) - sum(small.values()) < 2500


def test_per_model_op_selection(tmp_path):
    """Only the operators a model uses are compiled; the rest leave empty objects."""
    from tinyprune import runtime

    board = _board("nucleo-f446re")
    full = runtime.object_text_sizes(runtime.cross_compile(board, tmp_path / "full"))
    selected = runtime.object_text_sizes(
        runtime.cross_compile(board, tmp_path / "sel", defines=runtime.op_defines(["FULLY_CONNECTED", "SOFTMAX"])))
    assert selected["fully_connected"] == full["fully_connected"] > 0
    assert selected["conv_2d"] == selected["hard_swish"] == selected["mean"] == 0
    assert sum(selected.values()) < 0.75 * sum(full.values())
    # the same through the generated header
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "tpr_ops.h").write_text(runtime.ops_header(["FULLY_CONNECTED", "SOFTMAX"]))
    via_header = runtime.object_text_sizes(
        runtime.cross_compile(board, tmp_path / "hdr", defines=["-DTPR_USE_OPS_HEADER", f"-I{tmp_path / 'inc'}"]))
    assert via_header == selected


def test_op_not_built_is_reported():
    from tinyprune import runtime

    lib = runtime.load_library(tuple(runtime.op_defines(["CONV_2D"])))
    model = DIRECT["FULLY_CONNECTED"](np.random.default_rng(0))
    m = runtime.Model(model, arena_bytes=4096, check=False, lib=lib)
    assert runtime.status_name(m.status) == "TPR_ERR_OP_NOT_BUILT"
    assert "FULLY_CONNECTED (builtin code 9) not built" in m.detail


def test_opnames_header_is_current():
    from tinyprune import runtime

    assert (runtime.RUNTIME_DIR / "tpr_opnames.h").read_text() == runtime.opnames_header(), \
        "regenerate firmware/runtime/tpr_opnames.h from tinyprune.runtime.opnames_header()"


# ---- two models in one firmware, on every core ---------------------------------------------------------

MAIN_C = r"""
#include <stdint.h>
#include "semihost.h"
#include "tpr_runtime.h"

extern const unsigned char model_a[], model_b[];
extern const unsigned int model_a_len, model_b_len;
static uint8_t arena_a[ARENA_A] __attribute__((aligned(16)));
static uint8_t arena_b[ARENA_B] __attribute__((aligned(16)));

static void fill(tpr_model_t *m, uint32_t seed)
{
    uint32_t i, j;
    for (i = 0; i < tpr_input_count(m); ++i) {
        tpr_io_t io;
        tpr_input(m, i, &io);
        for (j = 0; j < io.bytes; ++j) {
            seed = seed * 1103515245u + 12345u;
            ((uint8_t *)io.data)[j] = (uint8_t)(seed >> 16);
        }
    }
}

static void dump(const char *tag, tpr_model_t *m)
{
    uint32_t i, j;
    for (i = 0; i < tpr_output_count(m); ++i) {
        tpr_io_t io;
        tpr_output(m, i, &io);
        tp_sh_puts(tag);
        for (j = 0; j < io.bytes; ++j) {
            tp_sh_puts(" ");
            tp_sh_put_i32(((const int8_t *)io.data)[j]);
        }
        tp_sh_puts("\n");
    }
}

int main(void)
{
    tpr_model_t a, b;
    tpr_status_t sa = tpr_init(&a, model_a, model_a_len, arena_a, sizeof arena_a);
    tpr_status_t sb = tpr_init(&b, model_b, model_b_len, arena_b, sizeof arena_b);
    if (sa != TPR_OK || sb != TPR_OK) {
        tp_sh_puts("init failed: ");
        tp_sh_puts(tpr_status_str(sa != TPR_OK ? sa : sb));
        tp_sh_puts("\n");
        return 1;
    }
    fill(&a, 1u);
    fill(&b, 2u);
    /* interleaved: b runs between filling a's input and running a */
    if (tpr_invoke(&b) != TPR_OK || tpr_invoke(&a) != TPR_OK) {
        tp_sh_puts("invoke failed\n");
        return 1;
    }
    dump("a", &a);
    dump("b", &b);
    return 0;
}
"""


def _c_array(name: str, data: bytes) -> str:
    body = ",".join(str(x) for x in data)
    return (f"const unsigned char {name}[] __attribute__((aligned(16))) = {{{body}}};\n"
            f"const unsigned int {name}_len = {len(data)}u;\n")


def _lcg_inputs(model_obj, seed: int) -> list[np.ndarray]:
    xs = []
    for io in model_obj.inputs:
        buf = bytearray(io.nbytes)
        for j in range(io.nbytes):
            seed = (seed * 1103515245 + 12345) & 0xFFFFFFFF
            buf[j] = (seed >> 16) & 0xFF
        xs.append(np.frombuffer(bytes(buf), dtype=np.dtype(io.dtype)).reshape(io.shape))
    return xs


@pytest.fixture(scope="module")
def two_models():
    a = direct_network(np.random.default_rng(3))
    b = DIRECT["FULLY_CONNECTED"](np.random.default_rng(4))
    return a, b


@pytest.mark.emulate
@pytest.mark.parametrize("name", _one_board_per_core())
def test_two_models_in_one_firmware_bit_exact(tmp_path, name, two_models):
    from tinyprune import runtime
    from tinyprune.firmware import build_elf, emulation_layout
    from tinyprune.qemu import run_elf
    from tinyprune.tflm import make_interpreter

    board = _board(name)
    a, b = two_models
    ma, mb = runtime.Model(a), runtime.Model(b)
    src = tmp_path / "src"
    src.mkdir()
    (src / "main.c").write_text(MAIN_C)
    (src / "models.c").write_text(_c_array("model_a", a) + _c_array("model_b", b))
    layout = emulation_layout(board, stack_bytes=3072)
    build = build_elf(board, [src / "main.c", src / "models.c", *runtime.sources()], tmp_path / "build",
                      name="two_models", include_dirs=runtime.include_dirs(), layout=layout,
                      defines={"ARENA_A": str(ma.arena_bytes), "ARENA_B": str(mb.arena_bytes)},
                      extra_cflags=["-pedantic"])
    run = run_elf(build.elf, board.qemu_machine, timeout_s=60)
    assert run.exit_code == 0, run.stdout + run.stderr
    got = {}
    for line in run.stdout.splitlines():
        tag, *vals = line.split()
        got.setdefault(tag, []).append(np.array([int(v) for v in vals], dtype=np.int8))
    for tag, model, obj, seed in (("a", a, ma, 1), ("b", b, mb, 2)):
        xs = _lcg_inputs(obj, seed)
        host = obj.run(xs)
        oracle = make_interpreter(model, 256 * 1024)
        for i, x in enumerate(xs):
            oracle.set_input(x, i)
        oracle.invoke()
        for j, h in enumerate(host):
            assert np.array_equal(got[tag][j], h.reshape(-1)), f"{board.core}: model {tag} output {j} differs from the host"
            assert np.array_equal(h, np.array(oracle.get_output(j)).reshape(h.shape)), "host differs from TFLM"
