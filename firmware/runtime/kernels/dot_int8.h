/* int8 dot products for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, in two variants chosen at
 * compile time from the compiler's predefined macros for -mcpu:
 *
 *  - DSP (__ARM_FEATURE_DSP: Cortex-M4, M7, M33 with DSP, M55): four bytes per load, widened to
 *    int16 pairs with SXTB16 (SXTAB16 adds the input offset while it widens) and multiplied two
 *    at a time with SMLAD, or one at a time with SMLABB/SMLATT where lanes must stay apart;
 *  - portable (everything else, and the host): int8 x int8 multiply-accumulates.
 *
 * tpr_dot22 (two positions x two channels) leaves the input offset (-zero point) out: callers add
 * offset x (sum of the weights) once per row of outputs. tpr_dot12 (one position x two channels)
 * adds it to each input value (free on the DSP path: SXTAB16).
 *
 * Everything accumulates modulo 2^32 (SMLAD wraps; the portable code adds in uint32_t), which is
 * what TFLite's int32 accumulation gives whenever it does not overflow, and the order of a sum
 * does not matter modulo 2^32: results are bit-identical to the reference loops. */
#ifndef TPR_DOT_INT8_H
#define TPR_DOT_INT8_H

#include <stdint.h>
#include <string.h>

#include "tpr_config.h" /* TPR_SMALL */

#if defined(__ARM_FEATURE_DSP) && !defined(TPR_NO_DSP)
#define TPR_DSP 1
#include <arm_acle.h>
#else
#define TPR_DSP 0
#endif

/* Helium (MVE, Cortex-M55 with its FPU): 16 bytes per load, VMLADAVA multiplies and sums them into
 * a 32-bit accumulator (modulo 2^32, like SMLAD); tails are predicated (VCTP), so any length
 * works. Used by tpr_dot22, tpr_dot12 and the four-channel matrix product. */
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1) && defined(__OPTIMIZE__) && \
    !defined(TPR_NO_MVE) && !defined(TPR_NO_DSP)
#define TPR_MVE 1
#include <arm_mve.h>
#else
#define TPR_MVE 0
#endif

/* Sum of `rows` runs of n int8 values, `stride` bytes apart (conv_common.c): the weights the
 * input offset multiplies, and the inputs a filter zero point multiplies. */
uint32_t tpr_sum8(const int8_t *p, int32_t n, int32_t rows, int32_t stride);

#if TPR_DSP

/* Four bytes, any alignment (v7-M and later load unaligned words in one instruction). */
static inline uint32_t tpr_ld32(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Bytes 0 and 2 (lo) or 1 and 3 (hi) as two int16 lanes; the _add forms add o's lanes. */
static inline uint32_t tpr_sx_lo(uint32_t v)
{
    return (uint32_t)__sxtb16((int8x4_t)v);
}
static inline uint32_t tpr_sx_hi(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}
static inline uint32_t tpr_sx_lo_add(uint32_t o, uint32_t v)
{
    return (uint32_t)__sxtab16((int16x2_t)o, (int8x4_t)v);
}
static inline uint32_t tpr_sx_hi_add(uint32_t o, uint32_t v)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(o), "r"(v));
    return r;
}
/* a + lo(x) lo(y) + hi(x) hi(y), modulo 2^32 */
static inline uint32_t tpr_smlad(uint32_t x, uint32_t y, uint32_t a)
{
    return (uint32_t)__smlad((int16x2_t)x, (int16x2_t)y, (int32_t)a);
}
/* the offset in both int16 lanes */
static inline uint32_t tpr_off2(int32_t off)
{
    return ((uint32_t)off & 0xFFFFu) * 0x10001u;
}

#endif

/* Accumulators of a block: positions a, b x channels 0, 1 (tpr_dot12 uses a0 and a1). */
typedef struct {
    uint32_t a0, a1, b0, b1;
} tpr_acc_t;

