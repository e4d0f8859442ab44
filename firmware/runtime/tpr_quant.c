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

int tpr_real_f32(uint32_t bits, tpr_real_t *r)
{
    uint32_t ex = (bits >> 23) & 0xFFu, fr = bits & 0x7FFFFFu;
    r->m = 0;
    r->e = 0;
    if ((bits >> 31) != 0 || ex == 0xFFu || (ex == 0 && fr == 0)) {
        return 0;
    }
    if (ex == 0) { /* subnormal */
        r->m = fr;
        r->e = -149;
    } else {
        r->m = fr | 0x800000u;
        r->e = (int32_t)ex - 150;
    }
    return 1;
}

tpr_real_t tpr_real_mul(tpr_real_t a, tpr_real_t b)
{
    tpr_real_t r;
    r.m = a.m * b.m;
    r.e = a.e + b.e;
    return r;
}

/* Round m * 2^e (m below 2^62) to `bits` significant bits, nearest-even; `sticky` says nonzero
 * bits were lost below m already. The sticky bit becomes one more bit below m, and then
 * nearest-even is adding half the dropped weight minus one, plus the lowest kept bit. */
static tpr_real_t round_sticky(uint64_t m, int32_t e, int bits, int sticky)
{
    tpr_real_t r;
    int s = bitlen(m) - bits;
    if (s > 0) {
        m = (m << 1) | (uint64_t)(sticky != 0);
        m = (m + ((((uint64_t)1) << s) - 1u) + ((m >> (s + 1)) & 1u)) >> (s + 1);
        e += s;
        if ((m >> bits) != 0) {
            m >>= 1;
            ++e;
        }
    }
    r.m = m;
    r.e = e;
    return r;
}

TPR_COLD tpr_real_t tpr_real_round(tpr_real_t x, int bits)
{
    return round_sticky(x.m, x.e, bits, 0);
}

/* Unrolled at -O2 and up: the divisions run once per output channel and invoke. */
#if defined(__GNUC__) && !defined(__clang__) && !TPR_SMALL
#define TPR_UNROLL _Pragma("GCC unroll 4")
#else
#define TPR_UNROLL
#endif

/* One base-256 digit of the quotient: the remainder *r (below dd) with the next byte appended. */
static uint32_t div_step(uint32_t *r, uint32_t dd, uint32_t byte)
{
    const uint32_t cur = (*r << 8) | byte, digit = cur / dd;
    *r = cur - digit * dd;
    return digit;
}

/* Quotients n / d for n with at most 48 significant bits (a product of two floats) and d at most
 * 24 (a float): N = n normalised into [2^47, 2^48), D = d into [2^23, 2^24), q = floor(N 2^32 / D)
 * (56 or 57 bits) with q * 2^*e the value, and the remainder N 2^32 - q D. They return 0 for a
 * zero or too long operand. */
#if TPR_SMALL
/* -Os: long division in base 256 with 32-bit divides (a remainder below D and one more byte fit
 * 32 bits): the top 24 bits of N in one step (digit 0 or 1), then its 3 other bytes into the
 * high word of q, 4 zero bytes into the low word. */
static int div_floor(tpr_real_t n, tpr_real_t d, uint64_t *q, int32_t *e, uint32_t *rem)
{
    const int ln = bitlen(n.m), ld = bitlen(d.m);
    uint64_t nn;
    uint32_t dd, r, low, hi, lo = 0;
    int i;
    if (ln == 0 || ld == 0 || ln > 48 || ld > 24) {
        return 0;
    }
    nn = n.m << (48 - ln);
    dd = (uint32_t)(d.m << (24 - ld));
    r = (uint32_t)(nn >> 24);
    low = (uint32_t)nn & 0xFFFFFFu; /* N's other 3 bytes */
    hi = r / dd;
    r -= hi * dd;
    for (i = 16; i >= 0; i -= 8) {
        hi = (hi << 8) | div_step(&r, dd, (low >> i) & 0xFFu);
    }
    for (i = 0; i < 4; ++i) {
        lo = (lo << 8) | div_step(&r, dd, 0);
    }
    *q = ((uint64_t)hi << 32) | lo;
    *e = (n.e - (48 - ln)) - (d.e - (24 - ld)) - 32;
    *rem = r;
    return 1;
}
#else
/* -O2: by a reciprocal of the divisor, which a layer's channels share (tpr_mult_layer): D, its
 * exponent, and R = floor(2^87 / D) (2^64 - 1 for D = 2^23, where it would be 2^64), by long
 * division as above, once. */
