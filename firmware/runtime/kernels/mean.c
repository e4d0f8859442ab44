/* MEAN, int8, over any set of axes: TFLite Micro's QuantizedMeanOrSum (reduce.h). The sum over
 * the reduced axes is taken per output element; the multiplier input_scale / output_scale is
 * divided by the element count with a pre-shift of floor(log2(count)) bits, as TFLite does. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_MEAN

/* The next coordinate of the axes in `mask` below `from` (odometer, last axis fastest), and the
 * input offset moved with it; after the last one every such coordinate is 0 again. */
static int32_t next(int32_t off, int32_t *idx, const tpr_tensor_t *in, const int32_t *stride,
                    uint32_t mask, int32_t from)
{
    int32_t d;
    for (d = from - 1; d >= 0; --d) {
        if (mask & (1u << d)) {
            off += stride[d];
            if (++idx[d] < in->dims[d]) {
                break;
            }
            off -= stride[d] * in->dims[d];
            idx[d] = 0;
        }
    }
    return off;
}

tpr_status_t tpr_k_mean(tpr_ctx_t *c)
{
    tpr_tensor_t in, axes, out;
    tpr_status_t st;
    uint32_t reduced = 0, i, kept_count = 1, q, r;
    int32_t stride[TPR_MAX_DIMS], idx[TPR_MAX_DIMS], mult, n = 1, k, d, o, j, inner = 1, step = 0,
        top = -1, base = 0;
    int shift, pre;

    if ((st = tpr_io(c, &in, &axes, &out, TPR_IO_INQ | TPR_IO_OUTQ | TPR_IO_RANK(TPR_MAX_DIMS)))) {
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
    /* strides, and the innermost run of reduced axes (size-1 axes may join it), top..: one
     * strided walk of `inner` elements, `step` apart, for the loop below */
    for (d = (int32_t)in.ndims - 1, k = 1; d >= 0; --d) {
        const int red = (reduced >> d) & 1u;
        stride[d] = k;
        idx[d] = 0;
        if (!red) {
            kept_count *= (uint32_t)in.dims[d];
        } else {
            n *= in.dims[d];
        }
        if ((red && top < 0) || (top == d + 1 && (red || in.dims[d] == 1))) {
            step = top < 0 ? k : step;
            top = d;
            inner *= in.dims[d];
        }
        k *= in.dims[d];
    }
    if (kept_count != out.count) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, out.index, "output size does not match the reduction");
    }
    if (!tpr_mult_ratio(in.scale, out.scale, &mult, &shift)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, out.index, "scale not positive and finite, or scale ratio too large");
    }
    if (shift < -31) { /* the pre-shift min(floor(log2(n)), 32, 31 + shift) would be negative */
        return TPR_FAIL(c, TPR_ERR_QUANT, out.index, "scale ratio out of range");
    }
    /* mult = floor(mult * 2^pre / n) by long division (n < 2^31, so 2r fits and pre <= 30) */
    q = (uint32_t)mult / (uint32_t)n;
    r = (uint32_t)mult % (uint32_t)n;
    for (pre = 0; ((uint32_t)n >> (pre + 1)) != 0 && pre < 31 + shift; ++pre) {
        q <<= 1;
        r <<= 1;
        if (r >= (uint32_t)n) {
            r -= (uint32_t)n;
            ++q;
        }
    }
    mult = (int32_t)q;
    shift -= pre;
    if (!c->eval) {
        return TPR_OK;
    }
    /* output o sums the input from `base` (its kept coordinates) over the reduced axes: rows of
     * the innermost run, the outer reduced axes stepped between rows */
    for (o = 0; o < (int32_t)out.count; ++o) {
        int32_t off = base;
        uint32_t sum = 0;
        for (j = 0; j < n; j += inner) {
            const int8_t *p = (const int8_t *)in.data + off;
            k = inner;
            do {
                sum += (uint32_t)(int32_t)*p;
                p += step;
            } while (--k > 0);
            off = next(off, idx, &in, stride, reduced, top);
        }
        sum -= (uint32_t)in.zp * (uint32_t)n;
        ((int8_t *)out.data)[o] = tpr_sat8(tpr_mbqm((int32_t)sum, mult, shift) + out.zp);
        base = next(base, idx, &in, stride, ~reduced, (int32_t)in.ndims);
    }
    return TPR_OK;
}

#endif
