/* DEPTHWISE_CONV_2D, int8 with per-channel weights: TFLite Micro's
 * reference_integer_ops::DepthwiseConvPerChannel.
 * input [N,H,W,C], filter [1,KH,KW,C*M], bias [C*M] int32, output [N,OH,OW,C*M].
 *
 * With depth multiplier 1, four channels at a time: channels are contiguous in the input and the
 * filter, so one word load brings a tap's four channels (DSP: widened with SXTAB16/SXTB16 and
 * multiplied with SMLABB/SMLATT into four accumulators). Remaining channels and other depth
 * multipliers go through the shared loops (tpr_conv_run): one input channel per output channel. */
#include "dot_int8.h"
#include "tpr_kernel.h"

#if TPR_OP_DEPTHWISE_CONV_2D

#if TPR_DSP
#include <arm_acle.h>
#endif

enum { DEPTH_MULTIPLIER = 3 };

/* Four channels' accumulators. */
typedef struct {
    uint32_t c0, c1, c2, c3;
} acc4_t;

/* Adds, for channels j < 4, the taps (xs and ws bytes apart) of (x[j] + off) * w[j]. */
static inline acc4_t taps4(const int8_t *x, const int8_t *w, int32_t taps, int32_t xs, int32_t ws,
                           int32_t off, acc4_t a)
{
    int32_t t;
#if TPR_DSP
    const uint32_t o2 = tpr_off2(off);
    for (t = 0; t < taps; ++t) {
        const uint32_t xv = tpr_ld32(x + t * xs), wv = tpr_ld32(w + t * ws);
        const uint32_t xl = tpr_sx_lo_add(o2, xv), wl = tpr_sx_lo(wv);
        const uint32_t xh = tpr_sx_hi_add(o2, xv), wh = tpr_sx_hi(wv);
        a.c0 = (uint32_t)__smlabb((int32_t)xl, (int32_t)wl, (int32_t)a.c0);
        a.c2 = (uint32_t)__smlatt((int32_t)xl, (int32_t)wl, (int32_t)a.c2);
        a.c1 = (uint32_t)__smlabb((int32_t)xh, (int32_t)wh, (int32_t)a.c1);
        a.c3 = (uint32_t)__smlatt((int32_t)xh, (int32_t)wh, (int32_t)a.c3);
    }
#else
    for (t = 0; t < taps; ++t) {
        const int8_t *xp = x + t * xs, *wp = w + t * ws;
        a.c0 += (uint32_t)((xp[0] + off) * wp[0]);
        a.c1 += (uint32_t)((xp[1] + off) * wp[1]);
        a.c2 += (uint32_t)((xp[2] + off) * wp[2]);
        a.c3 += (uint32_t)((xp[3] + off) * wp[3]);
    }
#endif
    return a;
}

/* Channels 0..nch-1 (a multiple of 4) with depth multiplier 1. */
static void depthwise4(tpr_ctx_t *c, const tpr_conv_t *p, int32_t nch)
{
    const int32_t ch = p->ic, kh = p->kh, kw = p->kw, sw = p->sw, dw = p->dw, iw = p->iw;
    const int32_t xtap = dw * ch, xrow = p->dh * iw * ch, wrow = kw * ch, zp = p->out.zp;
    const int32_t lo = p->lo, hi = p->hi;
    int32_t cb, b, oy, ox, k, j, mult[4], xl, xr;
    int shift[4];
    xl = (p->pad_w + sw - 1) / sw; /* columns xl..xr-1 see every tap of a kernel row */
    xr = iw - 1 - (kw - 1) * dw + p->pad_w;
    xr = xr < 0 ? 0 : xr / sw + 1;
    for (cb = 0; cb < nch; cb += 4) {
        const int8_t *xc = (const int8_t *)p->in.data + cb, *wc = (const int8_t *)p->w.data + cb;
        uint32_t bias[4];
        for (j = 0; j < 4; ++j) {
            (void)tpr_conv_mult(c, p, cb + j, &mult[j], &shift[j]); /* checked by tpr_init */
            bias[j] = p->bias ? (uint32_t)p->bias[cb + j] : 0u;
        }
        for (b = 0; b < p->nb; ++b) {
            for (oy = 0; oy < p->oh; ++oy) {
                const int32_t iy0 = oy * p->sh - p->pad_h;
                int32_t ky0, ky1, row0 = 0;
                const int8_t *w;
                int8_t *y = (int8_t *)p->out.data + (b * p->oh + oy) * p->ow * ch + cb;
                tpr_conv_taps(iy0, kh, p->dh, p->ih, &ky0, &ky1);
                if (ky1 > ky0) { /* input position of kernel row ky0 */
                    row0 = (b * p->ih + iy0 + ky0 * p->dh) * iw;
                }
                w = wc + (ky1 > ky0 ? ky0 * wrow : 0);
                for (ox = 0; ox < p->ow; ++ox, y += ch) {
                    int32_t kx0 = 0, kx1 = kw, off = -p->in.zp;
                    uint32_t v[4];
                    acc4_t a = {0, 0, 0, 0};
                    if (ox < xl || ox >= xr) {
                        tpr_conv_taps(ox * sw - p->pad_w, kw, dw, iw, &kx0, &kx1);
                    }
                    if (kx1 > kx0 && ky1 > ky0) { /* else no tap inside the input: the bias */
                        const int8_t *x = xc + (row0 + ox * sw - p->pad_w + kx0 * dw) * ch;
                        for (k = 0; k < ky1 - ky0; ++k) {
                            a = taps4(x + k * xrow, w + k * wrow + kx0 * ch, kx1 - kx0, xtap, ch, off, a);
                        }
                    }
                    v[0] = a.c0;
                    v[1] = a.c1;
                    v[2] = a.c2;
                    v[3] = a.c3;
                    for (j = 0; j < 4; ++j) {
                        y[j] = tpr_requant(v[j] + bias[j], mult[j], shift[j], zp, lo, hi);
                    }
                }
            }
        }
    }
}

tpr_status_t tpr_k_depthwise_conv_2d(tpr_ctx_t *c)
{
    tpr_conv_t p;
    tpr_status_t st;
    int32_t dm, n_out, fast = 0;

    if ((st = tpr_int8(c, 0, 0, &p.in, 4, 4)) || (st = tpr_int8(c, 0, 1, &p.w, 4, 4)) ||
        (st = tpr_int8(c, 1, 0, &p.out, 4, 4)) || (st = tpr_opt_pos(c, DEPTH_MULTIPLIER, 0, &dm)) ||
        (st = tpr_conv_prepare(c, &p, 1, p.w.dims[3]))) {
        return st;
    }
    n_out = p.w.dims[3];
    if (p.w.dims[0] != 1 || n_out != p.in.dims[3] * dm) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, p.w.index, "filter does not match depth_multiplier");
    }
    if (c->eval && dm == 1) {
        fast = n_out & ~3;
        depthwise4(c, &p, fast);
    }
    /* the rest (all of it while validating): output channel oc reads input channel oc / dm;
     * filter element at k * n_out + oc */
    return tpr_conv_run(c, &p, fast, n_out, 1, dm, 1, n_out);
}

#endif
