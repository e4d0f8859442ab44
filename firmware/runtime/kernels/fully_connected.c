/* FULLY_CONNECTED, int8: TFLite Micro's reference_integer_ops::FullyConnected (per-tensor
 * weights, multiplier from the float product of the scales) and FullyConnectedPerChannel.
 * input [..., D] (any shape with batches * D elements), filter [U, D], bias [U], output [..., U]. */
#include "tpr_kernel.h"

#if TPR_OP_FULLY_CONNECTED

enum { ACTIVATION = 0, WEIGHTS_FORMAT = 1, BIAS_TYPE = 4, QUANT_SPEC = 5 };

tpr_status_t tpr_k_fully_connected(tpr_ctx_t *c)
{
    tpr_tensor_t in, w, out;
    const int32_t *bias;
    tpr_status_t st;
    int32_t lo, hi, depth, units, batches, per_channel, mult = 0, b, u, d;
    int shift = 0;
    int32_t in_off, w_off;
    uint32_t bt;

    if ((st = tpr_in(c, 0, &in)) || (st = tpr_in(c, 1, &w)) || (st = tpr_out(c, 0, &out)) ||
        (st = tpr_check_int8(c, &in, 1)) || (st = tpr_check_int8(c, &w, 1)) ||
        (st = tpr_check_int8(c, &out, 1)) || (st = tpr_check_rank(c, &w, 2, 2)) ||
        (st = tpr_check_rank(c, &out, 1, TPR_MAX_DIMS)) ||
        (st = tpr_activation(c, tpr_opt(c, ACTIVATION, 1, 0), &out, &lo, &hi))) {
        return st;
    }
    bt = tpr_opt(c, BIAS_TYPE, 1, 0);
    if (tpr_opt(c, WEIGHTS_FORMAT, 1, 0) != 0 || (bt != 0 && bt != TPR_TYPE_INT32) ||
        (c->has_opts && tpr_fb_present(&c->opts, c->fb, QUANT_SPEC))) {
        return TPR_FAIL(c, TPR_ERR_OPTIONS, -1, "shuffled weights, int64 bias or quant_spec");
    }
    units = out.dims[out.ndims - 1];
    depth = w.dims[1];
    batches = (int32_t)(out.count / (uint32_t)units);
    if (units > w.dims[0] || (uint32_t)batches * (uint32_t)depth != in.count) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, out.index, "input, filter and output shapes disagree");
    }
    if ((st = tpr_bias(c, (uint32_t)units, &bias)) != TPR_OK) {
        return st;
    }
    per_channel = w.scales.len > 1;
    if (per_channel && (w.scales.len != (uint32_t)w.dims[0] || w.qdim != 0)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, w.index, "filter scales must be one or one per unit");
    }
    if (!per_channel && !tpr_mult_fc(in.scale, w.scale, out.scale, &mult, &shift)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, w.index, "scale not positive and finite, or scale ratio too large");
    }
    in_off = -in.zp;
    w_off = per_channel ? 0 : -w.zp; /* the per-channel kernel ignores filter zero points */
    for (u = 0; u < units; ++u) {
        const int8_t *wp;
        if (per_channel &&
            !tpr_mult_conv(in.scale, tpr_scale_at(c, &w, (uint32_t)u), out.scale, &mult, &shift)) {
            return TPR_FAIL(c, TPR_ERR_QUANT, w.index, "scale not positive and finite, or scale ratio too large");
        }
        if (!c->eval) {
            continue;
        }
        wp = (const int8_t *)w.data + u * depth;
        for (b = 0; b < batches; ++b) {
            const int8_t *ip = (const int8_t *)in.data + b * depth;
            uint32_t acc = 0;
            for (d = 0; d < depth; ++d) {
                acc += (uint32_t)(((int32_t)wp[d] + w_off) * ((int32_t)ip[d] + in_off));
            }
            if (bias) {
                acc += (uint32_t)bias[u];
            }
            ((int8_t *)out.data)[b * units + u] =
                tpr_clamp8(tpr_mbqm((int32_t)acc, mult, shift) + out.zp, lo, hi);
        }
    }
    return TPR_OK;
}

#endif
