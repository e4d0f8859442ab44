/* DEPTHWISE_CONV_2D, int8 with per-channel weights: TFLite Micro's
 * reference_integer_ops::DepthwiseConvPerChannel.
 * input [N,H,W,C], filter [1,KH,KW,C*M], bias [C*M] int32, output [N,OH,OW,C*M].
 *
 * With depth multiplier 1, four channels at a time: channels are contiguous in the input and the
 * filter, so one word load brings a tap's four channels (DSP: widened with SXTAB16/SXTB16 and
 * multiplied with SMLABB/SMLATT into four accumulators). Remaining channels and other depth
 * multipliers go through the shared loops (tpr_conv_run): one input channel per output channel. */
#define TPR_HOT_FILE /* TPR_FAST_KERNELS applies: tpr_config.h */
#include "dot_int8.h"
#include "tpr_kernel.h"

#if TPR_OP_DEPTHWISE_CONV_2D

/* Four channels' accumulators. */
typedef struct {
    uint32_t c0, c1, c2, c3;
} acc4_t;

/* One tap of four channels: a0..a3 += (x[j] + off) * w[j]. On the DSP path the offset is added
 * by SXTAB16 while x widens (o2: the offset in both lanes; 0 when the caller hoisted it). */
#if TPR_DSP
#define TAP4(xp, wp, o2, a)                                                                      \
    do {                                                                                         \
        const uint32_t xv_ = tpr_ld32(xp), wv_ = tpr_ld32(wp);                                   \
        const uint32_t xl_ = tpr_sx_lo_add(o2, xv_), wl_ = tpr_sx_lo(wv_);                       \
        const uint32_t xh_ = tpr_sx_hi_add(o2, xv_), wh_ = tpr_sx_hi(wv_);                       \
        (a).c0 = (uint32_t)__smlabb((int32_t)xl_, (int32_t)wl_, (int32_t)(a).c0);                \
        (a).c2 = (uint32_t)__smlatt((int32_t)xl_, (int32_t)wl_, (int32_t)(a).c2);                \
        (a).c1 = (uint32_t)__smlabb((int32_t)xh_, (int32_t)wh_, (int32_t)(a).c1);                \
        (a).c3 = (uint32_t)__smlatt((int32_t)xh_, (int32_t)wh_, (int32_t)(a).c3);                \
    } while (0)
#else
#define TAP4(xp, wp, off, a)                                                                     \
    do {                                                                                         \
        const int8_t *x_ = (xp), *w_ = (wp);                                                     \
        (a).c0 += (uint32_t)((x_[0] + (off)) * w_[0]);                                           \
        (a).c1 += (uint32_t)((x_[1] + (off)) * w_[1]);                                           \
        (a).c2 += (uint32_t)((x_[2] + (off)) * w_[2]);                                           \
        (a).c3 += (uint32_t)((x_[3] + (off)) * w_[3]);                                           \
    } while (0)
#endif

#if TPR_DSP
#define OFFSET_ARG(off) tpr_off2(off)
#else
#define OFFSET_ARG(off) (off)
#endif

/* Adds the taps (xs and ws bytes apart) of `rows` kernel rows (xr, wr bytes apart), `off` added
 * to each input value (OFFSET_ARG form). One copy at -Os. */
#if TPR_SMALL
__attribute__((noinline))
#endif
static acc4_t window4(const int8_t *x, const int8_t *w, int32_t rows, int32_t taps, int32_t xs,
                      int32_t ws, int32_t xr, int32_t wr, uint32_t off, acc4_t a)
{
    int32_t k, t;
    for (k = 0; k < rows; ++k, x += xr, w += wr) {
        for (t = 0; t < taps; ++t) {
            TAP4(x + t * xs, w + t * ws, (int32_t)off, a);
        }
    }
    return a;
}

#if TPR_MVE
/* The full 3-wide window of contiguous taps (no dilation), offset hoisted, with Helium: the four
 * channels of a tap are the four int32 lanes of one VLDRB.S32, so a tap is two loads, a multiply
 * and an add. */
