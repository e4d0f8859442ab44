/* The operator registry: builtin code -> kernel, highest version, options type. Only the
 * operators selected in tpr_config.h are listed, so the linker drops every other kernel. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_internal.h"

#if TPR_ERROR_DETAIL
#include "tpr_opnames.h"
#endif

/* BuiltinOptions union types (schema.fbs) */
enum { O_NONE = 0, O_CONV = 1, O_DWCONV = 2, O_POOL = 5, O_FC = 8, O_SOFTMAX = 9, O_CONCAT = 10,
       O_ADD = 11, O_RESHAPE = 17, O_MUL = 21, O_PAD = 22, O_REDUCER = 27, O_SQUEEZE = 30,
       O_PADV2 = 43, O_EXPAND_DIMS = 52, O_QUANTIZE = 89, O_HARD_SWISH = 91 };

static const tpr_kernel_t kernels[] = {
#if TPR_OP_ADD
    {0, 2, O_ADD, TPR_KFLAG_INPLACE, tpr_k_add},
#endif
#if TPR_OP_AVERAGE_POOL_2D
    {1, 2, O_POOL, 0, tpr_k_average_pool_2d},
#endif
#if TPR_OP_CONCATENATION
    {2, 2, O_CONCAT, 0, tpr_k_concatenation},
#endif
#if TPR_OP_CONV_2D
    {3, 6, O_CONV, 0, tpr_k_conv_2d},
#endif
#if TPR_OP_DEPTHWISE_CONV_2D
    {4, 6, O_DWCONV, 0, tpr_k_depthwise_conv_2d},
#endif
#if TPR_OP_DEQUANTIZE
    {6, 2, O_NONE, 0, tpr_k_dequantize},
#endif
#if TPR_OP_FULLY_CONNECTED
    {9, 6, O_FC, 0, tpr_k_fully_connected},
#endif
#if TPR_OP_LOGISTIC
    {14, 2, O_NONE, TPR_KFLAG_INPLACE, tpr_k_logistic},
#endif
#if TPR_OP_MAX_POOL_2D
    {17, 2, O_POOL, 0, tpr_k_max_pool_2d},
#endif
#if TPR_OP_MUL
    {18, 3, O_MUL, TPR_KFLAG_INPLACE, tpr_k_mul},
#endif
#if TPR_OP_RESHAPE
    {22, 1, O_RESHAPE, TPR_KFLAG_ALIAS, tpr_k_reshape},
#endif
#if TPR_OP_SOFTMAX
    {25, 2, O_SOFTMAX, 0, tpr_k_softmax},
#endif
#if TPR_OP_TANH
    {28, 2, O_NONE, TPR_KFLAG_INPLACE, tpr_k_tanh},
#endif
#if TPR_OP_PAD
    {34, 4, O_PAD, TPR_KFLAG_INPLACE_PAD, tpr_k_pad},
#endif
#if TPR_OP_MEAN
    {40, 2, O_REDUCER, 0, tpr_k_mean},
#endif
#if TPR_OP_SQUEEZE
    {43, 1, O_SQUEEZE, TPR_KFLAG_ALIAS, tpr_k_reshape},
#endif
#if TPR_OP_PADV2
    {60, 4, O_PADV2, TPR_KFLAG_INPLACE_PAD, tpr_k_pad},
#endif
#if TPR_OP_EXPAND_DIMS
    {70, 1, O_EXPAND_DIMS, TPR_KFLAG_ALIAS, tpr_k_reshape},
#endif
#if TPR_OP_QUANTIZE
    {114, 1, O_QUANTIZE, TPR_KFLAG_INPLACE, tpr_k_quantize},
#endif
#if TPR_OP_HARD_SWISH
    {117, 1, O_HARD_SWISH, TPR_KFLAG_INPLACE, tpr_k_hard_swish},
#endif
#define TPR_BUILT_OR(name, c, v) || TPR_OP_##name
#if 0 TPR_OP_LIST(TPR_BUILT_OR)
#define TPR_NO_OPS 0
#else
#define TPR_NO_OPS 1
    {0, 0, 0, 0, 0} /* keeps the array non-empty when no op is selected (never searched) */
#endif
#undef TPR_BUILT_OR
};

/* Builtin codes of every operator the runtime implements (built or not). */
static int implemented(int32_t code)
{
#define TPR_IMPL_CASE(name, c, v) case c:
    switch (code) {
        TPR_OP_LIST(TPR_IMPL_CASE)
        return 1;
    default:
        return 0;
    }
#undef TPR_IMPL_CASE
}

/* Whether every implemented operator is built (then one missing from the table is unknown). */
#define TPR_BUILT_AND(name, c, v) &&TPR_OP_##name
enum { ALL_BUILT = 1 TPR_OP_LIST(TPR_BUILT_AND) };
#undef TPR_BUILT_AND

tpr_status_t tpr_find_kernel(int32_t code, int32_t version, const tpr_kernel_t **kern)
{
    const tpr_kernel_t *k;
    for (k = kernels; k < kernels + sizeof kernels / sizeof kernels[0] - TPR_NO_OPS; ++k) {
        if (k->code == code) {
            if (version < 1 || version > k->max_version) {
                return TPR_ERR_OP_VERSION;
            }
            *kern = k;
            return TPR_OK;
        }
    }
    return !ALL_BUILT && implemented(code) ? TPR_ERR_OP_NOT_BUILT : TPR_ERR_UNSUPPORTED_OP;
}

tpr_status_t tpr_op_supported(int32_t code, int32_t version)
{
    const tpr_kernel_t *k;
    return tpr_find_kernel(code, version, &k);
}

const char *tpr_op_name(int32_t code)
{
#if TPR_ERROR_DETAIL
    static const char *const names[TPR_OPNAME_COUNT] = {TPR_OPNAMES};
    if (code >= 0 && code < TPR_OPNAME_COUNT) {
        return names[code];
    }
#else
    (void)code;
#endif
    return "";
}
