/* PAD and PADV2, int8, up to 5 dimensions: TFLite Micro's reference_ops::Pad. Cells outside the
 * input take the output zero point (PAD) or the constant_values scalar (PADV2). */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_PAD || TPR_OP_PADV2

tpr_status_t tpr_k_pad(tpr_ctx_t *c)
{
    tpr_tensor_t in, pads, cv, out;
    tpr_status_t st;
    int32_t d, nd, before;
    uint32_t r, end, run;
    int has_cv;
    int8_t value;

    if ((st = tpr_io(c, &in, &pads, &out, TPR_IO_IN8 | TPR_IO_OUT8 | TPR_IO_RANK(5))) != TPR_OK) {
        return st;
    }
    has_cv = tpr_in_opt(c, 2, &cv, &st);
    if (st != TPR_OK) {
        return st;
    }
    nd = in.ndims;
    if (pads.type != TPR_TYPE_INT32 || !pads.is_const || pads.count != 2u * (uint32_t)nd ||
        out.ndims != in.ndims) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, pads.index, "paddings must be a constant int32 [rank, 2]");
    }
    for (d = 0; d < nd; ++d) {
        int32_t p[2], grow = out.dims[d] - in.dims[d]; /* p[0] + p[1] (dimensions are positive) */
        memcpy(p, pads.data + 8u * (uint32_t)d, 8);
        if (grow < 0 || (uint32_t)p[0] > (uint32_t)grow || p[1] != grow - p[0]) {
            return TPR_FAIL(c, TPR_ERR_SHAPE, out.index, "output shape does not match the paddings");
        }
    }
    if (has_cv && (cv.type != TPR_TYPE_INT8 || cv.count != 1 || cv.zp != out.zp || cv.scale != out.scale)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, cv.index, "constant_values must be one int8 on the output's scale");
    }
    if (!c->eval) {
        return TPR_OK;
    }
    value = has_cv ? *(const int8_t *)cv.data : (int8_t)out.zp;
    /* The input's runs, last first, each moved to its place and the cells after it up to the
     * next run set to the padding value: a run spans the last padded dimension and the unpadded
     * ones after it, contiguous in the input and the output (the image of an NHWC pad of H and
     * W: one row of W x C bytes). A run never lands below where it starts, so the moves are
     * exact when the plan puts the output over the input, starting at the same byte. */
    for (d = nd - 1, run = (uint32_t)in.dims[d]; d > 0 && out.dims[d] == in.dims[d];) {
        run *= (uint32_t)in.dims[--d];
    }
    end = out.bytes;
    for (r = in.count; r > 0;) {
        uint32_t o = 0, s = 1, e, n = run, gap, k;
        r -= run; /* the run's first element, and its place in the output */
        for (d = nd - 1, e = r; d >= 0; --d) {
            memcpy(&before, pads.data + 8u * (uint32_t)d, 4); /* validated above */
            o += ((uint32_t)before + e % (uint32_t)in.dims[d]) * s;
            e /= (uint32_t)in.dims[d];
            s *= (uint32_t)out.dims[d];
        }
        memset(out.data + o + n, (uint8_t)value, end - o - n);
        /* in place, the run moves up by `gap` bytes: copied from its end in pieces of at most
         * `gap` bytes, no piece overlaps its copy */
        gap = in.data == out.data ? o - r : n;
        while (gap > 0 && n > 0) {
            k = n < gap ? n : gap;
            n -= k;
            memcpy(out.data + o + n, in.data + r + n, k);
        }
        end = o;
    }
    memset(out.data, (uint8_t)value, end);
    return TPR_OK;
}

#endif
