/* Float32 scales to integer multipliers with integer arithmetic only.
 *
 * TFLite Micro computes a kernel's multipliers in double precision from float32 scales
 * (kernel_util.cc PopulateConvolutionQuantizationParams, quantization_util.cc QuantizeMultiplier,
 * add_common.cc, ...). A product of two float32 values is exact in double (24 + 24 bits < 53); a
 * quotient is rounded once to nearest-even at 53 bits. We compute the same values exactly: the
 * product with a 64-bit multiply, the quotient by long division with a sticky bit, then the same
 * rounding. No float or double is used, so cores without an FPU pull in no soft-float library;
 * cores with a double-precision FPU compute the same values in hardware (TPR_FP64 below). */
#include <string.h>

#include "tpr_fixedpoint.h"

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline)) /* one copy for the cold and the per-channel callers */
#else
#define NOINLINE
#endif

static int bitlen(uint64_t x)
{
#if defined(__GNUC__) && (defined(__ARM_FEATURE_CLZ) || !defined(__arm__))
    /* CLZ on Armv7-M and later (a few instructions for 64 bits); Armv6-M has none (and libgcc's
     * __clzdi2 would be one more library call) */
    return x == 0 ? 0 : 64 - __builtin_clzll(x);
#else
    /* a binary search in the 32-bit half holding the top bit (Armv6-M shifts 64 bits slowly),
     * unrolled: a loop of variable shifts costs 2 % of fc-autoencoder's time on Cortex-M0+ */
    uint32_t w = (uint32_t)(x >> 32);
    int n = 32;
    if (w == 0) {
        w = (uint32_t)x;
        n = 0;
    }
    if ((w >> 16) != 0) {
        n += 16;
        w >>= 16;
    }
    if ((w >> 8) != 0) {
        n += 8;
        w >>= 8;
    }
    if ((w >> 4) != 0) {
        n += 4;
        w >>= 4;
    }
    if ((w >> 2) != 0) {
        n += 2;
        w >>= 2;
    }
    if ((w >> 1) != 0) {
        n += 1;
        w >>= 1;
    }
    return n + (int)w; /* w is now 0 or 1 */
#endif
}

/* A positive, finite float32 as m * 2^e (m < 2^24); 0 (and {0, 0}) for any other. Inline in
 * tpr_mult_channel at -O2: a call of the cold tpr_real_f32 there (GCC then compiles what follows
 * it as cold too) costs 4 % of fc-autoencoder's time in the smallest arena. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int f32_real(uint32_t bits, tpr_real_t *r)
{
    uint32_t ex = bits >> 23, m = bits & 0x7FFFFFu; /* ex with the sign bit: 256 and up if negative */
    const int ok = ex < 0xFFu && bits != 0;         /* not negative, infinite, NaN or zero */
    if (ex != 0) {
        m |= 0x800000u;
    } else { /* subnormal: 2^-149 units */
        ex = 1;
    }
    if (!ok) {
        m = 0;
        ex = 150;
    }
    r->m = m;
    r->e = (int32_t)ex - 150;
    return ok;
}

TPR_COLD int tpr_real_f32(uint32_t bits, tpr_real_t *r)
{
    return f32_real(bits, r);
}

/* m * 2^*e rounded to `bits` significant bits, nearest-even, one bit at a time (a few times per
 * layer at most): `half` is the last bit shifted out, `sticky` whether any before it was set;
 * rounding up to 2^bits goes round once more. A quotient's nonzero remainder is its lowest bit
 * set (div_floor): with 57 bits and `bits` at most 55, that bit lies below the halfway bit, where
 * it only says "nonzero below". */
TPR_COLD NOINLINE static uint64_t round_to(uint64_t m, int32_t *e, int bits)
{
    unsigned half = 0, sticky = 0;
    int32_t k = *e;
    for (;;) {
        while (bitlen(m) > bits) {
            sticky |= half;
            half = (unsigned)m & 1u;
            m >>= 1;
            ++k;
        }
        if ((half & (sticky | (unsigned)m)) == 0) {
            break;
        }
        ++m;
        half = 0;
    }
    *e = k;
    return m;
}

