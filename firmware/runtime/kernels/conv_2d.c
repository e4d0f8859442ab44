/* CONV_2D, int8 with per-channel (or per-tensor) weights: TFLite Micro's
 * reference_integer_ops::ConvPerChannel, grouped convolution included.
 * input [N,H,W,C], filter [O,KH,KW,C/groups], bias [O] int32 (optional), output [N,OH,OW,O].
 * The loops (tpr_conv_run, conv_common.c) are shared with FULLY_CONNECTED and DEPTHWISE_CONV_2D. */
#include "tpr_kernel.h"

#if TPR_OP_CONV_2D

enum { BIAS_TYPE = 6 };

TPR_COLD tpr_status_t tpr_k_conv_2d(tpr_ctx_t *c)
{
    tpr_conv_t p;
    tpr_status_t st;
    int32_t n_out, fic;
    uint32_t bt;

    if ((st = tpr_int8(c, 0, 0, &p.in, 4, 4)) || (st = tpr_int8(c, 0, 1, &p.w, 4, 4)) ||
        (st = tpr_int8(c, 1, 0, &p.out, 4, 4)) ||
        (st = tpr_conv_prepare(c, &p, 0, p.w.dims[0]))) {
        return st;
    }
    n_out = p.w.dims[0];
    fic = p.w.dims[3];
    if (p.in.dims[3] % fic != 0 || n_out % (p.in.dims[3] / fic) != 0) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, p.w.index, "channels do not divide into groups");
    }
    bt = tpr_opt(c, BIAS_TYPE, 1, 0);
    if (bt != 0 && bt != TPR_TYPE_INT32) {
        return TPR_FAIL(c, TPR_ERR_OPTIONS, -1, "quantized_bias_type other than int32");
    }
    /* groups = C / fic; output channel oc belongs to group oc / (n_out / groups) */
    return tpr_conv_run(c, &p, 0, n_out, fic, n_out / (p.in.dims[3] / fic),
                        p.w.dims[1] * p.w.dims[2] * fic, fic);
}

#endif
