/* ADD, int8 with broadcasting: TFLite Micro's reference_integer_ops::AddFunc. Both inputs are
 * rescaled to twice the larger input scale with 20 bits of headroom, summed, then rescaled to the
 * output (add_common.cc). */
#define TPR_HOT_FILE /* TPR_FAST_KERNELS applies: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_ADD

enum { ACTIVATION = 0 };

/* What the loops need: the inputs, the output, the inputs' and the output's rescaling. */
typedef struct {
    tpr_tensor_t a, b, out;
    tpr_mq_t q[3];
    int32_t lo, hi;
} add_t;

/* Validation and the multipliers: once per operator and invoke, compiled for size. */
TPR_COLD static tpr_status_t add_prepare(tpr_ctx_t *c, add_t *p, tpr_bcast_t *bc)
{
    tpr_status_t st;
    tpr_real_t ra, rb, ro, twice_max;
    if ((st = tpr_in(c, 0, &p->a)) || (st = tpr_in(c, 1, &p->b)) || (st = tpr_out(c, 0, &p->out)) ||
        (st = tpr_check_int8(c, &p->a, 1)) || (st = tpr_check_int8(c, &p->b, 1)) ||
        (st = tpr_check_int8(c, &p->out, 1)) || (st = tpr_bcast_init(c, &p->a, &p->b, &p->out, bc)) ||
        (st = tpr_activation(c, tpr_opt(c, ACTIVATION, 1, 0), &p->out, &p->lo, &p->hi))) {
        return st;
    }
    if (!tpr_real_f32(p->a.scale, &ra) || !tpr_real_f32(p->b.scale, &rb) ||
        !tpr_real_f32(p->out.scale, &ro)) {
        return TPR_FAIL(c, TPR_ERR_QUANT, p->out.index, "scale not positive and finite");
    }
    twice_max = p->a.scale >= p->b.scale ? ra : rb; /* positive floats order like their bits */
    twice_max.e += 1;
    ro.e += 20; /* (1 << left_shift) * output_scale */
    tpr_quantize_ratio(ra, twice_max, &p->q[0].m, &p->q[0].shift);
    tpr_quantize_ratio(rb, twice_max, &p->q[1].m, &p->q[1].shift);
    tpr_quantize_ratio(twice_max, ro, &p->q[2].m, &p->q[2].shift);
    if (p->q[2].shift > 0) { /* QuantizeMultiplierSmallerThanOneExp: the multiplier must be below 1 */
        return TPR_FAIL(c, TPR_ERR_QUANT, p->out.index, "output scale too small for the inputs'");
    }
    return TPR_OK;
}

/* Any shapes and activation: the reference's arithmetic, element by element along the
 * broadcast. Compiled for size: the zoo's ADDs take add_flat. */
TPR_COLD static void add_general(const add_t *p, tpr_bcast_t *bc)
{
    const tpr_mq_t *q = p->q;
    uint32_t i;
    for (i = 0; i < p->out.count; ++i) {
        int32_t x = (int32_t)((uint32_t)(((const int8_t *)p->a.data)[bc->o1] - p->a.zp) << 20);
        int32_t y = (int32_t)((uint32_t)(((const int8_t *)p->b.data)[bc->o2] - p->b.zp) << 20);
        int32_t sum = tpr_add_w(tpr_mbqm(x, q[0].m, q[0].shift), tpr_mbqm(y, q[1].m, q[1].shift));
        ((int8_t *)p->out.data)[i] = tpr_clamp8(tpr_mbqm(sum, q[2].m, q[2].shift) + p->out.zp, p->lo, p->hi);
        tpr_bcast_next(bc);
    }
}

#if !TPR_SMALL
/* Inputs and output of one shape, and no activation clamp (nearly every ADD): the input of the
 * larger scale (h) is rescaled by exactly 1/2: multiplier 2^30, shift 0, and
 * SRDHM(v 2^20, 2^30) = v 2^19; the output's requantization is tpr_requant_full's. */
static void add_flat(const tpr_tensor_t *h, const tpr_tensor_t *r, const tpr_tensor_t *out,
                     const tpr_mq_t *qr, const tpr_mq_t *qo)
{
    const int8_t *ph = (const int8_t *)h->data, *pr = (const int8_t *)r->data;
    int8_t *po = (int8_t *)out->data;
    const int32_t zh = h->zp, zr = r->zp, zo = out->zp;
    const tpr_mq_t q = *qr, o = *qo;
    uint32_t i;
    for (i = 0; i < out->count; ++i) {
        const uint32_t x = (uint32_t)(ph[i] - zh) << 19;
        const int32_t y = (int32_t)((uint32_t)(pr[i] - zr) << 20);
        po[i] = tpr_requant_full(x + (uint32_t)tpr_rescale(y, &q), &o, zo); /* the sum wraps */
    }
}
#endif

tpr_status_t tpr_k_add(tpr_ctx_t *c)
{
    add_t p;
    tpr_bcast_t bc;
    tpr_status_t st;
#if !TPR_SMALL
    int i, half;
#endif
    if ((st = add_prepare(c, &p, &bc)) != TPR_OK || !c->eval) {
        return st;
    }
#if !TPR_SMALL
    /* the rescaling by exactly 1/2: always one input's (twice the larger scale) */
    half = p.q[0].m == (1 << 30) && p.q[0].shift == 0 ? 0 : 1;
    for (i = 0; i < 3; ++i) { /* for tpr_rescale and tpr_requant_full */
        tpr_mq_prepare(&p.q[i]);
    }
    if (p.a.count == p.out.count && p.b.count == p.out.count && p.q[half].m == (1 << 30) &&
        p.q[half].shift == 0 && tpr_requant_full_applies(&p.q[2], 1, p.lo, p.hi)) {
        add_flat(half == 0 ? &p.a : &p.b, half == 0 ? &p.b : &p.a, &p.out, &p.q[1 - half], &p.q[2]);
        return TPR_OK;
    }
#endif
    add_general(&p, &bc);
    return TPR_OK;
}

#endif
