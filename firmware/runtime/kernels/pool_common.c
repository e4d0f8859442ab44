/* AVERAGE_POOL_2D and MAX_POOL_2D share validation (pooling_common.cc: same zero point in and
 * out, padding from the filter size) and the window walk; only the reduction differs:
 * reference_integer_ops::AveragePool (rounded division, ties away from zero, over the cells
 * inside the input) and MaxPool. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_AVERAGE_POOL_2D || TPR_OP_MAX_POOL_2D

enum { PADDING = 0, STRIDE_W = 1, STRIDE_H = 2, FILTER_W = 3, FILTER_H = 4, ACTIVATION = 5 };

tpr_status_t tpr_pool(tpr_ctx_t *c, int avg)
{
    tpr_tensor_t in, out;
    tpr_status_t st;
    int32_t sh, sw, fh, fw, ph, pw, lo, hi, b, oy, ox, ch, fy, fx;
    uint32_t padding = tpr_opt(c, PADDING, 1, 0);
    int8_t *y;
    if ((st = tpr_int8(c, 0, 0, &in, 4, 4)) || (st = tpr_int8(c, 1, 0, &out, 4, 4)) ||
        (st = tpr_opt_pos(c, STRIDE_H, 0, &sh)) || (st = tpr_opt_pos(c, STRIDE_W, 0, &sw)) ||
        (st = tpr_opt_pos(c, FILTER_H, 0, &fh)) || (st = tpr_opt_pos(c, FILTER_W, 0, &fw)) ||
        (st = tpr_padding(c, &out, padding, in.dims[1], fh, sh, 1, out.dims[1], &ph)) ||
        (st = tpr_padding(c, &out, padding, in.dims[2], fw, sw, 1, out.dims[2], &pw)) ||
        (st = tpr_activation(c, tpr_opt(c, ACTIVATION, 1, 0), &out, &lo, &hi))) {
        return st;
    }
    if (in.dims[0] != out.dims[0] || in.dims[3] != out.dims[3] || in.zp != out.zp) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, out.index, "batch, channels or zero point differ");
    }
    if (!c->eval) {
        return TPR_OK;
    }
    y = (int8_t *)out.data;
    for (b = 0; b < out.dims[0]; ++b) {
        for (oy = 0; oy < out.dims[1]; ++oy) {
            int32_t iy0 = oy * sh - ph;
            int32_t fy0 = iy0 < 0 ? -iy0 : 0;
            int32_t fy1 = fh < in.dims[1] - iy0 ? fh : in.dims[1] - iy0;
            for (ox = 0; ox < out.dims[2]; ++ox) {
                int32_t ix0 = ox * sw - pw;
                int32_t fx0 = ix0 < 0 ? -ix0 : 0;
                int32_t fx1 = fw < in.dims[2] - ix0 ? fw : in.dims[2] - ix0;
                for (ch = 0; ch < out.dims[3]; ++ch) {
                    int32_t acc = avg ? 0 : -128, n = 0;
                    for (fy = fy0; fy < fy1; ++fy) {
                        for (fx = fx0; fx < fx1; ++fx) {
                            int32_t v = ((const int8_t *)in.data)[((b * in.dims[1] + iy0 + fy) *
                                                                       in.dims[2] + ix0 + fx) *
                                                                      in.dims[3] + ch];
                            acc = avg ? acc + v : (v > acc ? v : acc);
                            ++n;
                        }
                    }
                    if (avg) {
                        if (n == 0) {
                            return TPR_FAIL(c, TPR_ERR_EVAL, out.index, "window outside the input");
                        }
                        acc = acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;
                    }
                    *y++ = tpr_clamp8(acc, lo, hi);
                }
            }
        }
    }
    return TPR_OK;
}

#endif