static int div_prepare(tpr_real_t d, tpr_div_t *dv)
{
    const int ld = bitlen(d.m);
    uint32_t r = (uint32_t)1 << 23;
    uint64_t q = 0;
    int i;
    dv->r = 0;
    dv->dd = 0;
    dv->e = 0;
    if (ld == 0 || ld > 24) {
        return 0;
    }
    dv->dd = (uint32_t)(d.m << (24 - ld));
    dv->e = d.e - (24 - ld);
    if (dv->dd == r) {
        dv->r = ~(uint64_t)0;
        return 1;
    }
    TPR_UNROLL
    for (i = 0; i < 8; ++i) { /* 2^87 / D: 2^23 (below D), then eight zero bytes */
        q = (q << 8) | div_step(&r, dv->dd, 0);
    }
    dv->r = q;
    return 1;
}

/* N R / 2^55 is below N 2^32 / D by less than N / 2^55 < 2^-7, so its floor (from the 112-bit
 * product) is q or q - 1; the remainder of that estimate is below 2 D < 2^25, so its low 32 bits
 * are all of it, and N 2^32 has none: -est D mod 2^32. One comparison corrects the estimate. */
static int div_floor_by(tpr_real_t n, const tpr_div_t *dv, uint64_t *q, int32_t *e, uint32_t *rem)
{
    const int ln = bitlen(n.m);
    uint64_t nn, p0, p1, p2, mid, hi, est;
    uint32_t nl, nh, rl, rh, r;
    if (ln == 0 || ln > 48 || dv->dd == 0) {
        return 0;
    }
    nn = n.m << (48 - ln);
    nl = (uint32_t)nn;
    nh = (uint32_t)(nn >> 32);
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
    *q = est;
    *e = (n.e - (48 - ln)) - dv->e - 32;
    *rem = r;
    return 1;
}

static int div_floor(tpr_real_t n, tpr_real_t d, uint64_t *q, int32_t *e, uint32_t *rem)
{
    tpr_div_t dv;
    return div_prepare(d, &dv) && div_floor_by(n, &dv, q, e, rem);
}
#endif

