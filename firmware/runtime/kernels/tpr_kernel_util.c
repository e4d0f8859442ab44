#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
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
