/* TFLite's rounding arithmetic and gemmlowp's fixed-point functions, one implementation each.
 * See tpr_fixedpoint.h for the contract; comments name the TFLite/gemmlowp function mirrored. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_fixedpoint.h"

#define I32_MIN (-2147483647 - 1)
#define I32_MAX 2147483647

int32_t tpr_add_w(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static int32_t sub_w(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* SaturatingRoundingDoublingHighMul<int32_t> */
int32_t tpr_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    if (a == b && a == I32_MIN) {
        return I32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    /* gemmlowp: (ab + nudge) / 2^31 truncated, nudge = 2^30 for ab >= 0 and 1 - 2^30 below.
     * For ab < 0, trunc((ab + 1 - 2^30) / 2^31) = -floor((-ab + 2^30 - 1) / 2^31)
     * = floor((ab + 2^30) / 2^31), so one arithmetic shift gives the same result for every
     * product, without the 64-bit division (a library call on Cortex-M). */
    return (int32_t)((ab + ((int64_t)1 << 30)) >> 31);
}

/* RoundingDivideByPOT<int32_t> */
int32_t tpr_rdbpot(int32_t x, int e)
{
    int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u);
    int32_t rem = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (rem > threshold ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier(int32_t x, int32_t quantized_multiplier, int shift) for the
 * multipliers QuantizeMultiplier gives, 0 <= m < 2^31 (every one the runtime makes, and
 * tpr_mbqm_pos's contract) */
int32_t tpr_mbqm(int32_t x, int32_t m, int shift)
{
#if TPR_SINGLE_ROUNDING
    return tpr_mbqm_pos(x, m, shift);
#else
    const int left = shift > 0 ? shift : 0;
    if (TPR_LIKELY(shift <= -2)) { /* tpr_mbqm_pos's straight path */
        return tpr_mbqm_r(x, m, (int32_t)1 << (-shift - 2), -shift - 1);
    }
    /* SRDHM cannot saturate (m >= 0); RoundingDivideByPOT by 0 is the identity */
    return tpr_rdbpot(tpr_srdhm((int32_t)((uint32_t)x << left), m), left - shift);
#endif
}

/* SaturatingRoundingMultiplyByPOT<k> for k >= 1 (every caller's) */
#if defined(__GNUC__)
__attribute__((noinline)) /* one copy for its four callers */
#endif
static int32_t sat_shl(int32_t x, int k)
{
    int32_t threshold;
    threshold = (int32_t)(((uint32_t)1 << (31 - k)) - 1u);
    if (x > threshold) {
        return I32_MAX;
    }
    if (x < -threshold) {
        return I32_MIN;
    }
    return (int32_t)((uint32_t)x << k);
}

/* SaturatingRoundingDoublingHighMul<int16_t>: one shift for both signs, as in tpr_srdhm */
int16_t tpr_srdhm16(int16_t a, int16_t b)
{
    if (a == b && a == -32768) {
        return 32767;
    }
    return (int16_t)(((int32_t)a * (int32_t)b + (1 << 14)) >> 15);
}

/* RoundingDivideByPOT<int16_t>: the mask is narrowed to 16 bits as gemmlowp's Dup<int16_t> does */
int16_t tpr_rdbpot16(int16_t x, int e)
{
    int16_t mask = (int16_t)(uint16_t)(((uint32_t)1 << e) - 1u);
    int16_t rem = (int16_t)(x & mask);
    int16_t threshold = (int16_t)((mask >> 1) + (x < 0 ? 1 : 0));
    return (int16_t)((x >> e) + (rem > threshold ? 1 : 0));
}

/* exp_on_interval_between_negative_one_quarter_and_0_excl (Q0.31) */
static int32_t exp_quarter(int32_t a)
{
    const int32_t constant_term = 1895147668; /* exp(-1/8) */
    const int32_t one_third = 715827883;
    int32_t x = tpr_add_w(a, 1 << 28);
    int32_t x2 = tpr_srdhm(x, x);
    int32_t x3 = tpr_srdhm(x2, x);
    int32_t x4 = tpr_srdhm(x2, x2);
    int32_t x4_over_4 = tpr_rdbpot(x4, 2);
    int32_t poly = tpr_rdbpot(tpr_add_w(tpr_srdhm(tpr_add_w(x4_over_4, x3), one_third), x2), 1);
    return tpr_add_w(constant_term, tpr_srdhm(constant_term, tpr_add_w(x, poly)));
}

/* exp_on_negative_values<int32_t, int_bits> for int_bits 4 and 5. Its barrel shifter multiplies
 * by exp(-2^k) for the bits k = -2..4 of the remainder (bit 4 only if int_bits > 4: for 4 it is
 * bit 31 of the remainder, below 2^31, so never set), and the clamp to 0 applies above 5. */
int32_t tpr_exp_on_negative_values(int32_t a, int int_bits)
{
    static const int32_t mult[7] = {1672461947, 1302514674, 790015084, 290630308,
                                    39332535,   720401,     242};
    const int frac = 31 - int_bits;
    const int32_t quarter = (int32_t)1 << (frac - 2);
    int32_t a_mod = sub_w(a & (quarter - 1), quarter);
    int32_t result = exp_quarter(sat_shl(a_mod, int_bits));
    uint32_t remainder = (uint32_t)sub_w(a_mod, a) >> (frac - 2);
    int j;
    for (j = 0; j < 7; ++j, remainder >>= 1) {
        if (remainder & 1u) {
            result = tpr_srdhm(result, mult[j]);
        }
    }
    return a == 0 ? I32_MAX : result;
}

/* one_over_one_plus_x_for_x_in_0_1's Newton-Raphson loop on the half denominator (1 + a) / 2
 * (gemmlowp's RoundingHalfSum(a, One())), shared with one_minus_x_over_one_plus_x: 1 / (1 + a)
 * in Q2.29, then minus sub and times 2^k, saturated. The half sum's 64-bit
 * (a + 2^31 - 1 + sign) / 2 is (a + 2^31) / 2 for a >= 0; -1 for a = INT32_MIN (sum -1). */
int32_t tpr_one_over_one_plus_x(int32_t a, int32_t sub, int k)
{
    int32_t half_den = (int32_t)(((uint32_t)a + 0x80000000u) >> 1) - (a == I32_MIN);
    int32_t x = tpr_add_w(1515870810, tpr_srdhm(half_den, -1010580540)); /* 48/17 - 32/17 d */
    int i;
    for (i = 0; i < 3; ++i) {
        int32_t one_minus = sub_w(1 << 29, tpr_srdhm(half_den, x));
        x = tpr_add_w(x, sat_shl(tpr_srdhm(x, one_minus), 2));
    }
    return sat_shl(sub_w(x, sub), k);
}

/* logistic<int32_t, 4> (tanh 0) and tanh<int32_t, 4> (tanh 1), whose
 * neg_tanh_on_negative_values takes exp_on_negative_values on Q5: both are 1 / (1 + exp(-|a|))
 * (of 2|a| for tanh), rescaled to Q0.31 (minus 1/2 for tanh, doubled), then mirrored for the sign
 * of a. */
int32_t tpr_sigmoid_q4(int32_t a, int tanh)
{
    int32_t r;
    if (a == 0) {
        return tanh ? 0 : 1 << 30;
    }
    r = tpr_one_over_one_plus_x(tpr_exp_on_negative_values(a < 0 ? a : sub_w(0, a), 4 + tanh),
                                tanh << 29, 1 + tanh);
    if (tanh) {
        return a < 0 ? sub_w(0, r) : r;
    }
    return a > 0 ? r : sub_w(I32_MAX, r);
}
