/* FULLY_CONNECTED, int8: TFLite Micro's reference_integer_ops::FullyConnected (per-tensor
 * weights, multiplier from the float product of the scales) and FullyConnectedPerChannel.
 * input [..., D] (any shape with batches * D elements), filter [U, D], bias [U], output [..., U].
 * Run as a 1x1 convolution over `batches` positions (tpr_conv_run, conv_common.c). */
#include "tpr_kernel.h"

#if TPR_OP_FULLY_CONNECTED

enum { ACTIVATION = 0, WEIGHTS_FORMAT = 1, BIAS_TYPE = 4, QUANT_SPEC = 5 };

/* Per-tensor weights with a zero point (int8 weights are symmetric in TFLite's quantization
 * spec, so converters do not write this; TFLite Micro's reference kernel accepts it): the
 * reference loop, (w - w_zp) * (x - x_zp). */
TPR_COLD static tpr_status_t filter_zero_point(tpr_ctx_t *c, const tpr_conv_t *p, int32_t batches,
                                      int32_t depth, int32_t units)
{
    int32_t b, u, d;
    tpr_mq_t q;
    if (!tpr_conv_mult(c, p, 0, &q)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, p->w.index, "scale not positive and finite, or scale ratio too large");
    }
    for (b = 0; b < batches && c->eval; ++b) {
        for (u = 0; u < units; ++u) {
            const int8_t *x = (const int8_t *)p->in.data + b * depth;
            const int8_t *w = (const int8_t *)p->w.data + u * depth;
            uint32_t acc = p->bias ? (uint32_t)p->bias[u] : 0u;
            for (d = 0; d < depth; ++d) {
                acc += (uint32_t)((w[d] - p->w.zp) * (x[d] - p->in.zp));
            }
            ((int8_t *)p->out.data)[b * units + u] =
                tpr_requant(acc, &q, p->out.zp, p->lo, p->hi);
        }
    }
    return TPR_OK;
}

TPR_COLD tpr_status_t tpr_k_fully_connected(tpr_ctx_t *c)
{
    tpr_conv_t p;
    tpr_status_t st;
    int32_t depth, units, batches, per_channel;
    uint32_t bt;

    if ((st = tpr_in(c, 0, &p.in)) || (st = tpr_in(c, 1, &p.w)) || (st = tpr_out(c, 0, &p.out)) ||
        (st = tpr_check_int8(c, &p.in, 1)) || (st = tpr_check_int8(c, &p.w, 1)) ||
        (st = tpr_check_int8(c, &p.out, 1)) || (st = tpr_check_rank(c, &p.w, 2, 2)) ||
        (st = tpr_check_rank(c, &p.out, 1, TPR_MAX_DIMS)) ||
        (st = tpr_activation(c, tpr_opt(c, ACTIVATION, 1, 0), &p.out, &p.lo, &p.hi))) {
        return st;
    }
    bt = tpr_opt(c, BIAS_TYPE, 1, 0);
    if (tpr_opt(c, WEIGHTS_FORMAT, 1, 0) != 0 || (bt != 0 && bt != TPR_TYPE_INT32) ||
        (c->has_opts && tpr_fb_present(&c->opts, c->fb, QUANT_SPEC))) {
        return TPR_FAIL(c, TPR_ERR_OPTIONS, -1, "shuffled weights, int64 bias or quant_spec");
    }
    units = p.out.dims[p.out.ndims - 1];
    depth = p.w.dims[1];
    batches = (int32_t)(p.out.count / (uint32_t)units);
    /* batches x D in 64 bits: wrapped to the input's count, it let the loops read past it */
    if (units > p.w.dims[0] || (uint64_t)(uint32_t)batches * (uint32_t)depth != p.in.count) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, p.out.index, "input, filter and output shapes disagree");
    }
    if ((st = tpr_bias(c, (uint32_t)units, &p.bias)) != TPR_OK) {
        return st;
    }
    per_channel = p.w.scales.len > 1;
    if (per_channel && (p.w.scales.len != (uint32_t)p.w.dims[0] || p.w.qdim != 0)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, p.w.index, "filter scales must be one or one per unit");
    }
    p.fc = (uint8_t)!per_channel;
    tpr_conv_mult_layer(c, &p);
    if (!per_channel && p.w.zp != 0) { /* the per-channel kernel ignores filter zero points */
        return filter_zero_point(c, &p, batches, depth, units);
    }
    p.nb = p.ih = p.oh = p.kh = p.kw = 1;
    p.iw = p.ow = batches;
    p.ic = depth;
    p.sh = p.sw = p.dh = p.dw = 1;
    p.pad_h = p.pad_w = 0;
    return tpr_conv_run(c, &p, 0, units, depth, units, depth, depth);
}

#endif
