/* CONCATENATION, int8: a copy (TFLite Micro requires every input on the output's scale and zero
 * point, and no fused activation). */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_CONCATENATION

enum { AXIS = 0, ACTIVATION = 1 };

tpr_status_t tpr_k_concatenation(tpr_ctx_t *c)
{
    tpr_tensor_t out, t;
    tpr_status_t st;
    int32_t axis = (int32_t)tpr_opt(c, AXIS, 4, 0), d;
    uint32_t i, sum = 0, inner = 1, row, pos, o;

    if ((st = tpr_out(c, 0, &out)) || (st = tpr_check_int8(c, &out, 0)) ||
        (st = tpr_check_rank(c, &out, 1, TPR_MAX_DIMS))) {
        return st;
    }
    if (tpr_opt(c, ACTIVATION, 1, 0) != 0) {
        return TPR_FAIL(c, TPR_ERR_OPTIONS, -1, "fused activation on CONCATENATION");
    }
    axis = axis < 0 ? axis + out.ndims : axis;
    if (axis < 0 || axis >= (int32_t)out.ndims || c->in.len == 0) {
        return TPR_FAIL(c, TPR_ERR_OPTIONS, -1, "axis out of range or no inputs");
    }
    for (d = axis + 1; d < (int32_t)out.ndims; ++d) {
        inner *= (uint32_t)out.dims[d];
    }
    row = (uint32_t)out.dims[axis] * inner;
    /* input i fills columns [pos, pos + n) of every row of the output (row bytes each): copied
     * while validating on invoke (tpr_init found the sizes to add up) */
    for (i = 0, pos = 0; i < c->in.len; ++i) {
        const uint8_t *src;
        uint32_t n;
        if ((st = tpr_in(c, i, &t)) || (st = tpr_check_int8(c, &t, 0))) {
            return st;
        }
        if (t.zp != out.zp || t.scale != out.scale || t.ndims != out.ndims) {
            return TPR_FAIL(c, TPR_ERR_QUANT, t.index, "input differs from the output in scale, zero point or rank");
        }
        for (d = 0; d < (int32_t)out.ndims; ++d) {
            if (d != axis && t.dims[d] != out.dims[d]) {
                return TPR_FAIL(c, TPR_ERR_SHAPE, t.index, "input shape differs off the axis");
            }
        }
        if (sum <= (uint32_t)out.dims[axis]) { /* stops before the sum could wrap */
            sum += (uint32_t)t.dims[axis];
        }
        n = (uint32_t)t.dims[axis] * inner;
        for (o = pos, src = t.data; c->eval && o < out.count; o += row, src += n) {
            memcpy(out.data + o, src, n);
        }
        pos += n;
    }
    if (sum != (uint32_t)out.dims[axis]) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, out.index, "axis sizes do not add up");
    }
    return TPR_OK;
}

#endif
