/* The loop nest of CONV_2D, FULLY_CONNECTED (a 1x1 convolution over its batch rows) and the
 * general case of DEPTHWISE_CONV_2D (depth multipliers above one, channels beyond a multiple of
 * four), computing what TFLite Micro's reference ConvPerChannel, FullyConnected(PerChannel) and
 * DepthwiseConvPerChannel compute, without im2col:
 *
 *  - output channels two at a time (one when the next channel is in another group);
 *  - the window of a position is the taps that land inside the input (as the reference skips
 *    padding), described as runs of contiguous bytes: one run per kernel row when a row's taps
 *    and channels are contiguous in both input and filter, else one run per tap;
 *  - in each output row, neighbouring positions whose windows hold every tap of the row go two at
 *    a time (tpr_dot22, every load feeding two multiply-accumulates), with the input offset
 *    hoisted: offset x (sum of the weights of the rows), once per row; the other positions go one
 *    at a time (tpr_dot12, the offset applied to each input value);
 *  - 1x1 convolutions with stride 1 are one row of positions (a matrix product).
 * Multipliers are computed once per output channel and invoke (once per invoke for per-tensor
 * scales); requantization is tpr_mbqm. */
#define TPR_HOT_FILE /* TPR_FAST_KERNELS applies: tpr_config.h */
#include "dot_int8.h"
#include "tpr_kernel.h"

#if TPR_OP_CONV_2D || TPR_OP_DEPTHWISE_CONV_2D || TPR_OP_FULLY_CONNECTED

void tpr_requant_n(const uint32_t *acc, const tpr_mq_t *q, int32_t n, int32_t zp, int32_t lo,
                   int32_t hi, int8_t *y)
{
    int32_t j;
    for (j = 0; j < n; ++j) {
        y[j] = tpr_requant(acc[j], &q[j], zp, lo, hi);
    }
}

uint32_t tpr_sum8(const int8_t *p, int32_t n, int32_t rows, int32_t stride)
{
    uint32_t s = 0;
    int32_t r, k;
    for (r = 0; r < rows; ++r, p += stride) {
        k = 0;
#if TPR_MVE
        if (n >= 16) { /* sixteen at a time (VADDVA), the tail predicated */
            int32_t v = 0;
            for (; k < n; k += 16) {
                v = vaddvaq_s8(v, vldrbq_z_s8(p + k, vctp8q((uint32_t)(n - k))));
            }
            s += (uint32_t)v;
        }
#endif
        for (; k < n; ++k) {
            s += (uint32_t)(int32_t)p[k];
        }
    }
    return s;
}

#if TPR_MULT_CACHE
/* Multipliers in the arena, from its top down, in groups of four: four int32 m, then their four
 * int8 shifts (20 bytes, aligned; the count is not known before the last one is stored).
 * Multiplier i of the model: its group (m at word i % 4, the shift at byte 16 + i % 4). */
static uint8_t *mult_group(const tpr_model_t *m, uint32_t i)
{
    return m->arena + (m->arena_size & ~3u) - TPR_MULT_GROUP_BYTES * (i / 4u + 1u);
}

/* Validating: store it if its group lies above the planner's scratch (tpr_invoke then reads the
 * groups above the planned activations). */
TPR_COLD static void store_mult(const tpr_ctx_t *c, uint32_t i, const tpr_mq_t *q)
{
    if (i / 4u < c->m->mult_room) {
        uint8_t *g = mult_group(c->m, i);
        ((int32_t *)(void *)g)[i % 4u] = q->m;
        g[16u + i % 4u] = (uint8_t)(int8_t)q->shift; /* -31..31 when tpr_init succeeds */
    }
}
#endif

int tpr_conv_mult(const tpr_ctx_t *c, const tpr_conv_t *p, int32_t oc, tpr_mq_t *q)
{
    int ok;
#if TPR_MULT_CACHE
    const uint32_t i = c->mult_base + (tpr_conv_one_scale(p) ? 0u : (uint32_t)oc);
    if (c->eval && i < c->m->mult_kept) { /* stored by tpr_init */
        const uint8_t *g = mult_group(c->m, i);
        q->m = ((const int32_t *)(const void *)g)[i % 4u];
        q->shift = (int8_t)g[16u + i % 4u];
        tpr_mq_prepare(q);
        return 1;
    }
#endif
    q->m = 0;
    q->shift = 0; /* defined when the scales give no multiplier (tpr_init then fails) */
    ok = tpr_mult_channel(&p->ml, tpr_scale_at(c, &p->w, (uint32_t)oc), &q->m, &q->shift);
    tpr_mq_prepare(q);
#if TPR_MULT_CACHE
    if (!c->eval) {
        store_mult(c, i, q);
    }
#endif
    return ok;
}

