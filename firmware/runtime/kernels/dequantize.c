/* DEQUANTIZE: int8 -> float32, scale * (q - zero_point) (TFLite computes it in double from the
 * float scale and narrows to float: the same single rounding as this float product). */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_DEQUANTIZE

tpr_status_t tpr_k_dequantize(tpr_ctx_t *c)
{
    tpr_tensor_t in, out;
    tpr_status_t st;
    uint32_t i;
    float scale;
    if ((st = tpr_io(c, &in, 0, &out, TPR_IO_INQ | TPR_IO_SAME)) != TPR_OK) {
        return st;
    }
    if (out.type != TPR_TYPE_FLOAT32 || in.scales.len != 1) {
        return TPR_FAIL(c, TPR_ERR_TYPE, out.index, "DEQUANTIZE supports per-tensor int8 to float32");
    }
    if (!c->eval) {
        return TPR_OK;
    }
    memcpy(&scale, &in.scale, 4);
    for (i = 0; i < in.count; ++i) {
        float v = scale * (float)(((const int8_t *)in.data)[i] - in.zp);
        memcpy(out.data + 4u * i, &v, 4);
    }
    return TPR_OK;
}

#endif
