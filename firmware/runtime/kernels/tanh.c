/* TANH, int8: see logistic.c. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_TANH

tpr_status_t tpr_k_tanh(tpr_ctx_t *c)
{
    return tpr_logistic_tanh(c, 1);
}

#endif
