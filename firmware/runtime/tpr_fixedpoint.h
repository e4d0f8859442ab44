/* The one home for TFLite's integer arithmetic: rounding multiplies and shifts, the gemmlowp
 * fixed-point functions (exp, 1/(1+x), logistic, tanh), and the conversion of float scales into
 * integer multipliers without using floating point.
 *
 * Everything here reproduces TFLite/TFLite Micro bit for bit: kernels/internal/common.{h,cc},
 * quantization_util.cc and gemmlowp's fixedpoint.h. Signed right shifts are arithmetic (as in
 * GCC and every Arm compiler); products that TFLite lets wrap are computed in unsigned
 * arithmetic so that they wrap the same way without undefined behaviour. */
#ifndef TPR_FIXEDPOINT_H
#define TPR_FIXEDPOINT_H

#include <stdint.h>

#include "tpr_config.h"

/* A branch the compiler should lay out as the straight path (GCC and Clang; a no-op elsewhere). */
#if defined(__GNUC__)
#define TPR_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define TPR_LIKELY(x) (x)
#endif

/* gemmlowp SaturatingRoundingDoublingHighMul (ARM VQRDMULH). */
int32_t tpr_srdhm(int32_t a, int32_t b);
/* gemmlowp RoundingDivideByPOT: x / 2^e rounded to nearest, ties away from zero; 0 <= e <= 31. */
int32_t tpr_rdbpot(int32_t x, int e);
/* TFLite MultiplyByQuantizedMultiplier: x * m * 2^(shift-31), rounding as TPR_SINGLE_ROUNDING. */
int32_t tpr_mbqm(int32_t x, int32_t m, int shift);

/* tpr_mbqm inline, for the kernels' per-output requantization, exact for 0 <= m < 2^31 (every
 * multiplier tpr_quantize_multiplier gives). Double rounding is v = SRDHM(x, m) =
 * floor((x m + 2^30) / 2^31) (it cannot saturate: that needs both operands INT32_MIN), then
 * RoundingDivideByPOT(v, r) = floor((v - [v < 0] + 2^(r-1)) / 2^r), ties away from zero.
 *
 * For r >= 2 (shift <= -2, nearly every layer) the two floors compose into one:
 * floor((x m + 2^30 + 2^(30+r) - [v < 0] 2^31) / 2^(31+r)), the high word of one 64-bit
 * multiply-accumulate shifted by r - 1. [v < 0] may be replaced by [x < 0]: they differ only when
 * v == 0, where subtracting 1 before the division by 2^r (r >= 1) changes nothing. The addend's
 * high word is then x >> 31 plus 2^(r-2), its low word 2^30 with x's sign bit: about 7
 * instructions on Cortex-M3 and later (SMLAL), instead of a call. */
#if defined(__GNUC__)
__attribute__((always_inline)) /* seven instructions: -Os would call it */
#endif
static inline int32_t tpr_mbqm_r(int32_t x, int32_t m, int32_t rnd, int rsh)
{ /* the straight path, shift <= -2: rnd = 2^(-shift-2), rsh = -shift-1 */
    const uint32_t lo = ((uint32_t)x & 0x80000000u) | 0x40000000u;
    const int32_t hi = (x >> 31) + rnd;
    const int64_t sum = (int64_t)(((uint64_t)(uint32_t)hi << 32) | lo) + (int64_t)x * (int64_t)m;
    return (int32_t)(sum >> 32) >> rsh;
}

static inline int32_t tpr_mbqm_pos(int32_t x, int32_t m, int shift)
{
#if TPR_SINGLE_ROUNDING
    const int total = 31 - shift;
    return (int32_t)(((int64_t)x * (int64_t)m + ((int64_t)1 << (total - 1))) >> total);
#else
    int32_t v, t;
    if (TPR_LIKELY(shift <= -2)) { /* nearly every layer */
        return tpr_mbqm_r(x, m, (int32_t)1 << (-shift - 2), -shift - 1);
    }
    if (shift > 0) {
        x = (int32_t)((uint32_t)x << shift);
    }
    v = (int32_t)(((int64_t)x * (int64_t)m + ((int64_t)1 << 30)) >> 31);
    if (shift >= 0) {
        return v;
    }
    t = v + (v >> 31); /* shift == -1: v / 2 rounded half away from zero (v > INT32_MIN) */
    return (t >> 1) + (t & 1);
#endif
}

/* A multiplier prepared for requantizing many values (the kernels: once per output channel and
 * invoke): tpr_mbqm_r's operands, rsh == 0 for shifts above -2. The same layout at every
 * optimization level: files built with different ones share it. */
typedef struct {
    int32_t m;
    int shift;
    int32_t rnd;
    int rsh;
} tpr_mq_t;

/* Fills in rnd and rsh once m and shift are set. */
static inline void tpr_mq_prepare(tpr_mq_t *q)
{
    const int r = -q->shift - 1; /* positive for shifts of -2 and below */
    q->rsh = r > 0 ? r : 0;
    q->rnd = r > 0 ? (int32_t)1 << (r - 1) : 0;
}

/* tpr_mbqm(x, q->m, q->shift) */
static inline int32_t tpr_mbqm_q(int32_t x, const tpr_mq_t *q)
{
#if TPR_SMALL /* one shared copy of the arithmetic */
    return tpr_mbqm(x, q->m, q->shift);
#elif TPR_SINGLE_ROUNDING
    return tpr_mbqm_pos(x, q->m, q->shift);
#else
    if (TPR_LIKELY(q->rsh != 0)) {
        return tpr_mbqm_r(x, q->m, q->rnd, q->rsh);
    }
    return tpr_mbqm(x, q->m, q->shift); /* rare: one shared copy */
#endif
}

