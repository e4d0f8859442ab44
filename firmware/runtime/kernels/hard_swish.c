/* HARD_SWISH, int8: TFLite's reference_ops::HardSwish (16-bit fixed point: the input on a 2^-7
 * finer scale, a "reluish" factor in [0, 1] and the product rescaled to the output), with the
 * multipliers of hard_swish_common.cc (float divisions, then QuantizeMultiplier and
 * DownScaleInt32ToInt16Multiplier). */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_HARD_SWISH

/* float32 quotient a/b as TFLite computes it, then QuantizeMultiplier and the 16-bit multiplier */
static int mult16(const tpr_real_t *a, const tpr_real_t *b, int16_t *m16, int *exp)
{
    tpr_real_t q;
    int32_t m32;
    tpr_real_div_to(a, b, 24, &q);
    if (q.m == 0 || q.e + 23 < -126 || q.e + 23 > 127) {
        return 0;
    }
    tpr_quantize_multiplier(q.m, q.e, &m32, exp);
    *m16 = m32 >= 0x7FFFFFFF - (1 << 15) ? (int16_t)32767 : (int16_t)((m32 + (1 << 15)) >> 16);
    return 1;
}

static int16_t sat_shl16(int16_t v, int k)
{
    /* TFLite shifts in 64 bits; from 16 on every nonzero int16 saturates, so 16 stands for any
     * larger shift and the product fits in 32 bits */
    int32_t r = (int32_t)v * (1 << (k < 16 ? k : 16));
#if defined(__ARM_FEATURE_SAT)
    return (int16_t)__ssat(r, 16);
#else
    return (int16_t)(r > 32767 ? 32767 : (r < -32768 ? -32768 : r));
#endif
}

/* SaturatingDoublingHighMul (no rounding) */
static int16_t dhm16(int16_t a, int16_t b)
{
    if (a == b && a == -32768) {
        return 32767;
    }
    return (int16_t)(((int32_t)a * (int32_t)b) / (1 << 15));
}

tpr_status_t tpr_k_hard_swish(tpr_ctx_t *c)
{
    tpr_tensor_t in, out;
    tpr_status_t st;
    tpr_real_t hires, outs, reluish_scale;
    int16_t out_m, relu_m;
    int out_exp, relu_exp;
    uint32_t i;
    if ((st = tpr_io(c, &in, 0, &out, TPR_IO_INQ | TPR_IO_OUTQ | TPR_IO_SAME)) != TPR_OK) {
        return st;
    }
    if (!tpr_real_f32(in.scale, &hires) || !tpr_real_f32(out.scale, &outs)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, in.index, "scale not positive and finite");
    }
    hires.e -= 7; /* (1.0f / 128.0f) * input_scale */
    reluish_scale.m = 3;  /* 3 / 32768 */
    reluish_scale.e = -15;
    if (!mult16(&hires, &outs, &out_m, &out_exp) || !mult16(&hires, &reluish_scale, &relu_m, &relu_exp) ||
        out_exp > 0 || relu_exp > 30) {
        return TPR_FAIL(c, TPR_ERR_QUANT, out.index, "scales out of HARD_SWISH's range");
    }
    if (!c->eval) {
        return TPR_OK;
    }
    for (i = 0; i < in.count; ++i) {
        int16_t x = (int16_t)(((const int8_t *)in.data)[i] - in.zp);
        int16_t hi_res = (int16_t)(x * (1 << 7));
        int16_t pre_out = tpr_srdhm16(hi_res, out_m);
        int16_t relu, v;
        /* a shift by 0 (when the exponent asks for none) leaves the value as it is */
        relu = sat_shl16(hi_res, relu_exp > 0 ? relu_exp - 1 : 0);
        relu = sat_shl16(tpr_srdhm16(relu, relu_m), relu_exp > 0);
        relu = tpr_rdbpot16(relu, relu_exp < 0 ? -relu_exp : 0);
        relu = (int16_t)((relu + (1 << 15)) >> 1);
        v = tpr_rdbpot16(dhm16(relu, pre_out), -out_exp);
        v = (int16_t)(uint16_t)((uint16_t)v + (uint16_t)out.zp); /* int16 arithmetic, as TFLite */
        ((int8_t *)out.data)[i] = tpr_sat8(v);
    }
    return TPR_OK;
}

#endif