/* One row of outputs for one block of output channels. */
typedef struct {
    const int8_t *x;     /* input of the block's channels (group) */
    int32_t row0;        /* input position (b, iy, 0) of kernel row ky0: (b * ih + iy) * iw */
    const int8_t *w;     /* filter of the first channel at kernel row ky0 */
    int8_t *y;           /* output at column 0, first channel */
    int32_t rows;        /* kernel rows inside the input */
    int32_t dwc;         /* second channel's filter: w + dwc (0: one channel, computed twice) */
    const uint32_t *wide; /* both channels' filters widened by tpr_widen2 at row ky0, or NULL */
    uint32_t base[2];    /* bias + offset x weights of the rows (every tap) */
    uint32_t bias[2];
    tpr_mq_t q[2];
    int full;            /* two channels (dwc != 0), tpr_requant_full applies (not at -Os) */
} row_t;

/* Geometry shared by every row. A window is `rows` kernel rows (xrow, wrow bytes apart) of
 * `taps` runs (xtap, w_k bytes apart) of n contiguous bytes (contig: one run per row). */
typedef struct {
    int32_t n_out, fic, w_k, ic, kw, dw, sw, pad_w, iw;
    int32_t xrow, wrow, dx, xtap;
    int contig;
} geo_t;

/* Columns ox..ox_end-1 (ox_end - ox even), each seeing every tap of the rows: two at a time
 * with tpr_dot22; the input offset is in r->base. */
__attribute__((noinline)) static void pairs(const tpr_conv_t *p, const geo_t *g, const row_t *r, int32_t ox, int32_t ox_end)
{
    const int32_t n = g->contig ? g->kw * g->fic : g->fic, taps = g->contig ? 1 : g->kw;
    const int32_t xtap = g->xtap, dx = g->dx, dwc = r->dwc, rows = r->rows;
    const int32_t xrow = g->xrow, wrow = g->wrow, w_k = g->w_k, n_out = g->n_out;
    const int32_t zp = p->out.zp, lo = p->lo, hi = p->hi, nq = 1 + (dwc != 0);
#if !TPR_SMALL
    const tpr_mq_t *q0 = &r->q[0], *q1 = &r->q[1];
#endif
    const uint32_t b0 = r->base[0], b1 = r->base[1];
    const int8_t *w = r->w;
    for (; ox < ox_end; ox += 2) {
        const int8_t *x = r->x + (r->row0 + ox * g->sw - g->pad_w) * g->ic;
        int8_t *y = r->y + ox * n_out;
        tpr_acc_t a = {0, 0, 0, 0};
        int32_t k, t;
#if TPR_WIDE && !TPR_SMALL
        if (r->wide != 0) { /* runs of n bytes (one per kernel row), weights widened */
            uint32_t v[4] = {0, 0, 0, 0};
            tpr_words22w(x, dx, r->wide, n >> 2, rows, xrow, v);
            a.a0 = v[0];
            a.a1 = v[1];
            a.b0 = v[2];
            a.b1 = v[3];
        } else
#endif
        if (taps == 1) { /* one run per kernel row */
            for (k = 0; k < rows; ++k) {
                a = tpr_dot22(x + k * xrow, x + k * xrow + dx, w + k * wrow, w + k * wrow + dwc, n, a);
            }
        } else {
            for (k = 0; k < rows; ++k) {
                const int8_t *xk = x + k * xrow, *wk = w + k * wrow;
                for (t = 0; t < taps; ++t) {
                    a = tpr_dot22(xk + t * xtap, xk + t * xtap + dx, wk + t * w_k,
                                  wk + t * w_k + dwc, n, a);
                }
            }
        }
#if !TPR_SMALL
        if (r->full) {
            y[0] = tpr_requant_full(a.a0 + b0, q0, zp);
            y[n_out] = tpr_requant_full(a.b0 + b0, q0, zp);
            y[1] = tpr_requant_full(a.a1 + b1, q1, zp);
            y[n_out + 1] = tpr_requant_full(a.b1 + b1, q1, zp);
            continue;
        }
#endif
        {
            uint32_t v[2];
            v[0] = a.a0 + b0;
            v[1] = a.a1 + b1;
            tpr_requant_n(v, r->q, nq, zp, lo, hi, y);
            v[0] = a.b0 + b0;
            v[1] = a.b1 + b1;
            tpr_requant_n(v, r->q, nq, zp, lo, hi, y + n_out);
        }
    }
}

