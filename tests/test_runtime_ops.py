"""Every kernel of the micro runtime against TFLite Micro (the ``tflite_micro`` interpreter): 0
differing output bytes on random int8 inputs, over many shapes, strides, paddings and
quantizations. Two model sources (see runtime_models.py): flatbuffers written directly with random
quantization (hundreds of cases per operator, fast), and the TFLite converter (the layouts and
options real models carry; cached on disk)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from runtime_models import DIRECT, KERAS, cached_models, compare, direct_network, keras_case

pytestmark = pytest.mark.compile

DIRECT_CASES = 150  # per operator
KERAS_CASES = 10  # per operator (the converter takes ~0.3 s per model, once; then cached)


def _report(failures: list[str]) -> str:
    return f"{len(failures)} cases differ from TFLM:\n" + "\n".join(failures[:8])


@pytest.mark.parametrize("op", sorted(DIRECT))
def test_random_quantization_bit_exact(op):
    rng = np.random.default_rng(zlib.crc32(op.encode()))
    failures, compared = [], 0
    for k in range(DIRECT_CASES):
        model = DIRECT[op](rng)
        r = compare(model, samples=3, seed=k, float_range=1.5, fast=k % 2 == 1)  # both arenas
        compared += r.bytes_compared
        if not r:
            failures.append(f"case {k}: " + "; ".join(r.details[:2]))
    assert not failures, _report(failures)
    assert compared > 0


def test_random_networks_bit_exact():
    """15 operators chained, random quantization everywhere."""
    failures = []
    for k in range(40):
        r = compare(direct_network(np.random.default_rng(1000 + k)), samples=3, seed=k, fast=k % 2 == 1)
        if not r:
            failures.append(f"network {k}: " + "; ".join(r.details[:2]))
    assert not failures, _report(failures)


@pytest.mark.slow
@pytest.mark.parametrize("op", sorted(KERAS))
def test_converted_models_bit_exact(op):
    models = cached_models(f"op-{op}", lambda i: keras_case(op, i), KERAS_CASES)
    failures = []
    for k, model in enumerate(models):
        r = compare(model, samples=6, seed=k, float_range=4.0, fast=k % 2 == 1)
        if not r:
            failures.append(f"case {k}: " + "; ".join(r.details[:2]))
    assert not failures, _report(failures)


def test_softmax_whose_sum_wraps_to_zero_matches_tflm():
    """8192 equal values: each exponential is 2^19 in Q12.19, the sum 2^32 wraps to 0 (TFLite's
    CountLeadingZeros(0) is 32); the runtime used to loop forever there."""
    from runtime_models import Graph, _tflm_interpreter, opts

    from tinyprune import runtime

    for depth in (8192, 8193):
        g = Graph()
        ti = g.tensor((1, depth), scale=0.1, zero_point=0)
        to = g.tensor((1, depth), scale=1 / 256, zero_point=-128)
        t, o = opts("SoftmaxOptions", beta=1.0)
        g.op(25, [ti], [to], t, o, version=2)
        model = g.build([ti], [to])
        x = np.full((1, depth), 5, np.int8)
        oracle = _tflm_interpreter(model)
        oracle.set_input(x, 0)
        oracle.invoke()
        assert np.array_equal(runtime.Model(model).run([x])[0], np.array(oracle.get_output(0))), depth


def test_hard_swish_with_large_input_scales_matches_tflm():
    """An input scale so large that the ReLU-ish multiplier's exponent exceeds 16: TFLite's
    SaturatingLeftShift saturates (in 64 bits); the runtime's 32-bit product used to overflow."""
    from runtime_models import Graph, compare, opts

    for scale in (800.0, 3000.0, 40000.0):
        g = Graph()
        ti = g.tensor((1, 64), scale=scale, zero_point=3)
        to = g.tensor((1, 64), scale=scale * 0.7, zero_point=-5)
        t, o = opts("HardSwishOptions")
        g.op(117, [ti], [to], t, o, version=1)
        r = compare(g.build([ti], [to]), samples=4, seed=1, float_range=1.5)
        assert r and r.bytes_compared > 0, (scale, r.details[:2])


def test_single_rounding_fast_paths_match_the_generic_requantization():
    """TPR_SINGLE_ROUNDING has no TFLM to compare with here: the -O2 build's fast requantization
    (whole-range blocks, ADD of one shape) must give what the -Os build's generic tpr_mbqm gives
    in that mode, model by model."""
    from tinyprune import runtime

    fast = runtime.load_library(("-DTPR_SINGLE_ROUNDING=1",))
    generic = runtime.load_library(("-DTPR_SINGLE_ROUNDING=1", "-Os"))
    rng = np.random.default_rng(8)
    models = [DIRECT[op](rng) for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD")
              for _ in range(25)]
    differing = []
    for k, blob in enumerate(models):
        a, b = runtime.Model(blob, lib=fast), runtime.Model(blob, lib=generic)
        for s in range(2):
            xs = [np.random.default_rng(100 * k + s).integers(-128, 128, size=io.shape).astype(np.int8)
                  for io in a.inputs]
            if not all(np.array_equal(u, v) for u, v in zip(a.run(xs), b.run(xs))):
                differing.append(k)
                break
    assert not differing, f"{len(differing)} of {len(models)} models differ: {differing[:8]}"


def test_tflm_uses_double_rounding():
    """TFLite's MultiplyByQuantizedMultiplier has two modes (TFLITE_SINGLE_ROUNDING); the runtime
    must use the one the installed tflite_micro was built with. A single-rounding build of the
    runtime disagrees with TFLM on random-scale models where the default build agrees."""
    from tinyprune import runtime

    single = runtime.load_library(("-DTPR_SINGLE_ROUNDING=1",))
    rng = np.random.default_rng(7)
    models = [DIRECT[op](rng) for op in ("FULLY_CONNECTED", "CONV_2D", "ADD", "MUL") for _ in range(25)]
    default_diff = sum(compare(m, samples=2, seed=i).differing for i, m in enumerate(models))
    import runtime_models

    single_diff = 0
    original = runtime_models.runtime_library
    runtime_models.runtime_library = lambda: single
    try:
        single_diff = sum(compare(m, samples=2, seed=i).differing for i, m in enumerate(models))
    finally:
        runtime_models.runtime_library = original
    assert default_diff == 0
    assert single_diff > 0, "both rounding modes match TFLM here: the check cannot tell them apart"
