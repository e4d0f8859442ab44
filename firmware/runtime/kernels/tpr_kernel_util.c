#include "tpr_kernel.h"

tpr_status_t tpr_padding(tpr_ctx_t *c, const tpr_tensor_t *out, uint32_t padding, int32_t in,
                         int32_t filt, int32_t stride, int32_t dil, int32_t out_size,
                         int32_t *pad)
{
    int64_t eff = (int64_t)(filt - 1) * dil + 1, total;
    uint32_t o;
    if (eff > 0xFFFFFF || in > 0xFFFFFF) { /* keeps every index sum far below 2^31 */
        return TPR_FAIL(c, TPR_ERR_LIMIT, out->index, "spatial size or dilated filter above 2^24");
    }
    if (padding == TPR_PAD_SAME) {
        o = ((uint32_t)in + (uint32_t)stride - 1u) / (uint32_t)stride;
    } else if (padding == TPR_PAD_VALID) {
        o = (int64_t)in + stride - eff < 0 ? 0u : (uint32_t)(in + stride - (int32_t)eff) / (uint32_t)stride;
    } else {
        return TPR_FAIL(c, TPR_ERR_OPTIONS, -1, "padding is neither SAME nor VALID");
    }
    if (o != (uint32_t)out_size) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, out->index, "output size does not follow from padding");
    }
    total = (int64_t)(o - 1u) * stride + eff - in;
    *pad = (int32_t)(total > 0 ? total / 2 : 0);
    return TPR_OK;
}

tpr_status_t tpr_opt_pos(tpr_ctx_t *c, unsigned field, uint32_t dflt, int32_t *v)
{
    uint32_t x = tpr_opt(c, field, 4, dflt);
    if (x < 1 || x > 65535u) {
        return TPR_FAIL(c, TPR_ERR_OPTIONS, -1, "stride, dilation or filter size out of range");
    }
    *v = (int32_t)x;
    return TPR_OK;
}

uint32_t tpr_scale_at(const tpr_ctx_t *c, const tpr_tensor_t *t, uint32_t i)
{
    if (t->scales.len > 1 && i < t->scales.len) {
        return tpr_rd32(c->fb->b + t->scales.pos + 4u * i);
    }
    return t->scale;
}

tpr_status_t tpr_activation(tpr_ctx_t *c, uint32_t act, const tpr_tensor_t *out, int32_t *lo,
                            int32_t *hi)
{
    if (!tpr_act_range(act, out->scale, out->zp, lo, hi)) {
        return TPR_FAIL(c, TPR_ERR_OPTIONS, out->index, "unsupported fused activation");
    }
    return TPR_OK;
}

tpr_status_t tpr_bias(tpr_ctx_t *c, uint32_t n, const int32_t **bias)
{
    tpr_tensor_t b;
    tpr_status_t st;
    *bias = 0;
    if (!tpr_in_opt(c, 2, &b, &st)) {
        return st;
    }
    if (b.type != TPR_TYPE_INT32) {
        return TPR_FAIL(c, TPR_ERR_TYPE, b.index, "bias must be int32");
    }
    if (b.count < n) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, b.index, "bias has too few elements");
    }
    *bias = (const int32_t *)(const void *)b.data;
    return TPR_OK;
}

#if TPR_OP_CONV_2D || TPR_OP_DEPTHWISE_CONV_2D

/* Conv2DOptions: padding 0, stride_w 1, stride_h 2, activation 3, dilation_w 4, dilation_h 5;
 * DepthwiseConv2DOptions inserts depth_multiplier at 3 and shifts the rest by one. */