/* Column ox alone: the taps inside the input, tpr_dot12. */
static void single(const tpr_conv_t *p, const geo_t *g, const row_t *r, int32_t ox, int32_t off)
{
    int32_t kx0, kx1, n, taps, k, t;
    tpr_acc_t a = {0, 0, 0, 0};
    const int8_t *x, *w;
    int8_t *y = r->y + ox * g->n_out;
    tpr_conv_taps(ox * g->sw - g->pad_w, g->kw, g->dw, g->iw, &kx0, &kx1);
    n = g->contig ? (kx1 - kx0) * g->fic : g->fic;
    taps = g->contig ? (kx1 > kx0) : kx1 - kx0;
    a.a0 = r->bias[0];
    a.a1 = r->bias[1];
    if (r->rows > 0 && kx1 > kx0) { /* else no tap lies inside the input: the bias alone */
        x = r->x + (r->row0 + ox * g->sw - g->pad_w + kx0 * g->dw) * g->ic;
        w = r->w + kx0 * g->w_k;
#if TPR_DSP && !TPR_SMALL
        if (taps == 1 && n == 4 && g->wrow == 4) { /* one word per kernel row */
            a = tpr_dot12_words(x, w, r->dwc, r->rows, g->xrow, off, a);
        } else
#endif
        for (k = 0; k < r->rows; ++k) {
            for (t = 0; t < taps; ++t) {
                const int8_t *xp = x + k * g->xrow + t * g->dw * g->ic;
                const int8_t *wp = w + k * g->wrow + t * g->w_k;
                a = tpr_dot12(xp, wp, wp + r->dwc, n, off, a);
            }
        }
    }
#if !TPR_SMALL
    if (r->full) { /* two channels */
        const int8_t y0 = tpr_requant_full(a.a0, &r->q[0], p->out.zp);
        y[1] = tpr_requant_full(a.a1, &r->q[1], p->out.zp);
        y[0] = y0;
        return;
    }
#endif
    {
        uint32_t v[2];
        v[0] = a.a0;
        v[1] = a.a1;
        tpr_requant_n(v, r->q, 1 + (r->dwc != 0), p->out.zp, p->lo, p->hi, y);
    }
}

#if TPR_WIDE
/* A 1x1 convolution with stride 1 and no padding, or FULLY_CONNECTED, one group: output channels
 * four at a time over every position, their weights widened once (tpr_widen4, on the stack) and
 * the input offset hoisted (offset x sum of each channel's weights). With one position (and
 * TPR_WORDS14X), the input is widened instead, with its offset (tpr_widen_x, tpr_words14x).
 * `wide`: TPR_WIDE_WORDS words. Returns the channels done, a multiple of four; the caller runs
 * the rest. */