static __attribute__((noinline)) void window4_k3(const int8_t *x, const int8_t *w, int32_t rows,
                                                 int32_t ch, int32_t xr, acc4_t *acc)
{
    int32_t v[4] = {(int32_t)acc->c0, (int32_t)acc->c1, (int32_t)acc->c2, (int32_t)acc->c3};
    int32x4_t a = vldrwq_s32(v);
    int32_t k;
    for (k = 0; k < rows; ++k, x += xr, w += 3 * ch) {
        a = vaddq_s32(a, vmulq_s32(vldrbq_s32(x), vldrbq_s32(w)));
        a = vaddq_s32(a, vmulq_s32(vldrbq_s32(x + ch), vldrbq_s32(w + ch)));
        a = vaddq_s32(a, vmulq_s32(vldrbq_s32(x + 2 * ch), vldrbq_s32(w + 2 * ch)));
    }
    vstrwq_s32(v, a);
    acc->c0 = (uint32_t)v[0];
    acc->c1 = (uint32_t)v[1];
    acc->c2 = (uint32_t)v[2];
    acc->c3 = (uint32_t)v[3];
}
#define TPR_DW_K3 1
#elif TPR_DSP && defined(__OPTIMIZE__)
/* The full 3-wide window of contiguous taps (no dilation), offset hoisted, in assembly: the
 * compiler spills in the large caller. Per kernel row, 6 loads, 12 SXTB16, 12 SMLABB/SMLATT and
 * 4 pointer steps for 12 multiply-accumulates (the 4 channels are lanes 0/2 and 1/3 of a word).
 * Not inlined, so that the thirteen registers are free. */
static __attribute__((noinline)) void window4_k3(const int8_t *x, const int8_t *w, int32_t rows,
                                                 int32_t ch, int32_t xr, acc4_t *acc)
{
    uint32_t a0 = acc->c0, a1 = acc->c1, a2 = acc->c2, a3 = acc->c3, t0, t1, t2, t3;
    const int32_t xstep = xr - 2 * ch; /* from tap 2 of a row to tap 0 of the next */
#define TPR_DW_TAP(xa, wa)                                                                       \
    "ldr %[t0], " xa "\n\t"                                                                      \
    "ldr %[t1], " wa "\n\t"                                                                      \
    "sxtb16 %[t2], %[t0]\n\t"                                                                    \
    "sxtb16 %[t3], %[t1]\n\t"                                                                    \
    "smlabb %[a0], %[t2], %[t3], %[a0]\n\t"                                                      \
    "smlatt %[a2], %[t2], %[t3], %[a2]\n\t"                                                      \
    "sxtb16 %[t2], %[t0], ror #8\n\t"                                                            \
    "sxtb16 %[t3], %[t1], ror #8\n\t"                                                            \
    "smlabb %[a1], %[t2], %[t3], %[a1]\n\t"                                                      \
    "smlatt %[a3], %[t2], %[t3], %[a3]\n\t"
    __asm__("1:\n\t"
            TPR_DW_TAP("[%[x]]", "[%[w]]")
            TPR_DW_TAP("[%[x], %[ch]]", "[%[w], %[ch]]")
            "add %[x], %[x], %[ch], lsl #1\n\t"
            "add %[w], %[w], %[ch], lsl #1\n\t"
            TPR_DW_TAP("[%[x]]", "[%[w]]")
            "add %[x], %[x], %[xs]\n\t"
            "add %[w], %[w], %[ch]\n\t"
            "subs %[rows], %[rows], #1\n\t"
            "bne 1b"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w),
              [rows] "+r"(rows), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3)
            : [ch] "r"(ch), [xs] "r"(xstep)
            : "cc", "memory");
#undef TPR_DW_TAP
    acc->c0 = a0;
    acc->c1 = a1;
    acc->c2 = a2;
    acc->c3 = a3;
}
#define TPR_DW_K3 1
#else
#define TPR_DW_K3 0
#endif

/* Geometry of depthwise4: in bytes, channels (the filter's tap step), the input's tap, kernel row
 * and output column steps, the filter's row step, the output's row step; in input positions, the
 * step from one output row to the next (stride_h rows). */
typedef struct {
    int32_t ch, kw, dw, xtap, xrow, xcol, wrow, yrow, prow;
} dwgeo_t;

/* One block of four channels in a run of output rows with the same kernel rows inside the input:
 * those rows, requantization. */
typedef struct {
    const int8_t *w; /* filter at the first kernel row inside the input */
    int32_t rows;
    uint32_t base[4]; /* bias + offset x weights of the rows: the start of a whole window */
    uint32_t bias[4];
    tpr_mq_t q[4];
    int32_t zp, lo, hi;
    int full; /* tpr_requant_full applies to the four channels (not at -Os) */
} dwblk_t;

/* The four outputs: tpr_requant_full inline and unrolled where speed is asked for and it
 * applies (stored after every parameter is read: an int8_t store may alias them), else the one
 * shared copy. */
