/* CONV_2D, int8 with per-channel (or per-tensor) weights: TFLite Micro's
 * reference_integer_ops::ConvPerChannel, grouped convolution included.
 * input [N,H,W,C], filter [O,KH,KW,C/groups], bias [O] int32 (optional), output [N,OH,OW,O].
 * Validation and loops (tpr_conv_op, tpr_conv_run: conv_common.c) are shared with
 * FULLY_CONNECTED and DEPTHWISE_CONV_2D. */
#include "tpr_kernel.h"

#if TPR_OP_CONV_2D

TPR_COLD tpr_status_t tpr_k_conv_2d(tpr_ctx_t *c)
{
    tpr_conv_t p;
    return tpr_conv_op(c, &p, TPR_CONV_2D);
}

#endif
