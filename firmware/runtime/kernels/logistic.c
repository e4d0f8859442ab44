/* LOGISTIC, int8: TFLite Micro's reference_integer_ops::Logistic. The input is rescaled to Q4.27,
 * gemmlowp's logistic gives Q0.31, and the result is rounded to 1/256 with zero point -128
 * (logistic_common.cc fixes the output zero point; the scale is taken to be 1/256). */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_LOGISTIC || TPR_OP_TANH

/* input_scale * 2^27 as a multiplier, and the input radius beyond which the output saturates
 * (CalculateInputRadius(4, shift, 31)). */
tpr_status_t tpr_q4_params(tpr_ctx_t *c, const tpr_tensor_t *in, int32_t *mult, int *shift,
                           int32_t *radius)
{
    tpr_real_t s;
    if (!tpr_real_f32(in->scale, &s)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, in->index, "scale not positive and finite");
    }
    s.e += 27;
    tpr_quantize_multiplier(s, mult, shift);
    if (*shift < 0 || *shift > 31) {
        return TPR_FAIL(c, TPR_ERR_QUANT, in->index, "input scale out of the supported range");
    }
    *radius = (int32_t)((15LL << 27) >> *shift);
    return TPR_OK;
}

#endif

#if TPR_OP_LOGISTIC

tpr_status_t tpr_k_logistic(tpr_ctx_t *c)
{
    tpr_tensor_t in, out;
    tpr_status_t st;
    int32_t mult, radius;
    int shift;
    uint32_t i;
    if ((st = tpr_in(c, 0, &in)) || (st = tpr_out(c, 0, &out)) || (st = tpr_check_int8(c, &in, 1)) ||
        (st = tpr_check_int8(c, &out, 0)) || (st = tpr_check_same_count(c, &in, &out)) ||
        (st = tpr_q4_params(c, &in, &mult, &shift, &radius))) {
        return st;
    }
    if (out.zp != -128) {
        return TPR_FAIL(c, TPR_ERR_QUANT, out.index, "output zero point must be -128");
    }
    if (!c->eval) {
        return TPR_OK;
    }
    for (i = 0; i < in.count; ++i) {
        int32_t x = ((const int8_t *)in.data)[i] - in.zp, v;
        if (x <= -radius) {
            v = -128;
        } else if (x >= radius) {
            v = 127;
        } else {
            v = tpr_rdbpot(tpr_logistic_q4(tpr_mbqm(x, mult, shift)), 23) - 128;
        }
        ((int8_t *)out.data)[i] = tpr_clamp8(v, -128, 127);
    }
    return TPR_OK;
}

#endif
