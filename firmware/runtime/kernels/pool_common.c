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
    /* g: stride h, w, filter h, w; pad h, w */
    int32_t g[6], lo, hi, fy, fx, k, H, W, C;
    uint32_t padding = tpr_opt(c, PADDING, 1, 0);
    if ((st = tpr_int8(c, 0, 0, &in, 4, 4)) || (st = tpr_int8(c, 1, 0, &out, 4, 4))) {
        return st;
    }
    for (k = 0; k < 4; ++k) { /* fields STRIDE_H, STRIDE_W, FILTER_H, FILTER_W */
        if ((st = tpr_opt_pos(c, (unsigned)(k ^ 1) + 1u, 0, &g[k])) != TPR_OK) {
            return st;
        }
    }
    for (k = 1; k < 3; ++k) {
        if ((st = tpr_padding(c, &out, padding, in.dims[k], g[k + 1], g[k - 1], 1, out.dims[k], &g[k + 3])) != TPR_OK) {
            return st;
        }
    }
    if ((st = tpr_activation(c, tpr_opt(c, ACTIVATION, 1, 0), &out, &lo, &hi)) != TPR_OK) {
        return st;
    }
    if (in.dims[0] != out.dims[0] || in.dims[3] != out.dims[3] || in.zp != out.zp) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, out.index, "batch, channels or zero point differ");
    }
    if (!c->eval) {
        return TPR_OK;
    }
    H = in.dims[1];
    W = in.dims[2];
    C = in.dims[3];
    for (k = 0; k < (int32_t)out.count; ++k) { /* output element k: (b, oy, ox, ch) */
        int32_t ch = k % C, p = k / C, ox = p % out.dims[2], oy = p / out.dims[2] % out.dims[1];
        int32_t iy0 = oy * g[0] - g[4], ix0 = ox * g[1] - g[5], acc = avg ? 0 : -128, n = 0;
        /* the window's first cell, index of (iy0, ix0): negative when padded */
        int32_t base = ((p / out.dims[2] / out.dims[1] * H + iy0) * W + ix0) * C + ch;
        for (fy = iy0 < 0 ? -iy0 : 0; fy < g[2] && fy < H - iy0; ++fy) {
            for (fx = ix0 < 0 ? -ix0 : 0; fx < g[3] && fx < W - ix0; ++fx) {
                int32_t v = ((const int8_t *)in.data)[base + (fy * W + fx) * C];
                acc = avg ? acc + v : (v > acc ? v : acc);
                ++n;
            }
        }
        if (avg) {
            if (n == 0) {
                return TPR_FAIL(c, TPR_ERR_EVAL, out.index, "window outside the input");
            }
            acc = (acc + (acc > 0 ? n / 2 : -(n / 2))) / n; /* half away from zero */
        }
        ((int8_t *)out.data)[k] = tpr_clamp8(acc, lo, hi);
    }
    return TPR_OK;
}

#endif
