/* SOFTMAX, int8 in and out: TFLite's reference_ops::Softmax with gemmlowp fixed point
 * (differences scaled to Q5.26, exp_on_negative_values, sum in Q12.19, reciprocal by
 * Newton-Raphson), and the parameters of softmax_common.cc / PreprocessSoftmaxScaling. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_SOFTMAX

enum { BETA = 0 };

/* exp(beta * input_scale * diff) in Q0.31, or 0 below diff_min: where the reference skips a
 * difference, adding 0 to the sum and a product of 0 give what it gives (-128 out) */
static int32_t softmax_exp(int32_t diff, int32_t diff_min, int32_t mult, int shift)
{
    return diff < diff_min ? 0 : tpr_exp_on_negative_values(tpr_mbqm(diff, mult, shift), 5);
}

tpr_status_t tpr_k_softmax(tpr_ctx_t *c)
{
    tpr_tensor_t in, out;
    tpr_status_t st;
    tpr_real_t beta, p;
    int32_t mult, diff_min, depth, i;
    int shift;
    const int8_t *x;
    int8_t *y;

    if ((st = tpr_io(c, &in, 0, &out,
                     TPR_IO_INQ | TPR_IO_OUTQ | TPR_IO_RANK(TPR_MAX_DIMS) | TPR_IO_SAME)) != TPR_OK) {
        return st;
    }
    if (out.zp != -128 || out.scale != 0x3B800000u) {
        return TPR_FAIL(c, TPR_ERR_QUANT, out.index, "output must have scale 1/256, zero point -128");
    }
    if (!tpr_real_f32(tpr_opt(c, BETA, 4, 0), &beta) || !tpr_real_f32(in.scale, &p)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, in.index, "beta and input scale must be positive");
    }
    /* min(beta * input_scale * 2^(31 - 5), cap) (the product exact), then
     * QuantizeMultiplierGreaterThanOne */
    p.m = (uint64_t)(uint32_t)p.m * (uint32_t)beta.m;
    p.e += beta.e + 26;
#if TPR_SINGLE_ROUNDING
    {
        tpr_real_t cap = {0x3FFFFFFFu, 0};
        if (tpr_real_cmp(p, cap) > 0) {
            p = cap;
        }
    }
    tpr_quantize_multiplier(p.m, p.e, &mult, &shift);
#else
    tpr_quantize_multiplier(p.m, p.e, &mult, &shift);
    if (shift > 31) { /* p >= 2^31 - 1/2: the cap 2^31 - 1 gives these */
        mult = 0x7FFFFFFF;
        shift = 31;
    }
#endif
    if (shift < 1 || (shift == 1 && (p.m & (p.m - 1u)) == 0)) { /* needs p > 1 */
        return TPR_FAIL(c, TPR_ERR_QUANT, in.index, "beta * input scale too small (needs > 2^-26)");
    }
    diff_min = -(int32_t)((int64_t)(31LL << 26) >> shift); /* -CalculateInputRadius(5, shift, 31) */
    if (!c->eval) {
        return TPR_OK;
    }
    depth = in.dims[in.ndims - 1];
    y = (int8_t *)out.data;
    for (x = (const int8_t *)in.data; x < (const int8_t *)in.data + in.count; x += depth, y += depth) {
        int32_t mx = -128, sum = 0, headroom, recip, exponent;
        uint32_t u;
        for (i = 0; i < depth; ++i) {
            mx = x[i] > mx ? x[i] : mx;
        }
        for (i = 0; i < depth; ++i) {
            const int32_t e = softmax_exp(x[i] - mx, diff_min, mult, shift);
            sum = tpr_add_w(sum, tpr_rdbpot(e, 12)); /* Rescale<12> */
        }
        /* GetReciprocal(sum, 12): the sum shifted left by its leading zeros, 32 of them (and 0
         * left) when it wrapped to 0, as TFLite's CountLeadingZeros and x86's shift give */
        for (headroom = 0, u = (uint32_t)sum; headroom < 32 && !(u & 0x80000000u); ++headroom) {
            u <<= 1;
        }
        exponent = 12 - headroom + 31 - 8; /* the sum's exponent, at most 35 */
        if (exponent > 31) {
            return TPR_FAIL(c, TPR_ERR_EVAL, out.index, "softmax sum out of range");
        }
        recip = tpr_one_over_one_plus_x((int32_t)(u - 0x80000000u), 0, 1);
        for (i = 0; i < depth; ++i) {
            const int32_t e = softmax_exp(x[i] - mx, diff_min, mult, shift);
            y[i] = tpr_sat8(tpr_rdbpot(tpr_srdhm(recip, e), exponent) - 128);
        }
    }
    return TPR_OK;
}

#endif
