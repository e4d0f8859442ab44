/* MEAN, int8, over any set of axes: TFLite Micro's QuantizedMeanOrSum (reduce.h). The sum over
 * the reduced axes is taken per output element; the multiplier input_scale / output_scale is
 * divided by the element count with a pre-shift of floor(log2(count)) bits, as TFLite does. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_MEAN

/* floor(n / d) for 64-bit n by shift and subtract (avoids the C library's 64-bit division) */
static uint32_t udiv64(uint64_t n, uint32_t d)
{
    uint64_t r = 0;
    uint32_t q = 0;
    int i;
    for (i = 63; i >= 0; --i) {
        r = (r << 1) | ((n >> i) & 1u);
        q <<= 1;
        if (r >= d) {
            r -= d;
            q |= 1u;
        }
    }
    return q;
}

tpr_status_t tpr_k_mean(tpr_ctx_t *c)
{
    tpr_tensor_t in, axes, out;
    tpr_status_t st;
    uint32_t reduced = 0, i, kept_count = 1;
    int32_t stride[TPR_MAX_DIMS], mult, n = 1, k, d, o, j;
    int shift, pre;

    if ((st = tpr_in(c, 0, &in)) || (st = tpr_in(c, 1, &axes)) || (st = tpr_out(c, 0, &out)) ||
        (st = tpr_check_int8(c, &in, 1)) || (st = tpr_check_int8(c, &out, 1)) ||
        (st = tpr_check_rank(c, &in, 1, TPR_MAX_DIMS))) {
        return st;
    }
    if (axes.type != TPR_TYPE_INT32 || !axes.is_const) {
        return TPR_FAIL(c, TPR_ERR_TYPE, axes.index, "axes must be a constant int32 tensor");
    }
    for (i = 0; i < axes.count; ++i) {
        int32_t a;
        memcpy(&a, axes.data + 4u * i, 4);
        a = a < 0 ? a + in.ndims : a;
        if (a < 0 || a >= (int32_t)in.ndims) {
            return TPR_FAIL(c, TPR_ERR_OPTIONS, axes.index, "axis out of range");
        }
        reduced |= 1u << a;
    }
    for (d = (int32_t)in.ndims - 1, k = 1; d >= 0; --d) {
        stride[d] = k;
        k *= in.dims[d];
        if (reduced & (1u << d)) {
            n *= in.dims[d];
        } else {
            kept_count *= (uint32_t)in.dims[d];
        }
    }
    if (kept_count != out.count) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, out.index, "output size does not match the reduction");
    }
    if (!tpr_mult_ratio(in.scale, out.scale, &mult, &shift)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, out.index, "scale not positive and finite, or scale ratio too large");
    }
    for (pre = 0; ((uint32_t)n >> (pre + 1)) != 0; ++pre) {
    }
    pre = pre < 32 ? pre : 32;
    pre = pre < 31 + shift ? pre : 31 + shift;
    if (pre < 0) {
        return TPR_FAIL(c, TPR_ERR_QUANT, out.index, "scale ratio out of range");
    }
    mult = (int32_t)udiv64((uint64_t)(uint32_t)mult << pre, (uint32_t)n);
    shift -= pre;
    if (!c->eval) {
        return TPR_OK;
    }
    for (d = 0, k = 0; d < (int32_t)in.ndims - 1; ++d) {
        k += (reduced & (1u << d)) != 0 || in.dims[d] == 1;
    }
    if (k == (int32_t)in.ndims - 1 && !(reduced & (1u << k))) { /* all axes but the last */
        const int32_t ch = in.dims[in.ndims - 1];
        for (o = 0; o < ch; ++o) {
            uint32_t sum = 0;
            for (j = 0; j < n; ++j) {
                sum += (uint32_t)(int32_t)((const int8_t *)in.data)[j * ch + o];
            }
            sum -= (uint32_t)in.zp * (uint32_t)n;
            ((int8_t *)out.data)[o] = tpr_clamp8(tpr_mbqm((int32_t)sum, mult, shift) + out.zp, -128, 127);
        }
        return TPR_OK;
    }
    for (o = 0; o < (int32_t)out.count; ++o) {
        /* offset of the first input element of output o: its kept coordinates, row-major */
        int32_t rest = o, base = 0, idx[TPR_MAX_DIMS], off;
        uint32_t sum = 0;
        for (d = (int32_t)in.ndims - 1; d >= 0; --d) {
            idx[d] = 0;
            if (!(reduced & (1u << d))) {
                base += (rest % in.dims[d]) * stride[d];
                rest /= in.dims[d];
            }
        }
        for (j = 0, off = base; j < n; ++j) {
            sum += (uint32_t)(int32_t)((const int8_t *)in.data)[off];
            for (d = (int32_t)in.ndims - 1; d >= 0; --d) { /* next reduced coordinate */
                if (!(reduced & (1u << d))) {
                    continue;
                }
                off += stride[d];
                if (++idx[d] < in.dims[d]) {
                    break;
                }
                off -= stride[d] * in.dims[d];
                idx[d] = 0;
            }
        }
        sum -= (uint32_t)in.zp * (uint32_t)n;
        ((int8_t *)out.data)[o] = tpr_clamp8(tpr_mbqm((int32_t)sum, mult, shift) + out.zp, -128, 127);
    }
    return TPR_OK;
}

#endif