TPR_COLD tpr_real_t tpr_real_div(tpr_real_t n, tpr_real_t d, int bits)
{
    uint64_t q;
    int32_t e;
    uint32_t rem;
    tpr_real_t z = {0, 0};
    if (!div_floor(n, d, &q, &e, &rem)) {
        return z;
    }
    return round_sticky(q, e, bits, rem != 0);
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

/* The end of QuantizeMultiplier: q in [2^30, 2^31] with value q * 2^(sh-31). */
#if TPR_SMALL
__attribute__((noinline))
#endif
static void multiplier_out(uint64_t q, int32_t sh, int32_t *m, int *shift)
{
    if (q == (((uint64_t)1) << 31)) {
        q >>= 1;
        ++sh;
    }
    if (sh < -31) {
        sh = 0;
        q = 0;
    }
#if TPR_SINGLE_ROUNDING
    if (sh > 30) {
        sh = 30;
        q = 0x7FFFFFFFu;
    }
#endif
    *m = (int32_t)q;
    *shift = (int)sh;
}

/* QuantizeMultiplier(double): frexp, then round(q * 2^31) with ties away from zero. */
TPR_COLD void tpr_quantize_multiplier(tpr_real_t x, int32_t *m, int *shift)
{
    const int len = bitlen(x.m);
    uint64_t m53;
    if (len == 0 || len > 53) { /* zero, or not a double */
        *m = 0;
        *shift = 0;
        return;
    }
    m53 = x.m << (53 - len);
    multiplier_out((m53 + (((uint64_t)1) << 21)) >> 22, x.e - (53 - len) + 53, m, shift);
}

/* tpr_quantize_multiplier(tpr_real_div(n, d, 53)) in fewer steps (conv and FC run it once per
 * output channel and invoke). Let Q be n / d scaled into [2^30, 2^31): the double holds Q rounded
 * to 22 fraction bits, nearest-even, and QuantizeMultiplier rounds that half away from zero, so
 * the multiplier is floor(Q) + 1 exactly when frac(Q) >= 1/2 - 2^-23 (at 1/2 - 2^-23 itself the
 * double's tie goes to the even 1/2). That is floor((t + 2^22 + 1) / 2^23) for t = floor(Q 2^23),
 * and t = floor(q / 2^drop) for div_floor's q: no remainder is needed, and as
 * floor((floor(x) + c) / N) == floor((x + c) / N), one shift does both divisions. */
static void ratio_out(uint64_t q, int32_t e, int32_t *m, int *shift)
{
    const int drop = (q >> 56) != 0 ? 3 : 2; /* q >> drop has 54 bits */
    multiplier_out((q + (((((uint64_t)1) << 22) + 1u) << drop)) >> (23 + drop), e + drop + 54, m, shift);
}

TPR_COLD void tpr_quantize_ratio(tpr_real_t n, tpr_real_t d, int32_t *m, int *shift)
{
    uint64_t q;
    int32_t e;
    uint32_t rem;
    *m = 0;
    *shift = 0;
    if (div_floor(n, d, &q, &e, &rem)) {
        ratio_out(q, e, m, shift);
    }
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
    multiplier_out(((bits & 0xFFFFFFFFFFFFFull) + (((uint64_t)1) << 52) + (((uint64_t)1) << 21)) >> 22,
                   (int32_t)(bits >> 52) - 1022, m, shift);
    return *shift <= 31; /* a larger left shift is undefined in TFLite too */
}
#else
#define TPR_FP64 0
#endif

#if !TPR_FP64
/* input scale x filter scale: exact in double (conv), or rounded to a float first (fc); 0 where
 * that float would be subnormal or infinite */
static int scales_product(tpr_real_t a, tpr_real_t b, int fc, tpr_real_t *p)
{
    *p = tpr_real_mul(a, b);
    if (fc) {
        *p = tpr_real_round(*p, 24);
        if (p->e + 23 < -126 || p->e + 23 > 127) {
            return 0;
        }
    }
    return 1;
}
#endif

#if !TPR_FP64 && TPR_SMALL
/* in_s * filt_s / out_s in double: at -Os every scale is decoded with each channel's, the
 * smaller code */
static int mult3(uint32_t in_s, uint32_t filt_s, uint32_t out_s, int fc, int32_t *m, int *shift)
{
    tpr_real_t a, b, c, p;
    if (!tpr_real_f32(in_s, &a) || !tpr_real_f32(filt_s, &b) || !tpr_real_f32(out_s, &c) ||
        !scales_product(a, b, fc, &p)) {
        return 0;
    }
    tpr_quantize_ratio(p, c, m, shift);
    return *shift <= 31; /* a larger left shift is undefined in TFLite too */
}

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
    return mult3(l->in_bits, filt_s, l->out_bits, l->fc, m, shift);
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
    l->ok = (uint8_t)(tpr_real_f32(in_s, &l->in) && tpr_real_f32(out_s, &c) &&
                      div_prepare(c, &l->out));
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
    int32_t e;
    uint32_t rem;
    *m = 0;
    *shift = 0;
    if (!l->ok || !tpr_real_f32(filt_s, &b) || !scales_product(l->in, b, l->fc, &p)) {
        return 0;
    }
    if (div_floor_by(p, &l->out, &q, &e, &rem)) {
        ratio_out(q, e, m, shift);
    }
    return *shift <= 31; /* a larger left shift is undefined in TFLite too */
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
    tpr_quantize_ratio(a, b, m, shift);
    return *shift <= 31;
#endif
}

/* TfLiteRound(f / scale) in float for f in {1, 6}: the float quotient rounded half away from
 * zero; 0 if it does not fit an int32 (TFLite Micro then fails Prepare too). */
TPR_COLD static int quantize_const(uint32_t f, uint32_t scale, int64_t *v)
{
    tpr_real_t s, num = {0, 0}, q;
    num.m = f;
    if (!tpr_real_f32(scale, &s)) {
        return 0;
    }
    q = tpr_real_div(num, s, 24);
    if (q.e >= 0) {
        if (q.e > 7) {
            return 0;
        }
        *v = (int64_t)(q.m << q.e);
    } else if (q.e < -40) {
        *v = 0;
    } else {
        *v = (int64_t)((q.m + (((uint64_t)1) << (-q.e - 1))) >> (-q.e));
    }
    return *v < 0x80000000LL;
}

TPR_COLD int tpr_act_range(uint32_t act, uint32_t out_scale, int32_t zp, int32_t *lo, int32_t *hi)
{
    int64_t v, a = -128, b = 127;
    switch (act) {
    case 0: /* none */
        break;
    case 1: /* relu */
        a = zp;
        break;
    case 3: /* relu6 */
        if (!quantize_const(6, out_scale, &v)) {
            return 0;
        }
        a = zp;
        b = zp + v;
        break;
    case 2: /* relu_n1_to_1 */
        if (!quantize_const(1, out_scale, &v)) {
            return 0;
        }
        a = zp - v;
        b = zp + v;
        break;
    default: /* tanh, sign_bit: not fused in int8 models */
        return 0;
    }
    *lo = (int32_t)(a > -128 ? a : -128);
    *hi = (int32_t)(b < 127 ? b : 127);
    if (*lo > 127) {
        *lo = 127;
    }
    if (*hi < -128) {
        *hi = -128;
    }
    return 1;
}
