/* TANH, int8: TFLite Micro's reference_integer_ops::Tanh. Input rescaled to Q4.27, gemmlowp's tanh
 * gives Q0.31, rounded to 1/128; like TFLite Micro, no output zero point is applied. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_TANH

tpr_status_t tpr_k_tanh(tpr_ctx_t *c)
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
            v = tpr_rdbpot(tpr_tanh_q4(tpr_mbqm(x, mult, shift)), 24);
        }
        ((int8_t *)out.data)[i] = tpr_clamp8(v, -128, 127);
    }
    return TPR_OK;
}

#endif
