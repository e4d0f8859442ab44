/* Shared by the element-wise kernels: their tensors' checks (tpr_io), and the broadcast iteration
 * of ADD and MUL: the output in row-major order, each input's offset following it (stride 0
 * along broadcast dimensions). Results do not depend on the order, so this matches TFLite Micro's
 * BroadcastBinaryFunction6DSlow and its flat fast path alike. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_LOGISTIC || TPR_OP_TANH || TPR_OP_HARD_SWISH || TPR_OP_SOFTMAX || TPR_OP_QUANTIZE || \
    TPR_OP_DEQUANTIZE || TPR_OP_MEAN || TPR_OP_PAD || TPR_OP_PADV2 || TPR_OP_MUL

tpr_status_t tpr_io(tpr_ctx_t *c, tpr_tensor_t *in, tpr_tensor_t *in1, tpr_tensor_t *out,
                    unsigned how)
{
    tpr_status_t st;
    if ((st = tpr_in(c, 0, in)) || (in1 && (st = tpr_in(c, 1, in1))) || (st = tpr_out(c, 0, out)) ||
        ((how & TPR_IO_IN8) && (st = tpr_check_int8(c, in, how & 2u))) ||
        ((how & TPR_IO_IN1Q) && (st = tpr_check_int8(c, in1, 1))) ||
        ((how & TPR_IO_OUT8) && (st = tpr_check_int8(c, out, how & 16u))) ||
        ((how >> 8) && (st = tpr_check_rank(c, in, 1, how >> 8)))) {
        return st;
    }
    return how & TPR_IO_SAME ? tpr_check_same_count(c, in, out) : TPR_OK;
}

#endif

#if TPR_OP_ADD || TPR_OP_MUL

static int32_t dim_of(const tpr_tensor_t *t, uint32_t n, uint32_t d)
{
    uint32_t lead = n - t->ndims; /* shapes align on the right */
    return d < lead ? 1 : t->dims[d - lead];
}

tpr_status_t tpr_bcast_init(tpr_ctx_t *c, const tpr_tensor_t *a, const tpr_tensor_t *b,
                            const tpr_tensor_t *out, tpr_bcast_t *bc)
{
    uint32_t d, n = out->ndims;
    int32_t st1 = 1, st2 = 1;
    memset(bc, 0, sizeof *bc);
    if (a->ndims > n || b->ndims > n) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, out->index, "input rank above output rank");
    }
    bc->n = n;
    for (d = n; d-- > 0;) {
        int32_t da = dim_of(a, n, d), db = dim_of(b, n, d), dout = out->dims[d];
        int32_t lo = da < db ? da : db, hi = da < db ? db : da;
        if (hi != dout || (lo != 1 && lo != hi)) { /* each 1 or the output's size */
            return TPR_FAIL(c, TPR_ERR_SHAPE, out->index, "shapes do not broadcast to the output");
        }
        bc->dims[d] = dout;
        bc->s1[d] = da == 1 ? 0 : st1;
        bc->s2[d] = db == 1 ? 0 : st2;
        st1 *= da;
        st2 *= db;
    }
    return TPR_OK;
}

void tpr_bcast_next(tpr_bcast_t *bc)
{
    uint32_t d = bc->n;
    while (d-- > 0) {
        bc->o1 += bc->s1[d];
        bc->o2 += bc->s2[d];
        if (++bc->idx[d] < bc->dims[d]) {
            return;
        }
        bc->o1 -= bc->s1[d] * bc->dims[d];
        bc->o2 -= bc->s2[d] * bc->dims[d];
        bc->idx[d] = 0;
    }
}

#endif
