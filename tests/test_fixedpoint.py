"""The runtime's requantization arithmetic against independent references, input by input.

The kernels requantize every output with tpr_mbqm's inline form (tpr_fixedpoint.h), which folds
gemmlowp's two roundings into one multiply-accumulate, and compute their multipliers from the
float32 scales with integers only (tpr_quant.c). Model-level tests compare whole outputs with
TFLite Micro; these tests reach the corners models rarely do (accumulators near 2^31, every shift,
multipliers of every size) and compare with:

* TFLite's MultiplyByQuantizedMultiplier written out from its definition (gemmlowp's
  SaturatingRoundingDoublingHighMul with its nudge and truncating division, then
  RoundingDivideByPOT), in Python integers;
* the multipliers TFLite computes in double precision, computed here with the CPU's doubles
  (numpy) and math.frexp.
"""

from __future__ import annotations

import ctypes
import math
from fractions import Fraction

import numpy as np
import pytest

from tinyprune import runtime

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def _wrap32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def _srdhm(a: int, b: int) -> int:
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    num = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    return num // 2**31 if num >= 0 else -((-num) // 2**31)  # C's truncating division


def _rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if (x & mask) > threshold else 0)


def reference_mbqm(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return _rdbpot(_srdhm(_wrap32(x << left), m), right)


@pytest.fixture(scope="module")
def lib():
    lib = ctypes.CDLL(str(runtime.host_library()))
    lib.tpr_mbqm.argtypes = [ctypes.c_int32, ctypes.c_int32, ctypes.c_int]
    lib.tpr_mbqm.restype = ctypes.c_int32
    lib.tpr_mult_layer.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p]
    lib.tpr_mult_layer.restype = ctypes.c_int
    lib.tpr_mult_channel.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.POINTER(ctypes.c_int32),
                                     ctypes.POINTER(ctypes.c_int)]
    lib.tpr_mult_channel.restype = ctypes.c_int
    return lib


def _mult(lib, fc: int):
    """tpr_mult_layer for (input, output) then tpr_mult_channel for the filter scale, as the conv
    (fc=0) and per-tensor FULLY_CONNECTED (fc=1) kernels call them: (in, filt, out, &m, &shift)."""

    def call(in_s, filt_s, out_s, m, shift) -> int:
        layer = ctypes.create_string_buffer(128)  # tpr_mult_layer_t is 48 bytes on x86-64
        return lib.tpr_mult_layer(in_s, out_s, fc, layer) and lib.tpr_mult_channel(layer, filt_s, m, shift)

    return call


