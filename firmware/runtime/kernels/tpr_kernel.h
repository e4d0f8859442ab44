/* Shared by the kernels: includes, and helpers for padding, scales and activations. Each kernel
 * file holds one operator: it validates its tensors and options (c->eval == 0, during tpr_init)
 * and runs its loops (c->eval == 1) with the arithmetic of tpr_fixedpoint.h, bit-exact with
 * TFLite Micro's reference kernels. */
#ifndef TPR_KERNEL_H
#define TPR_KERNEL_H

#include "tpr_fixedpoint.h"
#include "tpr_internal.h"
#if defined(__ARM_FEATURE_SAT)
#include <arm_acle.h> /* __ssat */
#endif

static inline int8_t tpr_clamp8(int32_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* TFLite padding enum */
enum { TPR_PAD_SAME = 0, TPR_PAD_VALID = 1 };

/* Output size and leading padding of one spatial dimension, as TFLite's padding.h computes them;
 * fails unless the output tensor has exactly that size. */
tpr_status_t tpr_padding(tpr_ctx_t *c, const tpr_tensor_t *out, uint32_t padding, int32_t in,
                         int32_t filt, int32_t stride, int32_t dil, int32_t out_size,
                         int32_t *pad);

/* A positive integer option (strides, filter sizes, dilations), 1..65535. */
tpr_status_t tpr_opt_pos(tpr_ctx_t *c, unsigned field, uint32_t dflt, int32_t *v);

/* Scale of channel i: per-channel when the tensor has several scales, else its single scale. */
uint32_t tpr_scale_at(const tpr_ctx_t *c, const tpr_tensor_t *t, uint32_t i);

/* Fused activation -> [lo, hi] on the output's int8 scale; fails for unsupported activations. */
tpr_status_t tpr_activation(tpr_ctx_t *c, uint32_t act, const tpr_tensor_t *out, int32_t *lo,
                            int32_t *hi);

/* Bias tensor (optional input 2) of a conv/FC: int32 with `n` elements; *bias = NULL if absent. */
tpr_status_t tpr_bias(tpr_ctx_t *c, uint32_t n, const int32_t **bias);

/* AVERAGE_POOL_2D (avg 1) and MAX_POOL_2D (avg 0): validation and loops (pool_common.c). */
tpr_status_t tpr_pool(tpr_ctx_t *c, int avg);

/* CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (conv_common.c): validation, and one loop nest
 * for all three. FULLY_CONNECTED is a 1x1 convolution over `batches` positions. The scalars
 * come first, within reach of Thumb's 16-bit loads and stores, then the tensors. */
typedef struct {
    uint8_t fc;    /* per-tensor FULLY_CONNECTED: its multiplier, from the float product */
    int32_t sh, sw, dh, dw, pad_h, pad_w, lo, hi;
    const int32_t *bias;
    /* batches, input height/width/channels, output height/width, filter height/width */
    int32_t nb, ih, iw, ic, oh, ow, kh, kw;
    tpr_tensor_t in, w, out;
    tpr_mult_layer_t ml; /* the multipliers' per-layer part (tpr_conv_op) */
} tpr_conv_t;
/* One filter scale for every output channel (per-tensor), so one multiplier for all of them. */
static inline int tpr_conv_one_scale(const tpr_conv_t *p)
{
    return p->fc || p->w.scales.len <= 1;
}
/* tpr_conv_op's operators */
enum { TPR_CONV_2D = 0, TPR_CONV_DEPTHWISE = 1, TPR_CONV_FC = 2 };
/* Validation of CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED (tensors, options, padding,
 * activation, bias, quantization, geometry, the multipliers' per-layer part), then the loops
 * (tpr_conv_run) of CONV_2D and of FULLY_CONNECTED with per-channel or symmetric weights; the
 * other cases return TPR_OK to their kernel, p filled in. */
tpr_status_t tpr_conv_op(tpr_ctx_t *c, tpr_conv_t *p, int kind);
/* Multiplier of output channel oc (returns 0 when the scales cannot give one): computed, and
 * stored in the arena while validating; read from there if it is kept (tpr_runtime.h). */
int tpr_conv_mult(const tpr_ctx_t *c, const tpr_conv_t *p, int32_t oc, tpr_mq_t *q);
/* The loops for output channels oc0..n_out-1 (validation: every channel's multiplier). Output
 * channel oc reads input channels from (oc / in_div) * fic (fic of them) and filter element
 * (oc, kernel position k, ic) at oc * w_oc + k * w_k + ic. */
tpr_status_t tpr_conv_run(tpr_ctx_t *c, const tpr_conv_t *p, int32_t oc0, int32_t n_out,
                          int32_t fic, int32_t in_div, int32_t w_oc, int32_t w_k);
/* Filter taps k0..k1-1 (of k) that land inside an input of size n, for a window starting at
 * input coordinate i0 with dilation dil; k1 == k0 when none does. */
#if defined(__GNUC__) && !defined(__OPTIMIZE_SIZE__)
__attribute__((always_inline)) /* the per-row code compiled for size would call it (TPR_SIZE_OPT);
                                  in -Os builds GCC's own choice is faster (single positions) */
#endif
static inline void tpr_conv_taps(int32_t i0, int32_t k, int32_t dil, int32_t n, int32_t *k0,
                                 int32_t *k1)
{
    int32_t a, b;
#if !TPR_SMALL
    if (dil == 1) { /* no division (a library call on Armv6-M) */
        a = i0 >= 0 ? 0 : -i0;
        b = i0 >= n ? 0 : n - i0;
    } else
#endif
    {
        a = i0 >= 0 ? 0 : (dil - 1 - i0) / dil;
        b = i0 >= n ? 0 : (n - i0 + dil - 1) / dil;
    }
    a = a < k ? a : k;
    b = b < k ? b : k;
    *k0 = a;
    *k1 = b > a ? b : a;
}
/* Requantize one accumulator (bias included): multiplier (>= 0, from tpr_quantize_multiplier),
 * output zero point, activation. */
#if defined(__GNUC__)
__attribute__((always_inline)) /* -Os would otherwise call it, then tpr_mbqm */
#endif
static inline int8_t tpr_requant(uint32_t acc, const tpr_mq_t *q, int32_t zp, int32_t lo,
                                 int32_t hi)
{
    int32_t v = tpr_mbqm_q((int32_t)acc, q) + zp;
    v = v < lo ? lo : v; /* two selects, not a nested conditional: no branches */
    v = v > hi ? hi : v;
    return (int8_t)v;
}

/* y[j] = tpr_requant(acc[j], &q[j], zp, lo, hi) for j < n: one out-of-line copy (conv_common.c)
 * for every activation range, the only form at -Os; speed-optimized kernels inline
 * tpr_requant_full for the usual range and call this for the rest. */
void tpr_requant_n(const uint32_t *acc, const tpr_mq_t *q, int32_t n, int32_t zp, int32_t lo,
                   int32_t hi, int8_t *y);

/* v saturated to int8: one SSAT on Armv7-M and later (tpr_clamp8's nested conditional gives
 * branches) */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int8_t tpr_sat8(int32_t v)
{
#if defined(__ARM_FEATURE_SAT)
    return (int8_t)__ssat(v, 8);
#else
    v = v < -128 ? -128 : v;
    return (int8_t)(v > 127 ? 127 : v);
#endif
}

/* tpr_requant for a block of channels known to have shifts of -2 and below (q->rsh != 0) and the
 * whole int8 range as activation range: no activation, and ReLU or ReLU6 whose output zero point
 * is -128, i.e. nearly every layer. The constant bounds become one SSAT on v7-M and later. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int8_t tpr_requant_full(uint32_t acc, const tpr_mq_t *q, int32_t zp)
{
#if TPR_SINGLE_ROUNDING
    int32_t v = tpr_mbqm_pos((int32_t)acc, q->m, q->shift) + zp;
#else
    int32_t v = tpr_mbqm_r((int32_t)acc, q->m, q->rnd, q->rsh) + zp;
#endif
    return tpr_sat8(v);
}

/* Whether tpr_requant_full may stand for tpr_requant for the n multipliers q with activation
 * range [lo, hi]: every shift -2 or below, and the whole int8 range. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int tpr_requant_full_applies(const tpr_mq_t *q, int n, int32_t lo, int32_t hi)
{
    int ok = lo == -128 && hi == 127, j;
#if defined(__GNUC__) && !defined(__clang__)
    _Pragma("GCC unroll 4") /* a loop here costs matmul4 registers: 1 % of fc-autoencoder */
#endif
    for (j = 0; j < n; ++j) {
        ok &= q[j].rsh != 0;
    }
    return ok;
}