#if !TPR_SMALL
__attribute__((noinline)) /* inlined, it costs tpr_conv_run's other loops registers (2 % of ds-cnn) */
#endif
TPR_SIZE_OPT /* its inner loops are assembly: for size, it is smaller and no slower (measured) */
static int32_t matmul4(const tpr_ctx_t *c, const tpr_conv_t *p, int32_t positions, int32_t n_out,
                       int32_t depth, uint32_t *wide)
{
    const int32_t off = -p->in.zp, zp = p->out.zp, lo = p->lo, hi = p->hi, n4 = n_out & ~3;
    const int one = TPR_WORDS14X && !TPR_MVE && positions == 1; /* widen the input, not weights */
    const int same = tpr_conv_one_scale(p);
    int32_t oc, j, pos;
    tpr_mq_t q[4];
#if !TPR_SMALL
    int full; /* the block's requantization is tpr_requant_full's */
#endif
#if TPR_WORDS14X && !TPR_MVE
    if (one) {
        tpr_widen_x((const int8_t *)p->in.data, depth, tpr_off2(off), wide);
    }
#endif
    for (oc = 0; oc < n4; oc += 4) {
        const int8_t *w = (const int8_t *)p->w.data + oc * depth;
        const int8_t *x = (const int8_t *)p->in.data;
        int8_t *y = (int8_t *)p->out.data + oc;
        uint32_t base[4];
        for (j = 0; j < 4; ++j) {
            if (!TPR_SMALL && same && oc + j > 0) { /* per-tensor scales: one multiplier */
                q[j] = q[0];
            } else {
                (void)tpr_conv_mult(c, p, oc + j, &q[j]); /* checked by tpr_init */
            }
            base[j] = (p->bias ? (uint32_t)p->bias[oc + j] : 0u) +
                      (one ? 0u : (uint32_t)off * tpr_sum8(w + j * depth, depth, 1, depth));
        }
#if !TPR_SMALL
        full = tpr_requant_full_applies(q, 4, lo, hi);
#endif
#if !TPR_MVE
        if (!one) {
            tpr_widen4(w, depth, depth, wide);
        }
#endif
        for (pos = 0; pos < positions; ++pos, x += depth, y += n_out) {
            uint32_t a[4];
            memcpy(a, base, sizeof a);
#if TPR_MVE
            tpr_dot14_mve(x, w, depth, a);
            (void)wide;
#else
#if TPR_WORDS14X
            if (one) {
                tpr_words14x(wide, w, depth, depth >> 2, a);
            } else
#endif
            {
                tpr_words14w(x, wide, depth >> 2, a);
            }
#endif
#if !TPR_SMALL /* unrolled: GCC does not unroll at -O2, and a loop costs a third of the requantization */
            if (full) {
                int8_t v[4];
                v[0] = tpr_requant_full(a[0], &q[0], zp);
                v[1] = tpr_requant_full(a[1], &q[1], zp);
                v[2] = tpr_requant_full(a[2], &q[2], zp);
                v[3] = tpr_requant_full(a[3], &q[3], zp);
                memcpy(y, v, sizeof v); /* after the parameters are read: an int8 store may alias them */
            } else
#endif
            {
                tpr_requant_n(a, q, 4, zp, lo, hi, y);
            }
        }
    }
    return n4;
}
#endif

