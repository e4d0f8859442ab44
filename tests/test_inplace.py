"""In-place execution in the arena plan: an element-wise operator's output takes over an input
that dies there, a PAD's output takes over its input (moving it from the end). Each case is
checked two ways: the arena tpr_init plans (its exact size: which buffers share memory) and the
outputs, bit-exact against TFLite Micro, which plans without in-place execution."""

from __future__ import annotations

import numpy as np
import pytest

from runtime_models import Graph, compare, opts

pytestmark = pytest.mark.compile

Q = (0.05, 3)  # one quantization for every activation


def _arena(model: bytes) -> int:
    from tinyprune import runtime

    return runtime.required_arena_bytes(model)


def _planned(g: Graph, peak: int) -> int:
    """The arena for a plan peaking at `peak`: 4 bytes of location per tensor, then the
    activations, at least the planner's scratch (10 bytes per tensor)."""
    n = len(g.tensors)
    return (4 * n + 3) // 4 * 4 + max(peak, (10 * n + 3) // 4 * 4)


def _exact(model: bytes) -> None:
    r = compare(model, samples=3, seed=1)
    assert r and r.bytes_compared > 0, r.details[:2]


def _pad(g: Graph, x: int, shape, pads) -> int:
    out = [d + a + b for d, (a, b) in zip(shape, pads)]
    tp = g.tensor((len(shape), 2), "int32", data=np.array(pads, np.int32))
    to = g.tensor(out, scale=Q[0], zero_point=Q[1])
    t, o = opts("PadOptions")
    g.op(34, [x, tp], [to], t, o, version=2)
    return to


def _logistic(g: Graph, x: int, shape) -> int:
    to = g.tensor(shape, scale=1 / 256, zero_point=-128)
    g.op(14, [x], [to], version=2)
    return to


def _add(g: Graph, a: int, b: int, shape) -> int:
    to = g.tensor(shape, scale=0.1, zero_point=-2)
    t, o = opts("AddOptions", fusedActivationFunction=0)
    g.op(0, [a, b], [to], t, o, version=2)
    return to


def test_logistic_then_pad_run_in_one_buffer():
    """input -> LOGISTIC -> PAD: the logistic takes over the input, the PAD the logistic's output,
    grown to the padded size: one buffer (a plan without in-place execution holds two)."""
    shape, pads = (1, 24, 24, 16), [(0, 0), (1, 1), (1, 1), (0, 0)]
    g = Graph()
    x = g.tensor(shape, scale=Q[0], zero_point=Q[1])
    y = _pad(g, _logistic(g, x, shape), shape, pads)
    model = g.build([x], [y])
    assert _arena(model) == _planned(g, 26 * 26 * 16)
    _exact(model)


@pytest.mark.parametrize("pads", [[(0, 0), (0, 1), (0, 1), (0, 0)], [(0, 0), (2, 0), (1, 3), (0, 0)],
                                  [(1, 0), (0, 2), (0, 0), (3, 1)], [(0, 0), (0, 0), (0, 0), (0, 0)]])
def test_pad_in_place_moves_every_run(pads):
    """Paddings before, after, on the channels and none: the input's runs move up by different
    gaps (0 included), each copied in pieces no larger than the gap."""
    shape = (1, 5, 7, 3)
    g = Graph()
    x = g.tensor(shape, scale=Q[0], zero_point=Q[1])
    h = _logistic(g, x, shape)  # not a graph input: the PAD takes over an intermediate tensor
    y = _pad(g, h, shape, pads)
    model = g.build([x], [y])
    out_bytes = int(np.prod([d + a + b for d, (a, b) in zip(shape, pads)]))
    assert _arena(model) == _planned(g, (out_bytes + 3) // 4 * 4)
    _exact(model)


def test_pad_takeover_skipped_when_the_grown_root_raises_the_peak():
    """MAX_POOL (not in-place) then a small PAD: a root grown to the PAD's size would sit beside the
    pool's input, so tpr_init plans it without the takeover (1356 bytes, not 1440)."""
    g = Graph()
    x = g.tensor((1, 8, 8, 12), scale=Q[0], zero_point=Q[1])  # 768 bytes
    p = g.tensor((1, 7, 7, 12), scale=Q[0], zero_point=Q[1])  # 588
    t, o = opts("Pool2DOptions", padding=1, strideW=1, strideH=1, filterWidth=2, filterHeight=2,
                fusedActivationFunction=0)
    g.op(17, [x], [p], t, o, version=2)
    y = _pad(g, p, (1, 7, 7, 12), [(0, 0), (0, 0), (0, 1), (0, 0)])  # 672
    model = g.build([x], [y])
    assert _arena(model) == _planned(g, 768 + 588)
    _exact(model)


def test_an_input_read_later_is_not_taken_over():
    """LOGISTIC(x) cannot take over x, which ADD reads afterwards; ADD takes over one of its two
    dying inputs: two buffers."""
    shape = (1, 6, 6, 8)
    g = Graph()
    x = g.tensor(shape, scale=Q[0], zero_point=Q[1])
    y = _add(g, _logistic(g, x, shape), x, shape)
    model = g.build([x], [y])
    assert _arena(model) == _planned(g, 2 * 288)
    _exact(model)


@pytest.mark.parametrize("small", [(1,), (1, 1, 1, 16)])
def test_a_broadcast_input_is_not_taken_over(small):
    """ADD(small, full): only the full-size input may be taken over, even where the broadcast one
    has the same aligned size ([1] and [4] both take 4 bytes)."""
    full = (4,) if small == (1,) else (1, 4, 4, 16)
    g = Graph()
    a = g.tensor(small, scale=Q[0], zero_point=Q[1])
    b = g.tensor(full, scale=0.07, zero_point=-5)
    y = _add(g, a, b, full)
    model = g.build([a, b], [y])
    size = lambda shape: (int(np.prod(shape)) + 3) // 4 * 4  # noqa: E731
    assert _arena(model) == _planned(g, size(small) + size(full))
    _exact(model)


def test_graph_outputs_are_never_taken_over():
    """x -> LOGISTIC (a graph output) -> LOGISTIC: the second cannot take over the first."""
    shape = (1, 4, 4, 4)
    g = Graph()
    x = g.tensor(shape, scale=Q[0], zero_point=Q[1])
    h = _logistic(g, x, shape)
    y = g.tensor(shape, scale=1 / 256, zero_point=-128)
    g.op(14, [h], [y], version=2)
    model = g.build([x], [h, y])
    assert _arena(model) == _planned(g, 2 * 64)
    _exact(model)