#if defined(__GNUC__) && !TPR_SMALL
__attribute__((always_inline)) /* GCC would call it: 3 % of ds-cnn */
#endif
static inline void requant4(const dwblk_t *k, const acc4_t *a, int8_t *y)
{
    uint32_t v[4];
#if !TPR_SMALL
    if (k->full) {
        const int32_t zp = k->zp;
        const int8_t y0 = tpr_requant_full(a->c0, &k->q[0], zp);
        const int8_t y1 = tpr_requant_full(a->c1, &k->q[1], zp);
        const int8_t y2 = tpr_requant_full(a->c2, &k->q[2], zp);
        const int8_t y3 = tpr_requant_full(a->c3, &k->q[3], zp);
        y[0] = y0;
        y[1] = y1;
        y[2] = y2;
        y[3] = y3;
        return;
    }
#endif
    memcpy(v, a, sizeof v); /* acc4_t is four uint32_t */
    tpr_requant_n(v, k->q, 4, k->zp, k->lo, k->hi, y);
}

/* n_rows x n_cols outputs whose windows hold every tap of the kernel rows, from input x and
 * output y: the offset is in k->base. Its own function, so that the loop's few values stay in
 * registers. */
static __attribute__((noinline)) void whole_windows(const dwgeo_t *g, const dwblk_t *k,
                                                    const int8_t *x, int8_t *y, int32_t n_rows,
                                                    int32_t n_cols)
{
    const int32_t xrun = g->prow * g->ch;
    for (; n_rows > 0; --n_rows, x += xrun, y += g->yrow) {
        const int8_t *xp = x;
        int8_t *yp = y;
        int32_t n;
        for (n = n_cols; n > 0; --n, xp += g->xcol, yp += g->ch) {
            acc4_t a;
            a.c0 = k->base[0];
            a.c1 = k->base[1];
            a.c2 = k->base[2];
            a.c3 = k->base[3];
#if TPR_DW_K3
            if (g->kw == 3 && g->dw == 1) {
                window4_k3(xp, k->w, k->rows, g->ch, g->xrow, &a);
            } else
#endif
            {
                a = window4(xp, k->w, k->rows, g->kw, g->xtap, g->ch, g->xrow, g->wrow,
                            OFFSET_ARG(0), a);
            }
            requant4(k, &a, yp);
        }
    }
}

/* Output column ox at a border (some taps outside the input, or no kernel row inside) in n_rows
 * rows: the taps inside, the offset added to each. xi: input position of tap 0 in the first row
 * (may lie before the input). */
static void border_column(const tpr_conv_t *p, const dwgeo_t *g, const dwblk_t *k,
                          const int8_t *xc, int32_t xi, int8_t *y, int32_t ox, int32_t n_rows)
{
    const uint32_t o = OFFSET_ARG(-p->in.zp);
    int32_t kx0, kx1;
    tpr_conv_taps(ox * p->sw - p->pad_w, g->kw, g->dw, p->iw, &kx0, &kx1);
    if (k->rows == 0) {
        kx1 = kx0; /* no kernel row inside the input: the bias alone */
    }
    for (; n_rows > 0; --n_rows, xi += g->prow, y += g->yrow) {
        acc4_t a;
        a.c0 = k->bias[0];
        a.c1 = k->bias[1];
        a.c2 = k->bias[2];
        a.c3 = k->bias[3];
#if !TPR_SMALL
        if (kx1 - kx0 == 2 && g->dw == 1) { /* a 3-wide kernel at a padded border, unrolled */
            const int8_t *x = xc + (xi + kx0) * g->ch, *w = k->w + kx0 * g->ch;
            const int32_t ch = g->ch;
            int32_t r;
            for (r = 0; r < k->rows; ++r, x += g->xrow, w += g->wrow) {
                TAP4(x, w, (int32_t)o, a);
                TAP4(x + ch, w + ch, (int32_t)o, a);
            }
        } else
#endif
        if (kx1 > kx0) {
            a = window4(xc + (xi + kx0 * g->dw) * g->ch, k->w + kx0 * g->ch, k->rows, kx1 - kx0,
                        g->xtap, g->ch, g->xrow, g->wrow, o, a);
        }
        requant4(k, &a, y);
    }
}

/* Channels 0..nch-1 (a multiple of 4) with depth multiplier 1. Output positions whose window
 * lies inside the input (all of it but the borders) have the input offset hoisted: bias +
 * offset x (sum of the weights of the rows) starts the accumulators; the border positions add
 * the offset to each tap they read. Output rows go in runs with the same kernel rows inside the
 * input (all but the top and bottom few). */