/* tpr_mbqm for the element-wise kernels, whose shifts are not always below -2 (ADD's inputs: 0 and
 * often -1), where tpr_mbqm_q would call tpr_mbqm: inline for every shift where speed is asked
 * for, the shared copy at -Os (q->rnd and q->rsh unused there). */
static inline int32_t tpr_rescale(int32_t x, const tpr_mq_t *q)
{
#if TPR_SMALL
    return tpr_mbqm(x, q->m, q->shift);
#elif TPR_SINGLE_ROUNDING
    return tpr_mbqm_pos(x, q->m, q->shift);
#else
    return q->rsh != 0 ? tpr_mbqm_r(x, q->m, q->rnd, q->rsh) : tpr_mbqm_pos(x, q->m, q->shift);
#endif
}

/* Input 0 (and input 1 if in1 is given) and output 0 of an operator, then the checks `how` asks
 * for, in this order: input 0 int8 (IN8) or quantized int8 (INQ), input 1 quantized int8, output
 * int8 or quantized int8, input 0 of rank 1..hi (TPR_IO_RANK(hi)), as many elements in as out
 * (broadcast.c). */
enum { TPR_IO_IN8 = 1, TPR_IO_INQ = 3, TPR_IO_IN1Q = 4, TPR_IO_OUT8 = 8, TPR_IO_OUTQ = 24,
       TPR_IO_SAME = 32 };
#define TPR_IO_RANK(hi) ((unsigned)(hi) << 8)
tpr_status_t tpr_io(tpr_ctx_t *c, tpr_tensor_t *in, tpr_tensor_t *in1, tpr_tensor_t *out,
                    unsigned how);

/* Broadcasting of two inputs to the output shape (numpy rules, shapes aligned on the right). */
typedef struct {
    uint32_t n;                          /* rank of the output */
    int32_t dims[TPR_MAX_DIMS];          /* output shape */
    int32_t s1[TPR_MAX_DIMS], s2[TPR_MAX_DIMS]; /* element strides of the inputs, 0 if broadcast */
    int32_t idx[TPR_MAX_DIMS];
    int32_t o1, o2;                      /* current offsets into the inputs */
} tpr_bcast_t;
tpr_status_t tpr_bcast_init(tpr_ctx_t *c, const tpr_tensor_t *a, const tpr_tensor_t *b,
                            const tpr_tensor_t *out, tpr_bcast_t *bc);
void tpr_bcast_next(tpr_bcast_t *bc);

/* LOGISTIC (tanh 0) and TANH (tanh 1): validation and loop (logistic.c). */
tpr_status_t tpr_logistic_tanh(tpr_ctx_t *c, int tanh);

#endif
