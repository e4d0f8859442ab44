/* QUANTIZE: float32 -> int8 (TFLite's AffineQuantize: the float quotient rounded half away from
 * zero) and int8 -> int8 requantization (reference_ops::Requantize). */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_QUANTIZE

/* round(v / scale) in float as TFLite does, far outside int8 (or NaN) as +-1000 (saturates) */
static int32_t quantize_one(float v, float scale)
{
    float y = v / scale;
    int32_t t;
    if (!(y > -1000.0f && y < 1000.0f)) {
        return y > 0.0f ? 1000 : -1000;
    }
    t = (int32_t)y; /* toward zero; y - t is exact (|y| < 2 |t| or t = 0) */
    y -= (float)t;
    return t + (y >= 0.5f) - (y <= -0.5f);
}

tpr_status_t tpr_k_quantize(tpr_ctx_t *c)
{
    tpr_tensor_t in, out;
    tpr_status_t st;
    int32_t m = 0;
    int s = 0, ok;
    uint32_t i;
    float scale;
    if ((st = tpr_io(c, &in, 0, &out, TPR_IO_OUTQ | TPR_IO_SAME)) != TPR_OK) {
        return st;
    }
    if (out.scales.len != 1) {
        return TPR_FAIL(c, TPR_ERR_QUANT, out.index, "per-channel QUANTIZE is not supported");
    }
    if (in.type == TPR_TYPE_INT8) {
        if ((st = tpr_check_int8(c, &in, 1)) != TPR_OK) {
            return st;
        }
        ok = tpr_mult_ratio(in.scale, out.scale, &m, &s);
    } else if (in.type != TPR_TYPE_FLOAT32) {
        return TPR_FAIL(c, TPR_ERR_TYPE, in.index, "QUANTIZE input must be float32 or int8");
    } else {
        tpr_real_t r;
        ok = tpr_real_f32(out.scale, &r);
    }
    if (!ok) {
        return TPR_FAIL(c, TPR_ERR_QUANT, out.index, "scale not positive and finite, or scale ratio too large");
    }
    if (!c->eval) {
        return TPR_OK;
    }
    memcpy(&scale, &out.scale, 4);
    for (i = 0; i < in.count; ++i) {
        int32_t v;
        if (in.type == TPR_TYPE_INT8) {
            v = tpr_mbqm(((const int8_t *)in.data)[i] - in.zp, m, s);
        } else {
            float x;
            memcpy(&x, in.data + 4u * i, 4);
            v = quantize_one(x, scale);
        }
        ((int8_t *)out.data)[i] = tpr_sat8(v + out.zp);
    }
    return TPR_OK;
}

#endif
