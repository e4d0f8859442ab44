/* FULLY_CONNECTED, int8: TFLite Micro's reference_integer_ops::FullyConnected (per-tensor
 * weights, multiplier from the float product of the scales) and FullyConnectedPerChannel.
 * input [..., D] (any shape with batches * D elements), filter [U, D], bias [U], output [..., U].
 * Validated, and run as a 1x1 convolution over `batches` positions, by tpr_conv_op
 * (conv_common.c). */
#include "tpr_kernel.h"

#if TPR_OP_FULLY_CONNECTED

/* Per-tensor weights with a zero point (int8 weights are symmetric in TFLite's quantization
 * spec, so converters do not write this; TFLite Micro's reference kernel accepts it): the
 * reference loop, (w - w_zp) * (x - x_zp). */
TPR_COLD static tpr_status_t filter_zero_point(tpr_ctx_t *c, const tpr_conv_t *p)
{
    const int32_t batches = p->iw, depth = p->ic, units = p->out.dims[p->out.ndims - 1];
    int32_t b, u, d;
    tpr_mq_t q;
    if (!tpr_conv_mult(c, p, 0, &q)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, p->w.index, "scale not positive and finite, or scale ratio too large");
    }
    for (b = 0; b < batches && c->eval; ++b) { /* validating: no data yet */
        for (u = 0; u < units; ++u) {
            const int8_t *x = (const int8_t *)p->in.data + b * depth;
            const int8_t *w = (const int8_t *)p->w.data + u * depth;
            uint32_t acc = p->bias ? (uint32_t)p->bias[u] : 0u;
            for (d = 0; d < depth; ++d) {
                acc += (uint32_t)((w[d] - p->w.zp) * (x[d] - p->in.zp));
            }
            tpr_requant_n(&acc, &q, 1, p->out.zp, p->lo, p->hi, (int8_t *)p->out.data + b * units + u);
        }
    }
    return TPR_OK;
}

TPR_COLD tpr_status_t tpr_k_fully_connected(tpr_ctx_t *c)
{
    tpr_conv_t p;
    const tpr_status_t st = tpr_conv_op(c, &p, TPR_CONV_FC);
    if (st != TPR_OK || !p.fc || p.w.zp == 0) { /* failed, or ran */
        return st;
    }
    return filter_zero_point(c, &p);
}

#endif