/* One base-256 digit of the quotient: the remainder *r (below dd) with the next byte appended. */
static uint32_t div_step(uint32_t *r, uint32_t dd, uint32_t byte)
{
    const uint32_t cur = (*r << 8) | byte, digit = cur / dd;
    *r = cur - digit * dd;
    return digit;
}

/* Quotients n 2^*e / d for n with at most 48 significant bits (a product of two floats) and d at
 * most 24 (a float): D = d normalised into [2^23, 2^24), N = n into [D 2^24, D 2^25) (49 bits at
 * most), q = floor(N 2^32 / D) in [2^56, 2^57) with q * 2^*e the value, its lowest bit set if the
 * remainder N 2^32 - q D is not zero. They return 0 for a zero or too long operand. */
#if TPR_SMALL
/* -Os: long division in base 256 with 32-bit divides (a remainder below D and one more byte fit
 * 32 bits): N's top 25 bits give the digit 1, then its 3 other bytes and 4 zero bytes. */
static uint64_t div_floor(uint64_t n, int32_t *e, const tpr_real_t *d)
{
    const int ln = bitlen(n), ld = bitlen(d->m);
    int sh = 48 - ln, i;
    uint64_t q = 1;
    uint32_t dd, r, low;
    if (ln == 0 || ld == 0 || ln > 48 || ld > 24) {
        return 0;
    }
    dd = (uint32_t)(d->m << (24 - ld));
    n <<= sh;
    if ((uint32_t)(n >> 24) < dd) {
        n <<= 1;
        ++sh;
    }
    r = (uint32_t)(n >> 24) - dd;
    low = (uint32_t)n << 8; /* N's other 3 bytes on top, zeros below */
    for (i = 0; i < 7; ++i) {
        q = (q << 8) | div_step(&r, dd, low >> 24);
        low <<= 8;
    }
    *e -= sh + d->e - (24 - ld) + 32;
    return q | (r != 0);
}
#else
/* -O2: by a reciprocal of the divisor, which a layer's channels share (tpr_mult_layer): D, its
 * exponent, and R = floor((2^87 - 1) / D) (floor(2^87 / D) but for D = 2^23, where that would be
 * 2^64), by long division as above, once: 2^23 - 1 (below D), then eight 0xFF bytes. */
static int div_prepare(const tpr_real_t *d, tpr_div_t *dv)
{
    const int ld = bitlen(d->m);
    uint32_t r = 0x7FFFFFu;
    uint64_t q = 0;
    int i;
    if (ld == 0 || ld > 24) {
        return 0;
    }
    dv->dd = (uint32_t)(d->m << (24 - ld));
    dv->e = d->e - (24 - ld);
    for (i = 0; i < 8; ++i) {
        q = (q << 8) | div_step(&r, dv->dd, 0xFFu);
    }
    dv->r = q;
    return 1;
}

/* N R / 2^55 is below N 2^32 / D by less than N / 2^55 < 2^-6, so its floor (from the 113-bit
 * product) is q or q - 1; the remainder of that estimate is below 2 D < 2^25, so its low 32 bits
 * are all of it, and N 2^32 has none: -est D mod 2^32. One comparison corrects the estimate. */
static uint64_t div_floor_by(uint64_t n, int32_t *e, const tpr_div_t *dv)
{
    const int ln = bitlen(n);
    int sh = 48 - ln;
    uint64_t p0, p1, p2, mid, hi, est;
    uint32_t nl, nh, rl, rh, r;
    if (ln == 0 || ln > 48) {
        return 0;
    }
    n <<= sh;
    if ((uint32_t)(n >> 24) < dv->dd) {
        n <<= 1;
        ++sh;
    }
    nl = (uint32_t)n;
    nh = (uint32_t)(n >> 32);
    rl = (uint32_t)dv->r;
    rh = (uint32_t)(dv->r >> 32);
    p0 = (uint64_t)nl * rl;
    p1 = (uint64_t)nl * rh;
    p2 = (uint64_t)nh * rl;
    mid = (p0 >> 32) + (uint32_t)p1 + (uint32_t)p2;
    hi = (uint64_t)nh * rh + (p1 >> 32) + (p2 >> 32) + (mid >> 32); /* N R = hi 2^64 + ... */
    est = (hi << 9) | ((uint32_t)mid >> 23);
    r = 0u - (uint32_t)est * dv->dd;
    if (r >= dv->dd) {
        ++est;
        r -= dv->dd;
    }
    *e -= sh + dv->e + 32;
    return est | (r != 0);
}

