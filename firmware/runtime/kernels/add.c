/* ADD, int8 with broadcasting: TFLite Micro's reference_integer_ops::AddFunc. Both inputs are
 * rescaled to twice the larger input scale with 20 bits of headroom, summed, then rescaled to the
 * output (add_common.cc). */
#include "tpr_kernel.h"

#if TPR_OP_ADD

enum { ACTIVATION = 0 };

#if !TPR_SMALL
/* Inputs and output of one shape: no broadcasting, the multipliers prepared once. The input of
 * the larger scale (h) is rescaled by exactly 1/2: multiplier 2^30, shift 0, and
 * SRDHM(v 2^20, 2^30) = v 2^19. Without an activation clamp (nearly every ADD) the output's
 * requantization is tpr_requant_full's. */
static void add_flat(const tpr_tensor_t *h, const tpr_tensor_t *r, const tpr_tensor_t *out,
                     const tpr_mq_t *qr, const tpr_mq_t *qo, int32_t lo, int32_t hi)
{
    const int8_t *ph = (const int8_t *)h->data, *pr = (const int8_t *)r->data;
    int8_t *po = (int8_t *)out->data;
    const int32_t zh = h->zp, zr = r->zp, zo = out->zp;
    const tpr_mq_t q = *qr, o = *qo;
    uint32_t i;
    if (tpr_requant_full_applies(&o, 1, lo, hi)) {
        for (i = 0; i < out->count; ++i) {
            const uint32_t x = (uint32_t)(ph[i] - zh) << 19;
            const int32_t y = (int32_t)((uint32_t)(pr[i] - zr) << 20);
            po[i] = tpr_requant_full(x + (uint32_t)tpr_rescale(y, &q), &o, zo); /* the sum wraps */
        }
        return;
    }
    for (i = 0; i < out->count; ++i) {
        const uint32_t x = (uint32_t)(ph[i] - zh) << 19;
        const int32_t y = (int32_t)((uint32_t)(pr[i] - zr) << 20);
        po[i] = tpr_clamp8(tpr_rescale((int32_t)(x + (uint32_t)tpr_rescale(y, &q)), &o) + zo, lo, hi);
    }
}
#endif

tpr_status_t tpr_k_add(tpr_ctx_t *c)
{
    tpr_tensor_t a, b, out;
    tpr_bcast_t bc;
    tpr_status_t st;
    tpr_real_t ra, rb, ro, twice_max;
    int32_t lo, hi;
    tpr_mq_t q[3]; /* the inputs' and the output's rescaling */
    uint32_t i;
    int flat;
#if !TPR_SMALL
    int a_half, b_half;
#endif

    if ((st = tpr_in(c, 0, &a)) || (st = tpr_in(c, 1, &b)) || (st = tpr_out(c, 0, &out)) ||
        (st = tpr_check_int8(c, &a, 1)) || (st = tpr_check_int8(c, &b, 1)) ||
        (st = tpr_check_int8(c, &out, 1)) || (st = tpr_bcast_init(c, &a, &b, &out, &bc)) ||
        (st = tpr_activation(c, tpr_opt(c, ACTIVATION, 1, 0), &out, &lo, &hi))) {
        return st;
    }
    if (!tpr_real_f32(a.scale, &ra) || !tpr_real_f32(b.scale, &rb) || !tpr_real_f32(out.scale, &ro)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, out.index, "scale not positive and finite");
    }
    twice_max = a.scale >= b.scale ? ra : rb; /* positive floats order like their bits */
    twice_max.e += 1;
    ro.e += 20; /* (1 << left_shift) * output_scale */
    tpr_quantize_ratio(ra, twice_max, &q[0].m, &q[0].shift);
    tpr_quantize_ratio(rb, twice_max, &q[1].m, &q[1].shift);
    tpr_quantize_ratio(twice_max, ro, &q[2].m, &q[2].shift);
    if (q[2].shift > 0) { /* QuantizeMultiplierSmallerThanOneExp: the multiplier must be below 1 */
        return TPR_FAIL(c, TPR_ERR_QUANT, out.index, "output scale too small for the inputs'");
    }
    if (!c->eval) {
        return TPR_OK;
    }
    flat = a.count == out.count && b.count == out.count;
#if !TPR_SMALL
    a_half = q[0].m == (1 << 30) && q[0].shift == 0; /* the rescaling by exactly 1/2 */
    b_half = q[1].m == (1 << 30) && q[1].shift == 0;
    if (flat && (a_half || b_half)) { /* always one of them: twice the larger scale */
        for (i = 0; i < 3; ++i) { /* for tpr_rescale */
            tpr_mq_prepare(&q[i]);
        }
        add_flat(a_half ? &a : &b, a_half ? &b : &a, &out, &q[a_half ? 1 : 0], &q[2], lo, hi);
        return TPR_OK;
    }
#endif
    for (i = 0; i < out.count; ++i) {
        int32_t x = (int32_t)((uint32_t)(((const int8_t *)a.data)[bc.o1] - a.zp) << 20);
        int32_t y = (int32_t)((uint32_t)(((const int8_t *)b.data)[bc.o2] - b.zp) << 20);
        int32_t sum = tpr_add_w(tpr_mbqm(x, q[0].m, q[0].shift),
                                tpr_mbqm(y, q[1].m, q[1].shift));
        ((int8_t *)out.data)[i] = tpr_clamp8(tpr_mbqm(sum, q[2].m, q[2].shift) + out.zp, lo, hi);
        if (flat) { /* same shapes: no broadcasting */
            ++bc.o1;
            ++bc.o2;
        } else {
            tpr_bcast_next(&bc);
        }
    }
    return TPR_OK;
}

#endif