TPR_SIZE_OPT tpr_status_t tpr_conv_run(tpr_ctx_t *c, const tpr_conv_t *p, int32_t oc0, int32_t n_out,
                          int32_t fic, int32_t in_div, int32_t w_oc, int32_t w_k)
{
    const int32_t off = -p->in.zp, kh = p->kh, kw = p->kw, ic = p->ic, sw = p->sw;
    /* per-tensor scales: one multiplier for every channel */
    const int same = tpr_conv_one_scale(p);
    int32_t nb = p->nb, ih = p->ih, iw = p->iw, oh = p->oh, ow = p->ow, oc, b, oy, ox, xl, xr;
    int32_t nc;
    geo_t g;
    row_t r;
#if TPR_WIDE
    uint32_t wide[TPR_WIDE_WORDS];
#endif
#if TPR_WIDE && !TPR_SMALL
    const uint32_t *wide0 = 0; /* the block's widened window (tpr_widen2), or NULL */
#endif
    if (kh == 1 && kw == 1 && p->sh == 1 && sw == 1 && p->pad_h == 0 && p->pad_w == 0) {
        iw = ow = nb * oh * ow; /* a matrix product: every position is one row of the input */
        nb = ih = oh = 1;
#if TPR_WIDE
        /* one group, whole words, and several positions (widening weights pays for itself) or
         * one (the input widened, 2 words per 4 bytes) */
        const int one_row = ow == 1 && TPR_WORDS14X && fic <= 2 * TPR_WIDE_WORDS;
        if (c->eval && oc0 == 0 && fic == ic && in_div == n_out && w_oc == fic &&
            (TPR_MVE || ((fic & 3) == 0 && (ow >= 4 ? fic <= TPR_WIDE4_MAX : one_row)))) {
            oc0 = matmul4(c, p, ow, n_out, fic, wide);
        }
#endif
    }
    g.n_out = n_out;
    g.fic = fic;
    g.w_k = w_k;
    g.ic = ic;
    g.kw = kw;
    g.dw = p->dw;
    g.sw = sw;
    g.pad_w = p->pad_w;
    g.iw = iw;
    /* a step that cannot occur within the input (the second kernel row, position or tap lies
     * outside it) is never taken: 0 then, so that no product of unrelated sizes overflows */
    g.xrow = (p->dh < ih ? p->dh : 0) * iw * ic;
    g.wrow = kw * w_k;
    g.dx = (sw < iw ? sw : 0) * ic;
    g.xtap = (p->dw < iw ? p->dw : 0) * ic;
    g.contig = p->dw == 1 && fic == ic && w_k == fic;
    /* columns xl..xr-1 see every tap of a kernel row; pairs of them go through tpr_dot22 */
    xl = (p->pad_w + sw - 1) / sw;
    xr = iw - 1 - (kw - 1) * p->dw + p->pad_w;
    xr = xr < 0 ? 0 : xr / sw + 1;
    xr = xr < ow ? xr : ow;
    xr = xr > xl ? xl + ((xr - xl) & ~1) : xl;
    for (oc = oc0; oc < n_out; oc += nc) {
        const int8_t *wc;
        uint32_t hoist[2] = {0, 0};
        int32_t j, last0 = -1, last1 = -1;
        /* the block's second channel, if it reads the same input channels (same group) */
        nc = 1 + (oc + 1 < n_out && (oc + 1) / in_div == oc / in_div);
        for (j = 0; j < nc; ++j) {
            if (same && oc + j > oc0) {
                r.q[j] = r.q[0];
            } else if (!tpr_conv_mult(c, p, oc + j, &r.q[j])) {
                return TPR_FAIL(c, TPR_ERR_QUANT, p->w.index,
                                "scale not positive and finite, or scale ratio too large");
            }
            r.bias[j] = p->bias ? (uint32_t)p->bias[oc + j] : 0u;
        }
        if (!c->eval) { /* validating: tensors have no data yet (NULL unless constant) */
            continue;
        }
#if !TPR_SMALL
        r.full = nc == 2 && tpr_requant_full_applies(r.q, 2, p->lo, p->hi);
#endif
        wc = (const int8_t *)p->w.data + oc * w_oc;
        r.x = (const int8_t *)p->in.data + (oc / in_div) * fic;
        r.dwc = nc == 2 ? w_oc : 0;
        r.wide = 0;
#if TPR_WIDE && !TPR_SMALL /* -Os: matmul4 only */
        /* contiguous kernel rows of whole words, the window (contiguous in the filter) small
         * enough, and pairs of positions to use it; with Helium only rows shorter than its 16
         * lanes (ds-cnn's first layer: M55 1.86 -> 1.71 instructions per MAC) */
        wide0 = (!TPR_MVE || g.wrow < 16) && nc == 2 && g.contig && (g.wrow & 3) == 0 && kh * g.wrow <= TPR_WIDE_MAX &&
                xr > xl ? wide : 0;
        if (wide0 != 0) {
            tpr_widen2(wc, wc + w_oc, kh * g.wrow, wide);
        }
#endif
        for (b = 0; b < nb; ++b) {
            for (oy = 0; oy < oh; ++oy) {
                const int32_t iy0 = oy * p->sh - p->pad_h;
                int32_t ky0, ky1;
                tpr_conv_taps(iy0, kh, p->dh, ih, &ky0, &ky1);
                r.rows = ky1 - ky0;
                r.y = (int8_t *)p->out.data + (b * oh + oy) * ow * n_out + oc;
                if (r.rows == 0) { /* no kernel row inside the input: the bias alone */
                    for (ox = 0; ox < ow; ++ox) {
                        single(p, &g, &r, ox, off);
                    }
                    continue;
                }
                r.w = wc + ky0 * g.wrow;
#if TPR_WIDE && !TPR_SMALL
                r.wide = wide0 != 0 ? wide0 + ky0 * g.wrow : 0; /* g.wrow bytes widen to as many words */
#endif
                r.row0 = (b * ih + iy0 + ky0 * p->dh) * iw;
                if (xr > xl && (ky0 != last0 || ky1 != last1)) { /* offset x weights of the rows */
                    for (j = 0; j < 2; ++j) {
                        hoist[j] = (uint32_t)off * tpr_sum8(r.w + j * r.dwc, fic, r.rows * kw, w_k);
                    }
                    last0 = ky0;
                    last1 = ky1;
                }
                r.base[0] = r.bias[0] + hoist[0];
                r.base[1] = r.bias[1] + hoist[1];
                for (ox = 0; ox < xl && ox < ow; ++ox) {
                    single(p, &g, &r, ox, off);
                }
                pairs(p, &g, &r, xl, xr);
                for (ox = xr > xl ? xr : xl; ox < ow; ++ox) {
                    single(p, &g, &r, ox, off);
                }
            }
        }
    }
    return TPR_OK;
}

