/* LOGISTIC and TANH, int8: TFLite Micro's reference_integer_ops::Logistic and Tanh, one loop. The
 * input is rescaled to Q4.27 and gemmlowp's logistic or tanh gives Q0.31 (tpr_sigmoid_q4), rounded
 * to 1/256 with zero point -128 (LOGISTIC: logistic_common.cc fixes the output zero point; the
 * scale is taken to be 1/256) or to 1/128 with no output zero point applied (TANH, like TFLite
 * Micro). */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_LOGISTIC || TPR_OP_TANH

tpr_status_t tpr_logistic_tanh(tpr_ctx_t *c, int tanh)
{
    tpr_tensor_t in, out;
    tpr_status_t st;
    tpr_real_t s;
    int32_t mult, radius;
    int shift;
    uint32_t i;
    if ((st = tpr_io(c, &in, 0, &out, TPR_IO_INQ | TPR_IO_OUT8 | TPR_IO_SAME)) != TPR_OK) {
        return st;
    }
    /* input_scale * 2^27 as a multiplier, and the input radius beyond which the output
     * saturates (CalculateInputRadius(4, shift, 31)) */
    if (!tpr_real_f32(in.scale, &s)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, in.index, "scale not positive and finite");
    }
    tpr_quantize_multiplier(s.m, s.e + 27, &mult, &shift);
    if (shift < 0 || shift > 31) {
        return TPR_FAIL(c, TPR_ERR_QUANT, in.index, "input scale out of the supported range");
    }
    radius = (int32_t)((15LL << 27) >> shift);
    if (!tanh && out.zp != -128) {
        return TPR_FAIL(c, TPR_ERR_QUANT, out.index, "output zero point must be -128");
    }
    if (!c->eval) {
        return TPR_OK;
    }
    for (i = 0; i < in.count; ++i) {
        int32_t x = ((const int8_t *)in.data)[i] - in.zp, v = 127;
        if (x <= -radius) {
            v = -128;
        } else if (x < radius) {
            v = tpr_rdbpot(tpr_sigmoid_q4(tpr_mbqm(x, mult, shift), tanh), 23 + tanh) - 128 + 128 * tanh;
        }
        ((int8_t *)out.data)[i] = tpr_sat8(v);
    }
    return TPR_OK;
}

#endif

#if TPR_OP_LOGISTIC

tpr_status_t tpr_k_logistic(tpr_ctx_t *c)
{
    return tpr_logistic_tanh(c, 0);
}

#endif
