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

/* gemmlowp SaturatingRoundingDoublingHighMul (ARM VQRDMULH). */
int32_t tpr_srdhm(int32_t a, int32_t b);
/* gemmlowp RoundingDivideByPOT: x / 2^e rounded to nearest, ties away from zero; 0 <= e <= 31. */
int32_t tpr_rdbpot(int32_t x, int e);
/* TFLite MultiplyByQuantizedMultiplier: x * m * 2^(shift-31), rounding as TPR_SINGLE_ROUNDING. */
int32_t tpr_mbqm(int32_t x, int32_t m, int shift);
/* gemmlowp SaturatingRoundingMultiplyByPOT<+k>: x * 2^k saturated to int32; 0 <= k <= 31. */
int32_t tpr_sat_shl(int32_t x, int k);
/* Wrapping int32 addition (TFLite's plain adds, without C's undefined overflow). */
int32_t tpr_add_w(int32_t a, int32_t b);

/* 16-bit variants used by HARD_SWISH. */
int16_t tpr_srdhm16(int16_t a, int16_t b);
int16_t tpr_rdbpot16(int16_t x, int e);

/* gemmlowp fixed point functions on raw int32 values (Q<int_bits>.<31-int_bits>). */
int32_t tpr_exp_on_negative_values(int32_t a, int int_bits); /* result Q0.31 */
int32_t tpr_one_over_one_plus_x(int32_t a);                  /* a, result Q0.31 */
int32_t tpr_logistic_q4(int32_t a);                          /* Q4.27 -> Q0.31 */
int32_t tpr_tanh_q4(int32_t a);                              /* Q4.27 -> Q0.31 */

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
tpr_real_t tpr_real_mul(tpr_real_t a, tpr_real_t b); /* exact: mantissas below 2^32 */
tpr_real_t tpr_real_round(tpr_real_t x, int bits);   /* nearest-even to `bits` significant bits */
/* n/d rounded to `bits`; n at most 48 significant bits, d at most 24 (else returns zero) */
tpr_real_t tpr_real_div(tpr_real_t n, tpr_real_t d, int bits);
int tpr_real_cmp(tpr_real_t a, tpr_real_t b);
/* TFLite QuantizeMultiplier(double): m in [2^30, 2^31), value = m * 2^(shift-31). */
void tpr_quantize_multiplier(tpr_real_t x, int32_t *m, int *shift);

/* The tpr_mult_* functions return 0 for a scale that is not positive and finite, or a multiplier
 * needing a left shift above 31. */
/* input_scale * filter_scale / output_scale (all in double), as conv/depthwise/per-channel FC. */
int tpr_mult_conv(uint32_t in_s, uint32_t filt_s, uint32_t out_s, int32_t *m, int *shift);
/* (double)(float)(input_scale * filter_scale) / output_scale, as per-tensor FULLY_CONNECTED. */
int tpr_mult_fc(uint32_t in_s, uint32_t filt_s, uint32_t out_s, int32_t *m, int *shift);
/* a / b in double: requantize, MEAN. */
int tpr_mult_ratio(uint32_t a_s, uint32_t b_s, int32_t *m, int *shift);

/* CalculateActivationRangeQuantized for int8: act is the TFLite fused activation
 * (0 none, 1 relu, 2 relu_n1_to_1, 3 relu6). Returns 0 on unsupported activation/overflow. */
int tpr_act_range(uint32_t act, uint32_t out_scale, int32_t zp, int32_t *lo, int32_t *hi);

#endif
