/* DEPTHWISE_CONV_2D, int8 with per-channel weights: TFLite Micro's
 * reference_integer_ops::DepthwiseConvPerChannel.
 * input [N,H,W,C], filter [1,KH,KW,C*M], bias [C*M] int32, output [N,OH,OW,C*M].
 * The loops (tpr_conv_run) are shared with CONV_2D: one input channel per output channel. */
#include "tpr_kernel.h"

#if TPR_OP_DEPTHWISE_CONV_2D

enum { DEPTH_MULTIPLIER = 3 };

tpr_status_t tpr_k_depthwise_conv_2d(tpr_ctx_t *c)
{
    tpr_conv_t p;
    tpr_status_t st;
    int32_t dm;

    if ((st = tpr_int8(c, 0, 0, &p.in, 4, 4)) || (st = tpr_int8(c, 0, 1, &p.w, 4, 4)) ||
        (st = tpr_int8(c, 1, 0, &p.out, 4, 4)) || (st = tpr_opt_pos(c, DEPTH_MULTIPLIER, 0, &dm)) ||
        (st = tpr_conv_prepare(c, &p, 1, p.w.dims[3]))) {
        return st;
    }
    if (p.w.dims[0] != 1 || p.w.dims[3] != p.in.dims[3] * dm) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, p.w.index, "filter does not match depth_multiplier");
    }
    /* output channel oc reads input channel oc / dm; filter element at k * n_out + oc */
    return tpr_conv_run(c, &p, p.w.dims[3], 1, dm, 1, p.w.dims[3]);
}

#endif