def _cases(n: int, seed: int):
    rng = np.random.default_rng(seed)
    edges_x = [0, 1, -1, 2, -2, I32_MAX, I32_MIN, 2**30, -(2**30), 2**30 - 1, -(2**30) + 1, 12345, -12345]
    edges_m = [0, 1, 2**30, 2**30 + 1, I32_MAX]
    for i in range(n):
        if i % 8 == 0:
            x = edges_x[i // 8 % len(edges_x)]
        else:  # every magnitude: a random 32-bit value shifted right by 0..31
            x = int(rng.integers(I32_MIN, I32_MAX, endpoint=True)) >> int(rng.integers(0, 32))
        kind = i % 5
        if kind == 0:
            m = edges_m[i // 5 % len(edges_m)]
        elif kind == 1:  # below 2^30: not what QuantizeMultiplier gives, but inside the contract
            m = int(rng.integers(0, 2**31)) >> int(rng.integers(0, 31))
        else:  # QuantizeMultiplier's range
            m = int(rng.integers(2**30, 2**31))
        yield x, m, int(rng.integers(-31, 32))


def test_mbqm_matches_tflites_definition_for_every_shift(lib):
    bad = [(x, m, s) for x, m, s in _cases(60000, seed=1) if lib.tpr_mbqm(x, m, s) != reference_mbqm(x, m, s)]
    assert not bad, bad[:5]


def test_mbqm_matches_at_rounding_ties(lib):
    """Products that land exactly on a tie of the second rounding, both signs, r = 1..31."""
    bad = []
    m = 2**30  # SRDHM(x, 2^30) = x / 2 rounded: ties of x / 2^(r+1) are odd multiples of 2^r
    for r in range(1, 32):
        for k in (-5, -3, -1, 1, 3, 5):
            for x in (k * 2**r, k * 2**r + 1, k * 2**r - 1):
                x = _wrap32(x)
                if lib.tpr_mbqm(x, m, -r) != reference_mbqm(x, m, -r):
                    bad.append((x, m, -r))
    assert not bad, bad[:5]


def _f32_bits(v: float) -> int:
    return int(np.float32(v).view(np.uint32))


def reference_mult_conv(in_s: float, w_s: float, out_s: float) -> tuple[int, int]:
    """TFLite: effective = double(in) * double(w) / double(out); QuantizeMultiplier(effective)."""
    real = float(np.float64(np.float32(in_s)) * np.float64(np.float32(w_s)) / np.float64(np.float32(out_s)))
    frac, shift = math.frexp(real)
    q = math.floor(abs(frac) * 2**31 + 0.5)  # std::round: half away from zero (frac > 0 here)
    if q == 2**31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def test_multipliers_match_double_precision(lib):
    rng = np.random.default_rng(2)
    m, shift = ctypes.c_int32(), ctypes.c_int()
    bad = []
    for _ in range(20000):
        scales = [float(np.float32(10.0 ** rng.uniform(lo, hi))) for lo, hi in ((-4, 0), (-5, 0), (-4, 1))]
        exp_m, exp_shift = reference_mult_conv(*scales)
        ok = _mult(lib, 0)(*(_f32_bits(s) for s in scales), ctypes.byref(m), ctypes.byref(shift))
        if not ok or (m.value, shift.value) != (exp_m, exp_shift):
            bad.append((scales, (m.value, shift.value), (exp_m, exp_shift)))
    assert not bad, bad[:3]


def reference_mult_fc(in_s: float, w_s: float, out_s: float) -> tuple[int, int]:
    """TFLite's per-tensor FULLY_CONNECTED: the product in float32, then divided in double."""
    return reference_mult_conv(float(np.float32(in_s) * np.float32(w_s)), 1.0, out_s)


def _near_ties(b_mant: int, n_c: int, seed: int) -> list[tuple[float, float, float]]:
    """Scales (in, w, out) whose quotient in * w / out, scaled into [2^30, 2^31), has a fraction
    within 2^-22 of 1/2: there the double's rounding (53 bits) decides QuantizeMultiplier's
    (31 bits). w's mantissa is b_mant; in's mantissa a solves a * b * 2^k = r (mod c) for the
    remainders r near c / 2."""
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(n_c):
        c = int(rng.integers(2**23, 2**24)) | 1
        for k in range(4, 10):  # a * b * 2^k / c lands in [2^30, 2^31) for one of these
            try:
                inv = pow(b_mant << k, -1, c)
            except ValueError:  # not invertible modulo c
                continue
            for r in range(c // 2 - c // 2**22 - 1, c // 2 + c // 2**22 + 2):
                a = r * inv % c
                for a in (a, a + c):
                    if 2**23 <= a < 2**24 and 2**30 <= (a * b_mant << k) // c < 2**31:
                        found.append((a * 2.0**-33, b_mant * 2.0**-30, c * 2.0**-26))
    return found


@pytest.mark.parametrize("b_mant", [2**23, 0xA3D70B, 0xFFFFFF])
def test_multipliers_match_double_precision_at_rounding_ties(lib, b_mant):
    """Where the double's rounding decides QuantizeMultiplier's, for every multiplier form."""
    lib.tpr_mult_ratio.argtypes = None
    m, shift = ctypes.c_int32(), ctypes.c_int()
    cases = _near_ties(b_mant, 12, seed=b_mant & 0xFF)
    assert len(cases) > 20
    bad, rounded_up = [], 0
    for in_s, w_s, out_s in cases:
        exact = in_s * w_s / out_s  # floats and their product are exact here
        frac, _ = math.frexp(exact)
        rounded_up += reference_mult_conv(in_s, w_s, out_s)[0] > frac * 2**31
        checks = [("conv", _mult(lib, 0), (in_s, w_s, out_s), reference_mult_conv(in_s, w_s, out_s)),
                  ("fc", _mult(lib, 1), (in_s, w_s, out_s), reference_mult_fc(in_s, w_s, out_s))]
        if b_mant == 2**23:  # w is a power of two: in / (out / w) is a ratio of two floats
            checks.append(("ratio", lib.tpr_mult_ratio, (in_s, out_s / w_s), reference_mult_conv(in_s, 1.0, out_s / w_s)))
        for name, fn, scales, expected in checks:
            ok = fn(*(ctypes.c_uint32(_f32_bits(s)) for s in scales), ctypes.byref(m), ctypes.byref(shift))
            if not ok or (m.value, shift.value) != expected:
                bad.append((name, scales, (m.value, shift.value), expected))
    assert not bad, bad[:3]
    assert 0 < rounded_up < len(cases)  # both sides of the tie are reached


def test_fc_multipliers_match_float_product(lib):
    """Per-tensor FULLY_CONNECTED rounds the scales' product to a float first: random scales, and
    products whose dropped half is exactly a tie (mantissas odd x 2^12 and odd x 2^11)."""
    rng = np.random.default_rng(5)
    m, shift = ctypes.c_int32(), ctypes.c_int()
    cases = [tuple(float(np.float32(10.0 ** rng.uniform(lo, hi))) for lo, hi in ((-4, 0), (-5, 0), (-4, 1)))
             for _ in range(5000)]
    ties = 0
    while ties < 500:
        a, b = int(rng.integers(2**11, 2**12)) | 1, int(rng.integers(2**12, 2**13)) | 1
        if a * b >= 2**24:  # a 48-bit product: its low 24 bits are exactly 2^23
            cases.append((a * 2.0**-22, b * 2.0**-31, float(np.float32(10.0 ** rng.uniform(-4, 1)))))
            ties += 1
    bad = []
    for scales in cases:
        ok = _mult(lib, 1)(*(_f32_bits(s) for s in scales), ctypes.byref(m), ctypes.byref(shift))
        if not ok or (m.value, shift.value) != reference_mult_fc(*scales):
            bad.append((scales, (m.value, shift.value), reference_mult_fc(*scales)))
    assert not bad, bad[:3]


def test_activation_ranges_match_float_division(lib):
    """relu6 and relu_n1_to_1 bounds: zero point + TfLiteRound(6 / scale) or (1 / scale), the
    quotient in float (TFLite's CalculateActivationRangeQuantized)."""
    lo, hi = ctypes.c_int32(), ctypes.c_int32()
    lib.tpr_act_range.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_int32,
                                  ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int32)]
    rng = np.random.default_rng(6)
    bad = []
    for _ in range(5000):
        scale = np.float32(10.0 ** rng.uniform(-3, 0.5))
        zp = int(rng.integers(-128, 128))
        for act, limit in ((3, 6.0), (2, 1.0)):
            q = float(np.float32(limit) / scale)  # float32 division, rounded to nearest even
            v = math.floor(q + 0.5)  # TfLiteRound: half away from zero (q > 0)
            exp_lo = max(zp - (v if act == 2 else 0), -128)
            exp_hi = min(zp + v, 127)
            exp_lo, exp_hi = min(exp_lo, 127), max(exp_hi, -128)
            ok = lib.tpr_act_range(act, _f32_bits(float(scale)), zp, ctypes.byref(lo), ctypes.byref(hi))
            if not ok or (lo.value, hi.value) != (exp_lo, exp_hi):
                bad.append((act, float(scale), zp, (lo.value, hi.value), (exp_lo, exp_hi)))
    assert not bad, bad[:3]


def test_activation_ranges_at_int32_extremes(lib):
    """Every activation with quotients of any size (scales down to 2^-32, where 6 / scale no
    longer fits an int32 and the range is refused) around any int32 zero point: zero point -/+
    quotient without overflow, then clamped to int8."""
    lo, hi = ctypes.c_int32(), ctypes.c_int32()
    lib.tpr_act_range.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_int32,
                                  ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int32)]
    rng = np.random.default_rng(7)
    zps = [I32_MIN, I32_MIN + 1, -(2**30), -1000, -129, -128, 0, 127, 128, 1000, 2**30, I32_MAX]
    bad = []
    for _ in range(400):
        scale = np.float32(2.0 ** rng.uniform(-32, 8))
        for zp in zps + [int(rng.integers(I32_MIN, I32_MAX, endpoint=True))]:
            for act, limit in ((0, 0.0), (1, 0.0), (3, 6.0), (2, 1.0)):
                v = math.floor(float(np.float32(limit) / scale) + 0.5) if act >= 2 else 0
                exp_ok = v < 2**31
                exp_lo = -128 if act == 0 else min(max(zp - (v if act == 2 else 0), -128), 127)
                exp_hi = 127 if act < 2 else min(max(zp + v, -128), 127)
                ok = lib.tpr_act_range(act, _f32_bits(float(scale)), zp, ctypes.byref(lo), ctypes.byref(hi))
                if bool(ok) != exp_ok or (ok and (lo.value, hi.value) != (exp_lo, exp_hi)):
                    bad.append((act, float(scale), zp, ok, (lo.value, hi.value), (exp_lo, exp_hi)))
    assert not bad, bad[:3]


