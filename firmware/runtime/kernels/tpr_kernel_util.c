#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

/* in and filt are tensor dimensions or options (>= 1), stride and dil options (1..65535): with
 * in and the dilated filter at most 2^24 every quantity below fits in 32 bits ((o - 1) * stride
 * is at most in for an o that passes the check). */
tpr_status_t tpr_padding(tpr_ctx_t *c, const tpr_tensor_t *out, uint32_t padding, int32_t in,
                         int32_t filt, int32_t stride, int32_t dil, int32_t out_size,
                         int32_t *pad)
{
    int32_t eff, o, total;
    if ((uint32_t)(filt - 1) > 0xFFFFFEu / (uint32_t)dil || in > 0xFFFFFF) {
        /* the dilated filter (filt - 1) * dil + 1 or in above 2^24 - 1: keeps every index sum far
         * below 2^31 */
        return TPR_FAIL(c, TPR_ERR_LIMIT, out->index, "spatial size or dilated filter above 2^24");
    }
    eff = (filt - 1) * dil + 1;
    if (padding == TPR_PAD_SAME) {
        o = (in + stride - 1) / stride;
    } else if (padding == TPR_PAD_VALID) {
        o = in + stride - eff < 0 ? 0 : (in + stride - eff) / stride;
    } else {
        return TPR_FAIL(c, TPR_ERR_OPTIONS, -1, "padding is neither SAME nor VALID");
    }
    if (o != out_size) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, out->index, "output size does not follow from padding");
    }
    total = (o - 1) * stride + eff - in;
    *pad = total > 0 ? total / 2 : 0;
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