TPR_SIZE_OPT static void depthwise4(tpr_ctx_t *c, const tpr_conv_t *p, int32_t nch)
{
    const int32_t ch = p->ic, kh = p->kh, kw = p->kw, sw = p->sw, iw = p->iw, off = -p->in.zp;
    int32_t cb, b, oy, ox, j, xl, xr;
    dwgeo_t g;
    dwblk_t k;
    g.ch = ch;
    g.kw = kw;
    g.dw = p->dw;
    /* a step that cannot occur within the input is never taken (tpr_conv_run): 0 */
    g.xtap = (p->dw < iw ? p->dw : 0) * ch;
    g.xrow = (p->dh < p->ih ? p->dh : 0) * iw * ch;
    g.xcol = (sw < iw ? sw : 0) * ch;
    g.wrow = kw * ch;
    g.yrow = p->ow * ch;
    g.prow = (p->sh < p->ih ? p->sh : 0) * iw;
    k.zp = p->out.zp;
    k.lo = p->lo;
    k.hi = p->hi;
    xl = (p->pad_w + sw - 1) / sw; /* columns xl..xr-1 see every tap of a kernel row */
    xr = iw - 1 - (kw - 1) * p->dw + p->pad_w;
    xr = xr < 0 ? 0 : xr / sw + 1;
    xr = xr < p->ow ? xr : p->ow;
    xl = xl < xr ? xl : xr;
    for (cb = 0; cb < nch; cb += 4) {
        const int8_t *xc = (const int8_t *)p->in.data + cb, *wc = (const int8_t *)p->w.data + cb;
        for (j = 0; j < 4; ++j) {
            if (!TPR_SMALL && tpr_conv_one_scale(p) && cb + j > 0) { /* one multiplier for all */
                k.q[j] = k.q[0];
            } else {
                (void)tpr_conv_mult(c, p, cb + j, &k.q[j]); /* checked by tpr_init */
            }
            k.bias[j] = p->bias ? (uint32_t)p->bias[cb + j] : 0u;
        }
#if !TPR_SMALL
        k.full = tpr_requant_full_applies(k.q, 4, k.lo, k.hi);
#endif
        for (b = 0; b < p->nb; ++b) {
            int32_t run;
            for (oy = 0; oy < p->oh; oy += run) {
                const int32_t iy0 = oy * p->sh - p->pad_h;
                int32_t ky0, ky1, a0, a1, row0 = 0;
                int8_t *y = (int8_t *)p->out.data + (b * p->oh + oy) * p->ow * ch + cb;
                tpr_conv_taps(iy0, kh, p->dh, p->ih, &ky0, &ky1);
                for (run = 1; oy + run < p->oh; ++run) { /* the rows with the same kernel rows */
                    tpr_conv_taps(iy0 + run * p->sh, kh, p->dh, p->ih, &a0, &a1);
                    if (a0 != ky0 || a1 != ky1) {
                        break;
                    }
                }
                k.rows = ky1 - ky0;
                k.w = wc + (k.rows > 0 ? ky0 * g.wrow : 0);
                if (k.rows == 0) { /* no kernel row inside the input: every column is the bias */
                    for (ox = 0; ox < p->ow; ++ox) {
                        border_column(p, &g, &k, xc, 0, y + ox * ch, ox, run);
                    }
                    continue;
                }
                row0 = (b * p->ih + iy0 + ky0 * p->dh) * iw; /* input position of kernel row ky0 */
                for (j = 0; j < 4; ++j) { /* bias + offset x weights of the rows */
                    k.base[j] = k.bias[j] + (uint32_t)off * tpr_sum8(k.w + j, 1, k.rows * kw, ch);
                }
                for (ox = 0; ox < xl; ++ox) {
                    border_column(p, &g, &k, xc, row0 + ox * sw - p->pad_w, y + ox * ch, ox, run);
                }
                if (xr > xl) {
                    whole_windows(&g, &k, xc + (row0 + xl * sw - p->pad_w) * ch, y + xl * ch, run,
                                  xr - xl);
                }
                for (ox = xr; ox < p->ow; ++ox) {
                    border_column(p, &g, &k, xc, row0 + ox * sw - p->pad_w, y + ox * ch, ox, run);
                }
            }
        }
    }
}

TPR_SIZE_OPT tpr_status_t tpr_k_depthwise_conv_2d(tpr_ctx_t *c)
{
    tpr_conv_t p;
    int32_t n_out, dm, fast = 0;
    const tpr_status_t st = tpr_conv_op(c, &p, TPR_CONV_DEPTHWISE);
    if (st != TPR_OK) {
        return st;
    }
    n_out = p.w.dims[3];
    dm = n_out / p.ic; /* n_out is C x depth_multiplier (tpr_conv_op) */
    if (c->eval && dm == 1) {
        fast = n_out & ~3;
        depthwise4(c, &p, fast);
    }
    /* the rest (all of it while validating): output channel oc reads input channel oc / dm;
     * filter element at k * n_out + oc */
    return tpr_conv_run(c, &p, fast, n_out, 1, dm, 1, n_out);
}

#endif