static uint64_t div_floor(uint64_t n, int32_t *e, const tpr_real_t *d)
{
    tpr_div_t dv;
    return div_prepare(d, &dv) ? div_floor_by(n, e, &dv) : 0;
}
#endif

/* *q = n / d rounded to `bits` (at most 55) significant bits, nearest-even; q->m = 0 for a zero
 * or too long operand */
TPR_COLD void tpr_real_div_to(const tpr_real_t *n, const tpr_real_t *d, int bits, tpr_real_t *q)
{
    q->e = n->e;
    q->m = round_to(div_floor(n->m, &q->e, d), &q->e, bits);
}

TPR_COLD tpr_real_t tpr_real_div(tpr_real_t n, tpr_real_t d, int bits)
{
    tpr_real_t q;
    tpr_real_div_to(&n, &d, bits, &q);
    return q;
}

#if TPR_SINGLE_ROUNDING
TPR_COLD int tpr_real_cmp(tpr_real_t a, tpr_real_t b)
{
    /* align both to a 64-bit mantissa with its top bit set, then compare exponents, mantissas */
    int la = bitlen(a.m), lb = bitlen(b.m);
    if (la == 0 || lb == 0) {
        return (la != 0) - (lb != 0);
    }
    a.e += la;
    b.e += lb;
    if (a.e != b.e) {
        return a.e < b.e ? -1 : 1;
    }
    a.m <<= 64 - la;
    b.m <<= 64 - lb;
    return (a.m > b.m) - (a.m < b.m);
}
#endif

/* QuantizeMultiplier(double) of a value q * 2^e, q below 2^57: exact (below 2^54), or the floor
 * of a quotient in [2^56, 2^57) (its lowest bit may be the sticky bit) which TFLite rounds to a
 * double first. Let Q be the value scaled into [2^30, 2^31): the double holds Q rounded to 22
 * fraction bits, nearest-even, and QuantizeMultiplier (frexp, then round(Q) with ties away from
 * zero) rounds that up exactly when frac(Q) >= 1/2 - 2^-23 (at 1/2 - 2^-23 itself the double's
 * tie goes to the even 1/2). That is floor((t + 2^22 + 1) / 2^23) for t = floor(Q 2^23) =
 * floor(q / 8) (q shifted into [2^56, 2^57)): no remainder is needed, and as floor((floor(x) +
 * c) / N) == floor((x + c) / N), one shift does both divisions. For an exact q of at most 53
 * bits, Q is a multiple of 2^-22: round(Q) too. q == 0 gives 0, 0. Returns 0 for a multiplier
 * needing a left shift above 31 (undefined in TFLite too). */
NOINLINE int tpr_quantize_multiplier(uint64_t q, int32_t e, int32_t *m, int *shift)
{
    uint32_t r;
    while (q != 0 && (q >> 56) == 0) {
        q <<= 1;
        --e;
    }
    r = (uint32_t)((q + (((((uint64_t)1) << 22) + 1u) << 3)) >> 26); /* at most 2^31 */
    e += 57; /* r * 2^(e - 31) */
    if ((r >> 31) != 0) {
        r >>= 1;
        ++e;
    }
    if (e < -31 || r == 0) {
        e = 0;
        r = 0;
    }
#if TPR_SINGLE_ROUNDING
    if (e > 30) {
        e = 30;
        r = 0x7FFFFFFFu;
    }
#endif
    *m = (int32_t)r;
    *shift = (int)e;
    return e <= 31;
}