/* Wrapping int32 addition (TFLite's plain adds, without C's undefined overflow). */
int32_t tpr_add_w(int32_t a, int32_t b);

/* 16-bit variants used by HARD_SWISH. */
int16_t tpr_srdhm16(int16_t a, int16_t b);
int16_t tpr_rdbpot16(int16_t x, int e);

/* gemmlowp fixed point functions on raw int32 values (Q<int_bits>.<31-int_bits>). */
int32_t tpr_exp_on_negative_values(int32_t a, int int_bits); /* int_bits 4 or 5; result Q0.31 */
/* one_over_one_plus_x_for_x_in_0_1 (sub 0, k 1; a and result Q0.31), and the tails of
 * logistic and tanh: 1 / (1 + a) in Q2.29, minus sub, times 2^k saturated (k >= 1) */
int32_t tpr_one_over_one_plus_x(int32_t a, int32_t sub, int k);
int32_t tpr_sigmoid_q4(int32_t a, int tanh); /* logistic (tanh 0) or tanh (1): Q4.27 -> Q0.31 */

/* ---- float scales to integer multipliers, without floating point (tpr_quant.c) ---------------
 * TFLite computes multipliers in double precision from float32 scales; these functions redo that
 * arithmetic exactly with integers: products of two floats are exact in double, quotients are
 * rounded to nearest-even at 53 bits (or 24 where TFLite divides in float), and
 * QuantizeMultiplier's frexp/round is applied to the result. */
typedef struct {
    uint64_t m; /* value = m * 2^e, m == 0 for zero */
    int32_t e;
} tpr_real_t;

/* Decode a positive, finite float32; returns 0 for zero/negative/inf/nan. */
int tpr_real_f32(uint32_t bits, tpr_real_t *r);
/* n/d rounded to `bits` (at most 53) significant bits, nearest-even; n at most 48 significant
 * bits, d at most 24 (else m = 0) */
void tpr_real_div_to(const tpr_real_t *n, const tpr_real_t *d, int bits, tpr_real_t *q);
tpr_real_t tpr_real_div(tpr_real_t n, tpr_real_t d, int bits); /* the same, by value */
int tpr_real_cmp(tpr_real_t a, tpr_real_t b);
/* TFLite QuantizeMultiplier(double) of q * 2^e, q a double's mantissa (at most 53 bits) or the
 * floor of a quotient below 2^57 (tpr_quant.c): *m in [2^30, 2^31), value *m * 2^(*shift - 31);
 * 0, 0 for q == 0. Returns 0 for a left shift above 31. */
int tpr_quantize_multiplier(uint64_t q, int32_t e, int32_t *m, int *shift);
/* QuantizeMultiplier(n / d) with the quotient in double (tpr_real_div's operand limits). */
int tpr_ratio_mult(const tpr_real_t *n, const tpr_real_t *d, int32_t *m, int *shift);
/* The same for n and d given as lvalues (ADD's form; a function taking them by value would copy
 * them twice). */
#define tpr_quantize_ratio(n, d, m, shift) ((void)tpr_ratio_mult(&(n), &(d), (m), (shift)))

/* A divisor prepared once for many divisions by it (the output scale of a layer, tpr_quant.c). */
typedef struct {
    uint64_t r;  /* floor((2^87 - 1) / dd): floor(2^87 / dd) but 2^64 - 1 for dd = 2^23 */
    uint32_t dd; /* the divisor normalised into [2^23, 2^24) */
    int32_t e;   /* divisor = dd * 2^e */
} tpr_div_t;

/* The multipliers of conv/FC output channels: tpr_mult_layer once per layer and invoke (the
 * input and output scales), then tpr_mult_channel per output channel (its filter scale) gives
 * QuantizeMultiplier(input_scale * filter_scale / output_scale) with the scales in double: the
 * product exact (fc == 0: conv, depthwise, per-channel FULLY_CONNECTED) or rounded to a float
 * first (fc == 1: per-tensor FULLY_CONNECTED). One layout on every core and at every -O level:
 * the fields unused by the path compiled stay zero (at -Os only the float32 bits are kept). */
typedef struct {
    tpr_real_t in;       /* input scale (integer path) */
    tpr_div_t out;       /* output scale as a divisor (integer path) */
    uint32_t in_bits;    /* the float32 scales (double-precision FPU path, -Os) */
    uint32_t out_bits;
    uint8_t ok;          /* both scales positive and finite */
    uint8_t fc;
} tpr_mult_layer_t;
/* The tpr_mult_* functions return 0 for a scale that is not positive and finite, or a multiplier
 * needing a left shift above 31. */
int tpr_mult_layer(uint32_t in_s, uint32_t out_s, int fc, tpr_mult_layer_t *l);
int tpr_mult_channel(const tpr_mult_layer_t *l, uint32_t filt_s, int32_t *m, int *shift);
/* a / b in double: requantize, MEAN. */
int tpr_mult_ratio(uint32_t a_s, uint32_t b_s, int32_t *m, int *shift);

/* CalculateActivationRangeQuantized for int8: act is the TFLite fused activation
 * (0 none, 1 relu, 2 relu_n1_to_1, 3 relu6). Returns 0 on unsupported activation/overflow. */
int tpr_act_range(uint32_t act, uint32_t out_scale, int32_t zp, int32_t *lo, int32_t *hi);

#endif
