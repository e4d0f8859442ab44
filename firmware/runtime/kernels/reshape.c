/* RESHAPE, SQUEEZE and EXPAND_DIMS: the bytes do not change. The planner normally lets the
 * output share the input's memory, and then there is nothing to do on invoke (tpr_init checked
 * the tensors); otherwise (constant input) the bytes are copied. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_RESHAPE || TPR_OP_SQUEEZE || TPR_OP_EXPAND_DIMS

tpr_status_t tpr_k_reshape(tpr_ctx_t *c)
{
    tpr_tensor_t in, out;
    tpr_status_t st;
    if (c->eval && c->in.len > 0) { /* aliased by the plan: nothing to read again or to move */
        const uint32_t a = tpr_fb_vec_u32(c->fb, &c->in, 0), b = tpr_fb_vec_u32(c->fb, &c->out, 0);
        if (a < c->m->n_tensors && b < c->m->n_tensors && c->m->loc[a] == c->m->loc[b]) {
            return TPR_OK;
        }
    }
    if ((st = tpr_in(c, 0, &in)) || (st = tpr_out(c, 0, &out)) ||
        (st = tpr_check_same_count(c, &in, &out))) {
        return st;
    }
    if (in.type != out.type) {
        return TPR_FAIL(c, TPR_ERR_TYPE, out.index, "input and output types differ");
    }
    if (c->eval && in.data != out.data) {
        memcpy(out.data, in.data, in.bytes);
    }
    return TPR_OK;
}

#endif