/* QuantizeMultiplier(n / d in double) */
TPR_COLD int tpr_ratio_mult(const tpr_real_t *n, const tpr_real_t *d, int32_t *m, int *shift)
{
    tpr_real_t q;
    tpr_real_div_to(n, d, 53, &q);
    return tpr_quantize_multiplier(q.m, q.e, m, shift);
}

#if defined(__ARM_FP) && (__ARM_FP & 8) && !defined(TPR_NO_FP64)
/* Cores with a double-precision FPU (Cortex-M55, Cortex-M7 with FPv5-D16) compute the scales'
 * products and quotients as TFLite does, in IEEE float and double rounded to nearest even, in a
 * few instructions; QuantizeMultiplier's frexp and round are then read off the double's bits as
 * tpr_quantize_multiplier reads them off an exact value. Everywhere else the integer arithmetic
 * above gives the same values. TPR_NO_FP64 turns this off. */
#define TPR_FP64 1

/* a positive, finite float32 (tpr_real_f32's condition) */
static int f32_pos(uint32_t bits, float *f)
{
    if ((bits >> 31) != 0 || ((bits >> 23) & 0xFFu) == 0xFFu || bits == 0) {
        return 0;
    }
    memcpy(f, &bits, 4);
    return 1;
}

/* QuantizeMultiplier(x) for a positive normal double (products and quotients of floats are) */
static int mult_double(double x, int32_t *m, int *shift)
{
    uint64_t bits;
    memcpy(&bits, &x, 8);
    return tpr_quantize_multiplier(((bits & 0xFFFFFFFFFFFFFull) | (((uint64_t)1) << 52)) << 4,
                      (int32_t)(bits >> 52) - 1079, m, shift);
}
#else
#define TPR_FP64 0
#endif

#if !TPR_FP64
/* input scale x filter scale: exact in double (conv), or rounded to a float first (fc); 0 where
 * that float would be subnormal or infinite */
static int scales_product(const tpr_real_t *a, const tpr_real_t *b, int fc, tpr_real_t *p)
{
    p->m = (uint64_t)(uint32_t)a->m * (uint32_t)b->m;
    p->e = a->e + b->e;
    if (fc) {
        p->m = round_to(p->m, &p->e, 24);
        if (p->e + 23 < -126 || p->e + 23 > 127) {
            return 0;
        }
    }
    return 1;
}
#endif

#if !TPR_FP64 && TPR_SMALL
/* in_s * filt_s / out_s in double: at -Os every scale is decoded with each channel's and divided
 * by long division, the smaller code */
int tpr_mult_layer(uint32_t in_s, uint32_t out_s, int fc, tpr_mult_layer_t *l)
{
    memset(l, 0, sizeof *l);
    l->in_bits = in_s;
    l->out_bits = out_s;
    l->fc = (uint8_t)(fc != 0);
    l->ok = 1; /* checked with each channel */
    return 1;
}

int tpr_mult_channel(const tpr_mult_layer_t *l, uint32_t filt_s, int32_t *m, int *shift)
{
    tpr_real_t a, b, c, p;
    uint64_t q;
    if (!tpr_real_f32(l->in_bits, &a) || !tpr_real_f32(filt_s, &b) || !tpr_real_f32(l->out_bits, &c) ||
        !scales_product(&a, &b, l->fc, &p)) {
        return 0;
    }
    q = div_floor(p.m, &p.e, &c);
    return tpr_quantize_multiplier(q, p.e, m, shift);
}
#else
TPR_COLD int tpr_mult_layer(uint32_t in_s, uint32_t out_s, int fc, tpr_mult_layer_t *l)
{
#if TPR_FP64
    float a, c;
    memset(l, 0, sizeof *l);
    l->ok = (uint8_t)(f32_pos(in_s, &a) && f32_pos(out_s, &c));
    l->in_bits = in_s;
    l->out_bits = out_s;
#else
    tpr_real_t c;
    memset(l, 0, sizeof *l);
    l->ok = (uint8_t)(tpr_real_f32(in_s, &l->in) && tpr_real_f32(out_s, &c) && div_prepare(&c, &l->out));
#endif
    l->fc = (uint8_t)(fc != 0);
    return l->ok;
}