tpr_status_t tpr_conv_prepare(tpr_ctx_t *c, tpr_conv_t *p, int depthwise, int32_t n_out)
{
    tpr_status_t st;
    uint32_t padding = tpr_opt(c, 0, 1, 0);
    unsigned k = depthwise ? 1u : 0u;
    if ((st = tpr_opt_pos(c, 1, 0, &p->sw)) || (st = tpr_opt_pos(c, 2, 0, &p->sh)) ||
        (st = tpr_opt_pos(c, 4 + k, 1, &p->dw)) || (st = tpr_opt_pos(c, 5 + k, 1, &p->dh)) ||
        (st = tpr_padding(c, &p->out, padding, p->in.dims[1], p->w.dims[1], p->sh, p->dh,
                          p->out.dims[1], &p->pad_h)) ||
        (st = tpr_padding(c, &p->out, padding, p->in.dims[2], p->w.dims[2], p->sw, p->dw,
                          p->out.dims[2], &p->pad_w)) ||
        (st = tpr_activation(c, tpr_opt(c, 3 + k, 1, 0), &p->out, &p->lo, &p->hi)) ||
        (st = tpr_bias(c, (uint32_t)n_out, &p->bias))) {
        return st;
    }
    if (p->in.dims[0] != p->out.dims[0] || p->out.dims[3] != n_out) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, p->out.index, "batch or output channels disagree");
    }
    if (p->w.scales.len != 1 &&
        (p->w.scales.len != (uint32_t)n_out || p->w.qdim != (depthwise ? 3 : 0))) {
        return TPR_FAIL(c, TPR_ERR_QUANT, p->w.index,
                        "filter scales must be one or one per output channel");
    }
    return TPR_OK;
}

tpr_status_t tpr_conv_run(tpr_ctx_t *c, tpr_conv_t *p, int32_t n_out, int32_t fic,
                          int32_t in_div, int32_t w_oc, int32_t w_k)
{
    int32_t b, oc, oy, ox, ky, kx, ic;
    const int32_t in_off = -p->in.zp, ih = p->in.dims[1], iw = p->in.dims[2], ic_n = p->in.dims[3];
    for (oc = 0; oc < n_out; ++oc) {
        int32_t mult;
        int shift;
        int8_t *y;
        if (!tpr_mult_conv(p->in.scale, tpr_scale_at(c, &p->w, (uint32_t)oc), p->out.scale, &mult,
                           &shift)) {
            return TPR_FAIL(c, TPR_ERR_QUANT, p->w.index, "scale not positive and finite, or scale ratio too large");
        }
        if (!c->eval) {
            continue;
        }
        y = (int8_t *)p->out.data + oc;
        for (b = 0; b < p->out.dims[0]; ++b) {
            for (oy = 0; oy < p->out.dims[1]; ++oy) {
                for (ox = 0; ox < p->out.dims[2]; ++ox) {
                    uint32_t acc = 0;
                    for (ky = 0; ky < p->w.dims[1]; ++ky) {
                        int32_t iy = oy * p->sh - p->pad_h + p->dh * ky;
                        if (iy < 0 || iy >= ih) {
                            continue;
                        }
                        for (kx = 0; kx < p->w.dims[2]; ++kx) {
                            int32_t ix = ox * p->sw - p->pad_w + p->dw * kx;
                            const int8_t *ip, *wp;
                            if (ix < 0 || ix >= iw) {
                                continue;
                            }
                            ip = (const int8_t *)p->in.data + ((b * ih + iy) * iw + ix) * ic_n +
                                 (oc / in_div) * fic;
                            wp = (const int8_t *)p->w.data + oc * w_oc + (ky * p->w.dims[2] + kx) * w_k;
                            for (ic = 0; ic < fic; ++ic) {
                                acc += (uint32_t)((int32_t)wp[ic] * ((int32_t)ip[ic] + in_off));
                            }
                        }
                    }
                    if (p->bias) {
                        acc += (uint32_t)p->bias[oc];
                    }
                    *y = tpr_clamp8(tpr_mbqm((int32_t)acc, mult, shift) + p->out.zp, p->lo, p->hi);
                    y += n_out;
                }
            }
        }
    }
    return TPR_OK;
}

#endif