#endif

#if TPR_OP_CONV_2D || TPR_OP_DEPTHWISE_CONV_2D || TPR_OP_FULLY_CONNECTED

/* Conv2DOptions: padding 0, stride_w 1, stride_h 2, activation 3, dilation_w 4, dilation_h 5,
 * quantized_bias_type 6; DepthwiseConv2DOptions inserts depth_multiplier at 3 and shifts the
 * rest by one (no bias type). FullyConnectedOptions: activation 0, weights_format 1,
 * quantized_bias_type 4, quant_spec 5. Checks, option reads (after a malformed field the later
 * ones read defaults) and failures come in the order the three operators' own kernels had them;
 * the operators left out of the build fold away. */
TPR_COLD tpr_status_t tpr_conv_op(tpr_ctx_t *c, tpr_conv_t *p, int kind)
{
    /* where tpr_opt_pos puts stride_w, stride_h, dilation_w, dilation_h */
    static const uint8_t opt_at[4] = {offsetof(tpr_conv_t, sw), offsetof(tpr_conv_t, sh),
                                      offsetof(tpr_conv_t, dw), offsetof(tpr_conv_t, dh)};
    tpr_tensor_t *const t[3] = {&p->in, &p->w, &p->out};
    const int fc = TPR_OP_FULLY_CONNECTED &&
                   (!(TPR_OP_CONV_2D || TPR_OP_DEPTHWISE_CONV_2D) || kind == TPR_CONV_FC);
    const int dw = TPR_OP_DEPTHWISE_CONV_2D && !fc && (!TPR_OP_CONV_2D || kind == TPR_CONV_DEPTHWISE);
    const unsigned k = (unsigned)dw; /* DEPTHWISE: options from 3 on one further */
    tpr_status_t st;
    int32_t n_out, fic, groups, dm = 1, bad_t;
    uint32_t j, v;
#if TPR_ERROR_DETAIL
    const char *why;
#define CONV_BAD(s, tensor, w) do { st = (s); bad_t = (tensor); why = (w); goto bad; } while (0)
#else
#define CONV_BAD(s, tensor, w) do { st = (s); bad_t = (tensor); goto bad; } while (0)
#endif

    for (j = 0; j < 3; ++j) { /* input, filter, output; FULLY_CONNECTED checks them after */
        st = !fc ? tpr_int8(c, j == 2, j & 1u, t[j], 4, 4)
                 : (j == 2 ? tpr_out(c, 0, t[j]) : tpr_in(c, j, t[j]));
        if (st != TPR_OK) {
            return st;
        }
    }
    if (fc) {
        for (j = 0; j < 3; ++j) {
            if ((st = tpr_check_int8(c, t[j], 1)) != TPR_OK) {
                return st;
            }
        }
        if ((st = tpr_check_rank(c, &p->w, 2, 2)) ||
            (st = tpr_check_rank(c, &p->out, 1, TPR_MAX_DIMS))) {
            return st;
        }
    } else {
        if (dw && (st = tpr_opt_pos(c, 3, 0, &dm)) != TPR_OK) {
            return st;
        }
        p->nb = p->in.dims[0];
        p->ih = p->in.dims[1];
        p->iw = p->in.dims[2];
        p->ic = p->in.dims[3];
        p->oh = p->out.dims[1];
        p->ow = p->out.dims[2];
        p->kh = p->w.dims[1];
        p->kw = p->w.dims[2];
        v = tpr_opt(c, 0, 1, 0); /* padding */
        for (j = 0; j < 4; ++j) { /* fields 1, 2, 4, 5 (DEPTHWISE 5, 6); dilations 1 by default */
            if ((st = tpr_opt_pos(c, j + 1 + (j >> 1) * (1 + k), j >> 1,
                                  (int32_t *)(void *)((char *)p + opt_at[j]))) != TPR_OK) {
                return st;
            }
        }
        if ((st = tpr_padding(c, &p->out, v, p->ih, p->kh, p->sh, p->dh, p->oh, &p->pad_h)) ||
            (st = tpr_padding(c, &p->out, v, p->iw, p->kw, p->sw, p->dw, p->ow, &p->pad_w))) {
            return st;
        }
    }
    if ((st = tpr_activation(c, tpr_opt(c, fc ? 0 : 3 + k, 1, 0), &p->out, &p->lo, &p->hi)) != TPR_OK) {
        return st;
    }
    if (fc) {
        v = tpr_opt(c, 4, 1, 0);
        if (tpr_opt(c, 1, 1, 0) != 0 || (v != 0 && v != TPR_TYPE_INT32) ||
            (c->has_opts && tpr_fb_present(&c->opts, c->fb, 5))) {
            CONV_BAD(TPR_ERR_OPTIONS, -1, "shuffled weights, int64 bias or quant_spec");
        }
        /* input [..., D] with batches x D elements, filter [U, D], output [..., U]: a 1x1
         * convolution over `batches` positions (batches x D in 64 bits: it must not wrap) */
        n_out = p->out.dims[p->out.ndims - 1];
        fic = p->w.dims[1];
        p->iw = p->ow = (int32_t)(p->out.count / (uint32_t)n_out);
        if (n_out > p->w.dims[0] || (uint64_t)(uint32_t)p->iw * (uint32_t)fic != p->in.count) {
            CONV_BAD(TPR_ERR_SHAPE, p->out.index, "input, filter and output shapes disagree");
        }
        p->nb = p->ih = p->oh = p->kh = p->kw = p->sh = p->sw = p->dh = p->dw = 1;
        p->ic = fic;
        p->pad_h = p->pad_w = 0;
        p->fc = (uint8_t)(p->w.scales.len == 1);
    } else {
        p->fc = 0;
        n_out = p->w.dims[3u * k]; /* filter [O, KH, KW, C / groups] or [1, KH, KW, C x M] */
        fic = dw ? 1 : p->w.dims[3];
    }
    if ((st = tpr_bias(c, (uint32_t)n_out, &p->bias)) != TPR_OK) {
        return st;
    }
    if (!fc && (p->nb != p->out.dims[0] || p->out.dims[3] != n_out)) {
        CONV_BAD(TPR_ERR_SHAPE, p->out.index, "batch or output channels disagree");
    }
    /* one scale, or one per output channel along dimension 0 (3 for DEPTHWISE): the reader
     * checked that the dimension has as many elements as there are scales */
    if (p->w.scales.len > 1 && p->w.qdim != (int32_t)(3u * k)) {
        CONV_BAD(TPR_ERR_QUANT, p->w.index, fc ? "filter scales must be one or one per unit"
                                                : "filter scales must be one or one per output channel");
    }
    /* how many multipliers the operator has: one per filter scale (tpr_check_int8: one at
     * least); their per-layer part, before the loops (tpr_conv_mult fails if the scales give
     * none), not needed when tpr_conv_mult reads them from the arena */
    c->mult_n = p->w.scales.len;
    if (!TPR_MULT_CACHE || !c->eval || c->m->mult_kept < c->m->mult_count) {
        (void)tpr_mult_layer(p->in.scale, p->out.scale, p->fc, &p->ml);
    }
    if (dw) {
        /* filter [1, KH, KW, C x depth_multiplier] (the product in 64 bits: it must not wrap) */
        if (p->w.dims[0] != 1 || (int64_t)p->ic * dm != n_out) {
            CONV_BAD(TPR_ERR_SHAPE, p->w.index, "filter does not match depth_multiplier");
        }
        return TPR_OK;
    }
    if (fc) {
        if (p->fc && p->w.zp != 0) {
            return TPR_OK; /* the per-channel loops ignore filter zero points: the kernel's own loop */
        }
        groups = 1;
    } else {
        /* groups = C / fic; output channel oc belongs to group oc / (n_out / groups) */
        groups = p->ic / fic;
        if (p->ic % fic != 0 || n_out % groups != 0) {
            CONV_BAD(TPR_ERR_SHAPE, p->w.index, "channels do not divide into groups");
        }
        v = tpr_opt(c, 6, 1, 0);
        if (v != 0 && v != TPR_TYPE_INT32) {
            CONV_BAD(TPR_ERR_OPTIONS, -1, "quantized_bias_type other than int32");
        }
    }
    return tpr_conv_run(c, p, 0, n_out, fic, n_out / groups, p->kh * p->kw * fic, fic);
bad:
    return TPR_FAIL(c, st, bad_t, why);
#undef CONV_BAD
}

#endif