class _Real(ctypes.Structure):
    """tpr_real_t: value m * 2^e."""

    _fields_ = [("m", ctypes.c_uint64), ("e", ctypes.c_int32)]


def _rounded_quotient(n: int, d: int, bits: int) -> Fraction:
    """n / d rounded to `bits` significant bits, nearest-even, exactly."""
    q = Fraction(n, d)
    k = q.numerator.bit_length() - q.denominator.bit_length()
    while q / Fraction(2) ** k >= 2**bits:
        k += 1
    while q / Fraction(2) ** k < 2 ** (bits - 1):
        k -= 1
    scaled = q / Fraction(2) ** k
    m = math.floor(scaled)
    rest = scaled - m
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and m % 2 == 1):
        m += 1
    return Fraction(m) * Fraction(2) ** k


def test_quotients_are_exact_at_their_last_bit(lib):
    """tpr_real_div (the division under every multiplier: by the divisor's reciprocal at -O2):
    random operands, divisors that are powers of two, and exact quotients of 25 bits ending in 1,
    where only an exact remainder (the sticky bit) makes the 24-bit rounding go to even."""
    lib.tpr_real_div.argtypes = [_Real, _Real, ctypes.c_int]
    lib.tpr_real_div.restype = _Real
    rng = np.random.default_rng(11)
    cases = []
    for _ in range(3000):
        n = int(rng.integers(1, 2**48, dtype=np.uint64)) >> int(rng.integers(0, 40))
        d = int(rng.integers(1, 2**24)) >> int(rng.integers(0, 20))
        cases.append((max(n, 1), max(d, 1), int(rng.choice([24, 53]))))
    cases += [(int(rng.integers(2**40, 2**48, dtype=np.uint64)), 1 << int(rng.integers(0, 24)), 53)
              for _ in range(200)]
    ties = 0
    while ties < 500:
        d = int(rng.integers(2**22, 2**24)) | 1
        k = int(rng.integers(2**24, 2**25)) | 1  # 25 bits, the last one set: a tie at 24 bits
        if d * k < 2**48:
            cases.append((d * k, d, 24))
            ties += 1
    bad = []
    for n, d, bits in cases:
        got = lib.tpr_real_div(_Real(n, -7), _Real(d, 3), bits)
        value = Fraction(got.m) * Fraction(2) ** got.e
        expected = _rounded_quotient(n, d, bits) * Fraction(2) ** -10
        if value != expected:
            bad.append((n, d, bits, value, expected))
    assert not bad, bad[:3]
