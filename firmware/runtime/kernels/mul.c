/* MUL, int8 with broadcasting: TFLite Micro's reference_integer_ops::MulElementwise, multiplier
 * input1_scale * input2_scale / output_scale (mul_common.cc). */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_MUL

enum { ACTIVATION = 0 };

tpr_status_t tpr_k_mul(tpr_ctx_t *c)
{
    tpr_tensor_t a, b, out;
    tpr_bcast_t bc;
    tpr_status_t st;
    int32_t lo, hi;
    tpr_mq_t q;
    tpr_mult_layer_t ml; /* a's scale x b's / the output's, as a convolution's */
    uint32_t i;
    int flat;

    if ((st = tpr_io(c, &a, &b, &out, TPR_IO_INQ | TPR_IO_IN1Q | TPR_IO_OUTQ)) ||
        (st = tpr_bcast_init(c, &a, &b, &out, &bc)) ||
        (st = tpr_activation(c, tpr_opt(c, ACTIVATION, 1, 0), &out, &lo, &hi))) {
        return st;
    }
    if (!tpr_mult_layer(a.scale, out.scale, 0, &ml) || !tpr_mult_channel(&ml, b.scale, &q.m, &q.shift)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, out.index, "scale not positive and finite, or scale ratio too large");
    }
    if (!c->eval) {
        return TPR_OK;
    }
#if !TPR_SMALL
    tpr_mq_prepare(&q); /* for tpr_rescale */
#endif
    flat = a.count == out.count && b.count == out.count;
    for (i = 0; i < out.count; ++i) {
        int32_t x = ((const int8_t *)a.data)[bc.o1] - a.zp;
        int32_t y = ((const int8_t *)b.data)[bc.o2] - b.zp;
        ((int8_t *)out.data)[i] = tpr_clamp8(tpr_rescale(x * y, &q) + out.zp, lo, hi);
        if (flat) { /* same shapes: no broadcasting */
            ++bc.o1;
            ++bc.o2;
        } else {
            tpr_bcast_next(&bc);
        }
    }
    return TPR_OK;
}

#endif