#if TPR_DSP && defined(__OPTIMIZE__)
/* The whole words of tpr_dot22, in assembly: the compiler spills the values this loop keeps in
 * registers (twelve: four pointers, four accumulators, three temporaries, the end). Per word,
 * 8 loads (each word twice, widened in place: low lanes, then high lanes), 8 SXTB16 and 8 SMLAD
 * for 16 multiply-accumulates. Not inlined, so that the register allocator always finds the
 * twelve registers free (in a large caller it may not, whatever the core); -O0 keeps a frame
 * pointer and uses the C loop instead. */
static __attribute__((noinline, unused)) void tpr_words22(const int8_t *xa, const int8_t *xb,
                                                        const int8_t *wa, const int8_t *wb,
                                                        int32_t words, uint32_t acc[4])
{
    const int8_t *end = xa + 4 * words;
    uint32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], t0, t1, t2;
    __asm__("1:\n\t"
            "ldr %[t0], [%[xa]]\n\t"
            "ldr %[t1], [%[xb]]\n\t"
            "ldr %[t2], [%[wa]]\n\t"
            "sxtb16 %[t0], %[t0]\n\t"
            "sxtb16 %[t1], %[t1]\n\t"
            "sxtb16 %[t2], %[t2]\n\t"
            "smlad %[a0], %[t0], %[t2], %[a0]\n\t"
            "smlad %[a2], %[t1], %[t2], %[a2]\n\t"
            "ldr %[t2], [%[wb]]\n\t"
            "sxtb16 %[t2], %[t2]\n\t"
            "smlad %[a1], %[t0], %[t2], %[a1]\n\t"
            "smlad %[a3], %[t1], %[t2], %[a3]\n\t"
            "ldr %[t0], [%[xa]], #4\n\t"
            "ldr %[t1], [%[xb]], #4\n\t"
            "ldr %[t2], [%[wa]], #4\n\t"
            "sxtb16 %[t0], %[t0], ror #8\n\t"
            "sxtb16 %[t1], %[t1], ror #8\n\t"
            "sxtb16 %[t2], %[t2], ror #8\n\t"
            "smlad %[a0], %[t0], %[t2], %[a0]\n\t"
            "smlad %[a2], %[t1], %[t2], %[a2]\n\t"
            "ldr %[t2], [%[wb]], #4\n\t"
            "sxtb16 %[t2], %[t2], ror #8\n\t"
            "smlad %[a1], %[t0], %[t2], %[a1]\n\t"
            "smlad %[a3], %[t1], %[t2], %[a3]\n\t"
            "cmp %[xa], %[end]\n\t"
            "bne 1b"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [xa] "+r"(xa),
              [xb] "+r"(xb), [wa] "+r"(wa), [wb] "+r"(wb), [t0] "=&r"(t0), [t1] "=&r"(t1),
              [t2] "=&r"(t2)
            : [end] "r"(end)
            : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

#if TPR_DSP && defined(__OPTIMIZE__)
/* Filter lengths per output channel that tpr_widen2 (two channels, TPR_WIDE_MAX from
 * tpr_config.h) and tpr_widen4 (four) widen; either needs TPR_WIDE_WORDS words on the stack
 * (576 bytes by default; 512 at -Os, where only tpr_widen4 and tpr_widen_x use them: a smaller
 * frame keeps its offsets in 16-bit instructions). */
#define TPR_WIDE4_MAX 64
#if TPR_SMALL || TPR_WIDE_MAX < 128
#define TPR_WIDE_WORDS 128
#else
#define TPR_WIDE_WORDS TPR_WIDE_MAX
#endif

/* Widens the n weights (n a multiple of 4) of two channels, wa and wb, once per invoke: per word,
 * lo(wa), lo(wb), hi(wa), hi(wb) as SXTB16 gives them, so that tpr_words22w loads them with two
 * LDRDs instead of loading and widening them for every pair of positions. */
static inline void tpr_widen2(const int8_t *wa, const int8_t *wb, int32_t n, uint32_t *out)
{
    int32_t k;
    for (k = 0; k < n; k += 4, out += 4) {
        const uint32_t ua = tpr_ld32(wa + k), ub = tpr_ld32(wb + k);
        out[0] = tpr_sx_lo(ua);
        out[1] = tpr_sx_lo(ub);
        out[2] = tpr_sx_hi(ua);
        out[3] = tpr_sx_hi(ub);
    }
}

/* tpr_words22 over `rows` kernel rows of `words` words each (the input's rows xrow bytes apart,
 * the weights widened by tpr_widen2, contiguous): per word 4 loads of the input (each word
 * twice), 2 SXTB16 pairs, 2 LDRDs and 8 SMLAD for 16 multiply-accumulates; per row 3 more. */
static __attribute__((noinline, unused)) void tpr_words22w(const int8_t *xa, int32_t dx,
                                                         const uint32_t *w, int32_t words,
                                                         int32_t rows, int32_t xrow, uint32_t acc[4])
{
    const int8_t *end, *xb = xa + dx;
    uint32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], t0, t1, t2, t3;
    xrow -= 4 * words; /* from the end of one row to the start of the next */
    for (; rows > 0; --rows, xa += xrow, xb += xrow) {
        end = xa + 4 * words;
        __asm__("1:\n\t"
                "ldr %[t0], [%[xa]]\n\t"
                "ldr %[t1], [%[xb]]\n\t"
                "sxtb16 %[t0], %[t0]\n\t"
                "sxtb16 %[t1], %[t1]\n\t"
                "ldrd %[t2], %[t3], [%[w]], #8\n\t"
                "smlad %[a0], %[t0], %[t2], %[a0]\n\t"
                "smlad %[a2], %[t1], %[t2], %[a2]\n\t"
                "smlad %[a1], %[t0], %[t3], %[a1]\n\t"
                "smlad %[a3], %[t1], %[t3], %[a3]\n\t"
                "ldr %[t0], [%[xa]], #4\n\t"
                "ldr %[t1], [%[xb]], #4\n\t"
                "sxtb16 %[t0], %[t0], ror #8\n\t"
                "sxtb16 %[t1], %[t1], ror #8\n\t"
                "ldrd %[t2], %[t3], [%[w]], #8\n\t"
                "smlad %[a0], %[t0], %[t2], %[a0]\n\t"
                "smlad %[a2], %[t1], %[t2], %[a2]\n\t"
                "smlad %[a1], %[t0], %[t3], %[a1]\n\t"
                "smlad %[a3], %[t1], %[t3], %[a3]\n\t"
                "cmp %[xa], %[end]\n\t"
                "bne 1b"
                : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [xa] "+r"(xa),
                  [xb] "+r"(xb), [w] "+r"(w), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2),
                  [t3] "=&r"(t3)
                : [end] "r"(end)
                : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Widens the n weights (n a multiple of 4) of four channels, w + j * stride for j < 4: per word,
 * lo and hi of channel 0, then of channels 1, 2, 3, for tpr_words14w's LDRDs. */
static inline void tpr_widen4(const int8_t *w, int32_t stride, int32_t n, uint32_t *out)
{
    int32_t k, j;
    for (k = 0; k < n; k += 4) {
        for (j = 0; j < 4; ++j, out += 2) {
            const uint32_t u = tpr_ld32(w + j * stride + k);
            out[0] = tpr_sx_lo(u);
            out[1] = tpr_sx_hi(u);
        }
    }
}

/* One position x four channels with the weights widened by tpr_widen4: per word one load and
 * two SXTB16 of the input, four LDRDs and 8 SMLAD for 16 multiply-accumulates (17 instructions
 * with the loop). acc[j] += x . w_j, without the input offset. */
static __attribute__((noinline, unused)) void tpr_words14w(const int8_t *x, const uint32_t *w,
                                                         int32_t words, uint32_t acc[4])
{
    const int8_t *end = x + 4 * words;
    uint32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], t0, t1, t2, t3;
    __asm__("1:\n\t"
            "ldr %[t0], [%[x]], #4\n\t"
            "sxtb16 %[t1], %[t0]\n\t"
            "sxtb16 %[t0], %[t0], ror #8\n\t"
            "ldrd %[t2], %[t3], [%[w]], #8\n\t"
            "smlad %[a0], %[t1], %[t2], %[a0]\n\t"
            "smlad %[a0], %[t0], %[t3], %[a0]\n\t"
            "ldrd %[t2], %[t3], [%[w]], #8\n\t"
            "smlad %[a1], %[t1], %[t2], %[a1]\n\t"
            "smlad %[a1], %[t0], %[t3], %[a1]\n\t"
            "ldrd %[t2], %[t3], [%[w]], #8\n\t"
            "smlad %[a2], %[t1], %[t2], %[a2]\n\t"
            "smlad %[a2], %[t0], %[t3], %[a2]\n\t"
            "ldrd %[t2], %[t3], [%[w]], #8\n\t"
            "smlad %[a3], %[t1], %[t2], %[a3]\n\t"
            "smlad %[a3], %[t0], %[t3], %[a3]\n\t"
            "cmp %[x], %[end]\n\t"
            "bne 1b"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w),
              [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3)
            : [end] "r"(end)
            : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#if !TPR_SMALL
/* One position (a FULLY_CONNECTED of one batch row: widening weights does not pay, each is read
 * once) x four channels. tpr_widen_x widens the input once, its offset added (SXTAB16), for all
 * the channels; tpr_words14x then reads the four filters (n bytes apart: w and w + 2n with
 * [w, n] addressing) as they are: per word one LDRD of the input, then per channel one load, two
 * SXTB16 and two SMLAD, 23 instructions with the loop for 16 multiply-accumulates. */
#define TPR_WORDS14X 1
static inline void tpr_widen_x(const int8_t *x, int32_t n, uint32_t o2, uint32_t *out)
{
    int32_t k;
    for (k = 0; k < n; k += 4, out += 2) {
        const uint32_t u = tpr_ld32(x + k);
        out[0] = tpr_sx_lo_add(o2, u);
        out[1] = tpr_sx_hi_add(o2, u);
    }
}

static __attribute__((noinline, unused)) void tpr_words14x(const uint32_t *xw, const int8_t *w,
                                                         int32_t n, int32_t words, uint32_t acc[4])
{
    const uint32_t *end = xw + 2 * words;
    const int8_t *w2 = w + 2 * n;
    uint32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], xl, xh, t0, t1;
#define TPR_W14X_CH(a, wl)                                                                       \
    "ldr %[t0], " wl "\n\t"                                                                       \
    "sxtb16 %[t1], %[t0]\n\t"                                                                    \
    "smlad %[" a "], %[xl], %[t1], %[" a "]\n\t"                                                  \
    "sxtb16 %[t0], %[t0], ror #8\n\t"                                                            \
    "smlad %[" a "], %[xh], %[t0], %[" a "]\n\t"
    __asm__("1:\n\t"
            "ldrd %[xl], %[xh], [%[xw]], #8\n\t"
            TPR_W14X_CH("a1", "[%[w], %[n]]")
            TPR_W14X_CH("a0", "[%[w]], #4")
            TPR_W14X_CH("a3", "[%[w2], %[n]]")
            TPR_W14X_CH("a2", "[%[w2]], #4")
            "cmp %[xw], %[end]\n\t"
            "bne 1b"
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [xw] "+r"(xw), [w] "+r"(w),
              [w2] "+r"(w2), [xl] "=&r"(xl), [xh] "=&r"(xh), [t0] "=&r"(t0), [t1] "=&r"(t1)
            : [end] "r"(end), [n] "r"(n)
            : "cc", "memory");
#undef TPR_W14X_CH
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#else
#define TPR_WORDS14X 0
#endif
#define TPR_WIDE 1
#else
#define TPR_WIDE 0
#define TPR_WORDS14X 0
#endif

/* (not at -Os, even with TPR_FAST_KERNELS: GCC then cannot meet the assembly's constraints) */
#if defined(__ARM_ARCH_6M__) && defined(__OPTIMIZE__) && !defined(__OPTIMIZE_SIZE__) && !TPR_SMALL
/* tpr_dot22 for Armv6-M (Cortex-M0/M0+), n > 0: 16 instructions for 4 multiply-accumulates. The
 * C loop needs 4 pointers, an index, temporaries and 4 accumulators, more than the 8 low
 * registers Thumb-1 loads and multiplies with, and GCC spills; here the accumulators live in
 * r8-r11 (ADD reaches them), one negative index counting up to 0 serves all four pointers (LDRSB
 * has only the register-offset form), and reloading the weights keeps the temporaries at two
 * (r7 may be the frame pointer). Divided syntax: GCC's default for Thumb-1 inline assembly. Not
 * inlined, so that the fixed registers are free. -O2 and up: at -Os GCC 12 cannot allocate them. */
static __attribute__((noinline, unused)) void tpr_dot22_v6m(const int8_t *xa, const int8_t *xb,
                                                          const int8_t *wa, const int8_t *wb,
                                                          int32_t n, uint32_t acc[4])
{
    register const int8_t *ea __asm__("r0") = xa + n;
    register const int8_t *eb __asm__("r1") = xb + n;
    register const int8_t *fa __asm__("r2") = wa + n;
    register const int8_t *fb __asm__("r3") = wb + n;
    register int32_t k __asm__("r4") = -n;
    register uint32_t a0 __asm__("r8") = acc[0];
    register uint32_t a1 __asm__("r9") = acc[1];
    register uint32_t b0 __asm__("r10") = acc[2];
    register uint32_t b1 __asm__("r11") = acc[3];
    uint32_t t0, t1;
    __asm__("1:\n\t"
            "ldrsb %[t0], [%[ea], %[k]]\n\t" /* xa */
            "ldrsb %[t1], [%[fa], %[k]]\n\t" /* wa */
            "mul %[t1], %[t0]\n\t"
            "add %[a0], %[t1]\n\t"
            "ldrsb %[t1], [%[fb], %[k]]\n\t" /* wb */
            "mul %[t1], %[t0]\n\t"
            "add %[a1], %[t1]\n\t"
            "ldrsb %[t0], [%[eb], %[k]]\n\t" /* xb */
            "ldrsb %[t1], [%[fa], %[k]]\n\t" /* wa again: two temporaries only */
            "mul %[t1], %[t0]\n\t"
            "add %[b0], %[t1]\n\t"
            "ldrsb %[t1], [%[fb], %[k]]\n\t" /* wb again */
            "mul %[t1], %[t0]\n\t"
            "add %[b1], %[t1]\n\t"
            "add %[k], #1\n\t"
            "bne 1b"
            : [a0] "+h"(a0), [a1] "+h"(a1), [b0] "+h"(b0), [b1] "+h"(b1), [k] "+l"(k),
              [t0] "=&l"(t0), [t1] "=&l"(t1)
            : [ea] "l"(ea), [eb] "l"(eb), [fa] "l"(fa), [fb] "l"(fb)
            : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = b0;
    acc[3] = b1;
}
#endif

#if TPR_MVE
/* acc[j] += x . w_j over n bytes, for the four filters w + j * n (without the input offset): per 16
 * bytes five loads and four VMLADAVA. Not inlined: in a large caller the accumulators spill. */
static __attribute__((noinline, unused)) void tpr_dot14_mve(const int8_t *x, const int8_t *w,
                                                          int32_t n, uint32_t acc[4])
{
    int32_t a0 = (int32_t)acc[0], a1 = (int32_t)acc[1], a2 = (int32_t)acc[2], a3 = (int32_t)acc[3];
    const int8_t *w1 = w + n, *w2 = w + 2 * n, *w3 = w + 3 * n;
    int32_t k;
    for (k = 0; k < n; k += 16) {
        const mve_pred16_t pr = vctp8q((uint32_t)(n - k));
        const int8x16_t xv = vldrbq_z_s8(x + k, pr);
        a0 = vmladavaq_s8(a0, xv, vldrbq_z_s8(w + k, pr));
        a1 = vmladavaq_s8(a1, xv, vldrbq_z_s8(w1 + k, pr));
        a2 = vmladavaq_s8(a2, xv, vldrbq_z_s8(w2 + k, pr));
        a3 = vmladavaq_s8(a3, xv, vldrbq_z_s8(w3 + k, pr));
    }
    acc[0] = (uint32_t)a0;
    acc[1] = (uint32_t)a1;
    acc[2] = (uint32_t)a2;
    acc[3] = (uint32_t)a3;
}
#endif

/* acc.a0 += xa.wa, a1 += xa.wb, b0 += xb.wa, b1 += xb.wb over n bytes, without the input
 * offset. */
#if defined(__GNUC__)
__attribute__((always_inline)) /* -Os would call it, once per kernel row */
#endif
static inline tpr_acc_t tpr_dot22(const int8_t *xa, const int8_t *xb, const int8_t *wa,
                                  const int8_t *wb, int32_t n, tpr_acc_t acc)
{
    int32_t k = 0;
#if TPR_MVE
    int32_t a0 = (int32_t)acc.a0, a1 = (int32_t)acc.a1, b0 = (int32_t)acc.b0, b1 = (int32_t)acc.b1;
    for (; k < n; k += 16) {
        const mve_pred16_t pr = vctp8q((uint32_t)(n - k));
        const int8x16_t va = vldrbq_z_s8(xa + k, pr), vb = vldrbq_z_s8(xb + k, pr);
        const int8x16_t ua = vldrbq_z_s8(wa + k, pr), ub = vldrbq_z_s8(wb + k, pr);
        a0 = vmladavaq_s8(a0, va, ua);
        a1 = vmladavaq_s8(a1, va, ub);
        b0 = vmladavaq_s8(b0, vb, ua);
        b1 = vmladavaq_s8(b1, vb, ub);
    }
    acc.a0 = (uint32_t)a0;
    acc.a1 = (uint32_t)a1;
    acc.b0 = (uint32_t)b0;
    acc.b1 = (uint32_t)b1;
    return acc;
#elif TPR_DSP && defined(__OPTIMIZE__)
    if (n >= 4) {
        uint32_t v[4];
        v[0] = acc.a0;
        v[1] = acc.a1;
        v[2] = acc.b0;
        v[3] = acc.b1;
        tpr_words22(xa, xb, wa, wb, n >> 2, v);
        acc.a0 = v[0];
        acc.a1 = v[1];
        acc.b0 = v[2];
        acc.b1 = v[3];
        k = n & ~3;
    }
#elif TPR_DSP
    for (; k + 4 <= n; k += 4) {
        uint32_t va = tpr_ld32(xa + k), vb = tpr_ld32(xb + k), ua = tpr_ld32(wa + k);
        uint32_t ub = tpr_ld32(wb + k);
        acc.a0 = tpr_smlad(tpr_sx_lo(va), tpr_sx_lo(ua), acc.a0);
        acc.a1 = tpr_smlad(tpr_sx_lo(va), tpr_sx_lo(ub), acc.a1);
        acc.b0 = tpr_smlad(tpr_sx_lo(vb), tpr_sx_lo(ua), acc.b0);
        acc.b1 = tpr_smlad(tpr_sx_lo(vb), tpr_sx_lo(ub), acc.b1);
        acc.a0 = tpr_smlad(tpr_sx_hi(va), tpr_sx_hi(ua), acc.a0);
        acc.a1 = tpr_smlad(tpr_sx_hi(va), tpr_sx_hi(ub), acc.a1);
        acc.b0 = tpr_smlad(tpr_sx_hi(vb), tpr_sx_hi(ua), acc.b0);
        acc.b1 = tpr_smlad(tpr_sx_hi(vb), tpr_sx_hi(ub), acc.b1);
    }
#elif defined(__ARM_ARCH_6M__) && defined(__OPTIMIZE__) && !defined(__OPTIMIZE_SIZE__) && !TPR_SMALL
    if (n > 0) {
        uint32_t v[4];
        v[0] = acc.a0;
        v[1] = acc.a1;
        v[2] = acc.b0;
        v[3] = acc.b1;
        tpr_dot22_v6m(xa, xb, wa, wb, n, v);
        acc.a0 = v[0];
        acc.a1 = v[1];
        acc.b0 = v[2];
        acc.b1 = v[3];
        k = n;
    }
#endif
    for (; k < n; ++k) {
        const int32_t va = xa[k], vb = xb[k], ua = wa[k], ub = wb[k];
        acc.a0 += (uint32_t)(va * ua);
        acc.a1 += (uint32_t)(va * ub);
        acc.b0 += (uint32_t)(vb * ua);
        acc.b1 += (uint32_t)(vb * ub);
    }
    return acc;
}

#if TPR_DSP
/* tpr_dot12 over `rows` runs of one word each, xs bytes apart in the input and contiguous in the
 * filter (the border positions of first layers with one or few input channels: a 10x4 kernel
 * over one channel). */
static inline tpr_acc_t tpr_dot12_words(const int8_t *x, const int8_t *wa, int32_t dw,
                                        int32_t rows, int32_t xs, int32_t off, tpr_acc_t acc)
{
    const uint32_t o2 = tpr_off2(off);
    uint32_t a0 = acc.a0, a1 = acc.a1;
    int32_t r;
    for (r = 0; r < rows; ++r, x += xs, wa += 4) {
        const uint32_t v = tpr_ld32(x), ua = tpr_ld32(wa), ub = tpr_ld32(wa + dw);
        const uint32_t lo = tpr_sx_lo_add(o2, v), hi = tpr_sx_hi_add(o2, v);
        a0 = tpr_smlad(lo, tpr_sx_lo(ua), a0);
        a0 = tpr_smlad(hi, tpr_sx_hi(ua), a0);
        a1 = tpr_smlad(lo, tpr_sx_lo(ub), a1);
        a1 = tpr_smlad(hi, tpr_sx_hi(ub), a1);
    }
    acc.a0 = a0;
    acc.a1 = a1;
    return acc;
}
#endif

/* acc.a0 += (x + off).wa, a1 += (x + off).wb over n bytes. */
static inline tpr_acc_t tpr_dot12(const int8_t *x, const int8_t *wa, const int8_t *wb, int32_t n,
                                  int32_t off, tpr_acc_t acc)
{
    uint32_t a0 = acc.a0, a1 = acc.a1;
    int32_t k = 0;
#if TPR_MVE
    int32_t d0 = 0, d1 = 0, s0 = 0, s1 = 0; /* x.w and the sums of w (times the offset at the end) */
    for (; k < n; k += 16) {
        const mve_pred16_t pr = vctp8q((uint32_t)(n - k));
        const int8x16_t v = vldrbq_z_s8(x + k, pr);
        const int8x16_t ua = vldrbq_z_s8(wa + k, pr), ub = vldrbq_z_s8(wb + k, pr);
        d0 = vmladavaq_s8(d0, v, ua);
        d1 = vmladavaq_s8(d1, v, ub);
        s0 = vaddvaq_s8(s0, ua);
        s1 = vaddvaq_s8(s1, ub);
    }
    a0 += (uint32_t)d0 + (uint32_t)off * (uint32_t)s0;
    a1 += (uint32_t)d1 + (uint32_t)off * (uint32_t)s1;
#elif TPR_DSP
    const uint32_t o2 = tpr_off2(off);
    for (; k + 4 <= n; k += 4) {
        uint32_t v = tpr_ld32(x + k), ua = tpr_ld32(wa + k), ub = tpr_ld32(wb + k);
        uint32_t lo = tpr_sx_lo_add(o2, v), hi = tpr_sx_hi_add(o2, v);
        a0 = tpr_smlad(lo, tpr_sx_lo(ua), a0);
        a1 = tpr_smlad(lo, tpr_sx_lo(ub), a1);
        a0 = tpr_smlad(hi, tpr_sx_hi(ua), a0);
        a1 = tpr_smlad(hi, tpr_sx_hi(ub), a1);
    }
#endif
    for (; k < n; ++k) {
        int32_t v = x[k] + off;
        a0 += (uint32_t)(v * wa[k]);
        a1 += (uint32_t)(v * wb[k]);
    }
    acc.a0 = a0;
    acc.a1 = a1;
    return acc;
}

#endif