/* in_s * filt_s / out_s in double, the product exact (conv) or first rounded to a float (fc) */
int tpr_mult_channel(const tpr_mult_layer_t *l, uint32_t filt_s, int32_t *m, int *shift)
{
#if TPR_FP64
    float a, b, c, p;
    uint32_t e;
    if (!l->ok || !f32_pos(filt_s, &b)) {
        return 0;
    }
    memcpy(&a, &l->in_bits, 4);
    memcpy(&c, &l->out_bits, 4);
    if (!l->fc) {
        return mult_double((double)a * (double)b / (double)c, m, shift);
    }
    p = a * b; /* a float in TFLite here */
    memcpy(&e, &p, 4);
    e = (e >> 23) & 0xFFu;
    return e != 0 && e != 0xFFu && /* not subnormal or infinite, as the integer path */
           mult_double((double)p / (double)c, m, shift);
#else
    tpr_real_t b, p;
    uint64_t q;
    if (!l->ok || !f32_real(filt_s, &b) || !scales_product(&l->in, &b, l->fc, &p)) {
        return 0;
    }
    q = div_floor_by(p.m, &p.e, &l->out);
    return tpr_quantize_multiplier(q, p.e, m, shift);
#endif
}
#endif

TPR_COLD int tpr_mult_ratio(uint32_t a_s, uint32_t b_s, int32_t *m, int *shift)
{
#if TPR_FP64
    float a, b;
    return f32_pos(a_s, &a) && f32_pos(b_s, &b) && mult_double((double)a / (double)b, m, shift);
#else
    tpr_real_t a, b;
    if (!tpr_real_f32(a_s, &a) || !tpr_real_f32(b_s, &b)) {
        return 0;
    }
    return tpr_ratio_mult(&a, &b, m, shift);
#endif
}

/* TfLiteRound(f / scale) in float for f in {1, 6}: the float quotient q (q.m < 2^24) rounded half
 * away from zero; 0 if it does not fit an int32 (TFLite Micro then fails Prepare too). With
 * k = 7 - q.e, q is q.m 2^8 / 2^(k + 1), below 2^31 for k >= 0 and below 1/2 for k > 31. */
TPR_COLD static int quantize_const(uint32_t f, uint32_t scale, int32_t *v)
{
    tpr_real_t s, num = {0, 0}, q;
    int32_t k;
    num.m = f;
    if (!tpr_real_f32(scale, &s)) {
        return 0;
    }
    tpr_real_div_to(&num, &s, 24, &q);
    k = 7 - q.e;
    if (k < 0) {
        return 0;
    }
    *v = k > 31 ? 0 : (int32_t)(((((uint32_t)q.m << 8) >> k) + 1u) >> 1);
    return 1;
}

static int32_t clamp_int8(int32_t x)
{
    return x < -128 ? -128 : x > 127 ? 127 : x;
}

/* act 0 none, 1 relu, 2 relu_n1_to_1, 3 relu6; tanh (4) and sign_bit (5) are not fused in int8
 * models. zp - w and zp + v are formed only where they cannot overflow (v, w >= 0). */
TPR_COLD int tpr_act_range(uint32_t act, uint32_t out_scale, int32_t zp, int32_t *lo, int32_t *hi)
{
    int32_t v = 0, w;
    if (act > 3 || (act >= 2 && !quantize_const(act == 3 ? 6u : 1u, out_scale, &v))) {
        return 0;
    }
    w = act == 2 ? v : 0;
    *lo = act == 0 || zp <= w - 128 ? -128 : clamp_int8(zp - w);
    *hi = act < 2 || zp >= 127 - v ? 127 : clamp_int8(zp + v);
    return 1;
}
