/* AVERAGE_POOL_2D, int8: see pool_common.c. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_kernel.h"

#if TPR_OP_AVERAGE_POOL_2D

tpr_status_t tpr_k_average_pool_2d(tpr_ctx_t *c)
{
    return tpr_pool(c, 1);
}

#endif
