/* tinyprune micro runtime: runs an int8 TFLite model (the same .tflite byte array a TFLite Micro
 * application uses) with kernels that reproduce TFLite Micro's reference kernels bit for bit.
 *
 * Plain C99. No malloc, no global mutable state (several models can live in one firmware), no
 * libc beyond memcpy/memset, no floating point except in the float-interface ops QUANTIZE
 * (float32 in) and DEQUANTIZE (float32 out). The model bytes are untrusted: every offset, length
 * and index is bounds-checked before use (see README.md, "Trust model").
 *
 * Typical use:
 *
 *     static uint8_t arena[MODEL_ARENA_BYTES] __attribute__((aligned(16)));
 *     tpr_model_t m;
 *     tpr_status_t s = tpr_init(&m, model_data, model_size, arena, sizeof arena);
 *     if (s != TPR_OK) { puts(tpr_status_str(s)); ... }
 *     tpr_io_t in, out;
 *     tpr_input(&m, 0, &in);                    // in.data, in.dims, in.scale_bits, in.zero_point
 *     memcpy(in.data, sample, in.bytes);
 *     s = tpr_invoke(&m);
 *     tpr_output(&m, 0, &out);                  // read out.bytes bytes at out.data
 *
 * Arena layout (one caller-provided block, 4-byte aligned):
 *
 *     [ tensor locations: 4 bytes per tensor ][ planned activations (peak of the plan) ]
 *
 * During tpr_init the activation area first holds the planner's scratch (10 bytes per tensor:
 * size, first and last op using it, sorted order), so arena_required = locations +
 * max(activations, scratch).
 *
 * The bytes beyond arena_required keep the multipliers of the convolution-like operators (one per
 * output channel, or one per operator with per-tensor scales), computed once by tpr_init, in
 * groups of four (20 bytes: 4 x int32, 4 x int8 shift) from the arena's top down:
 *
 *     [ locations ][ activations ] ... [ multipliers: the last group ... the first ]
 *
 * and tpr_invoke reads those instead of computing them again (the same values: a model's outputs
 * do not depend on the arena). With arena_fast bytes (tpr_fast_arena_bytes) all of them are kept;
 * any size in between keeps the first ones (m->mult_kept).
 */
#ifndef TPR_RUNTIME_H
#define TPR_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "tpr_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every status the runtime returns, with its message: one list (an X-macro), one string function. */
#define TPR_STATUS_LIST(X)                                            \
    X(TPR_OK, "ok")                                                   \
    X(TPR_ERR_ARG, "bad argument")                                    \
    X(TPR_ERR_TRUNCATED, "model truncated (offset outside the data)") \
    X(TPR_ERR_IDENTIFIER, "not a TFLite model")                       \
    X(TPR_ERR_SCHEMA_VERSION, "schema version not 3")                 \
    X(TPR_ERR_MALFORMED, "malformed flatbuffer")                      \
    X(TPR_ERR_INDEX, "index out of range")                            \
    X(TPR_ERR_UNSUPPORTED_OP, "unsupported operator")                 \
    X(TPR_ERR_OP_NOT_BUILT, "operator not built in")                  \
    X(TPR_ERR_OP_VERSION, "unsupported operator version")             \
    X(TPR_ERR_TYPE, "unsupported type")                               \
    X(TPR_ERR_SHAPE, "bad shape")                                     \
    X(TPR_ERR_QUANT, "bad quantization")                              \
    X(TPR_ERR_OPTIONS, "bad options")                                 \
    X(TPR_ERR_GRAPH, "bad graph")                                     \
    X(TPR_ERR_LIMIT, "limit exceeded")                                \
    X(TPR_ERR_ALIGNMENT, "misaligned data")                           \
    X(TPR_ERR_ARENA_TOO_SMALL, "arena too small")                     \
    X(TPR_ERR_EVAL, "kernel failed")

typedef enum {
#define TPR_STATUS_ENUM(name, msg) name,
    TPR_STATUS_LIST(TPR_STATUS_ENUM)
#undef TPR_STATUS_ENUM
    TPR_STATUS_COUNT
} tpr_status_t;

/* Tensor element types, numbered as in the TFLite schema. */
enum { TPR_TYPE_FLOAT32 = 0, TPR_TYPE_INT32 = 2, TPR_TYPE_INT8 = 9 };

/* Location of a tensor that has no arena space (constant, optional or unused). */
#define TPR_LOC_NONE 0xFFFFFFFFu

#if TPR_PROFILE
/* Called by tpr_invoke before operator `op` runs (op = 0 .. n_ops - 1) and once more with
 * op = n_ops after the last one: the time between two calls is operator op - 1's. */
typedef void (*tpr_op_hook_t)(void *user, uint32_t op);
#endif

/* One model: caller-allocated, fixed size, no pointers into it are kept by the runtime. */
typedef struct tpr_model {
    const uint8_t *data; /* the .tflite bytes (stay in flash; never copied) */
    uint32_t size;
    uint8_t *arena;
    uint32_t arena_size;
    uint32_t arena_required;   /* bytes the plan needs; set by tpr_init even when it fails with
                                  TPR_ERR_ARENA_TOO_SMALL (0 if the model did not validate) */
    uint32_t activation_bytes; /* peak of the planned tensors */
    uint32_t mult_count;       /* multipliers of the convolution-like operators (capped at 2^30) */
    uint32_t arena_fast;       /* arena_required + 20 bytes per four multipliers (0xFFFFFFFF if
                                  above 2 GiB): with this much, tpr_invoke reads them from the arena */
    uint32_t mult_room;        /* groups of four multipliers at the arena's top: while planning,
                                  above the scratch (stored); then above the plan (read) */
    uint32_t mult_kept;        /* multipliers tpr_invoke reads from the arena: all of them from
                                  arena_fast bytes up, the first ones in a smaller arena */
    uint32_t *loc;             /* in the arena: per tensor, offset of its data or TPR_LOC_NONE */
    /* validated positions of the model's vectors (first element) and their lengths */
    uint32_t opcodes, n_opcodes;
    uint32_t buffers, n_buffers;
    uint32_t tensors, n_tensors;
    uint32_t operators, n_ops;
    uint32_t inputs, n_inputs;
    uint32_t outputs, n_outputs;
    uint32_t ready; /* TPR_READY_MAGIC after a successful tpr_init */
    tpr_status_t status;
    int32_t err_op;     /* operator the last error is about, or -1 */
    int32_t err_tensor; /* tensor the last error is about, or -1 */
    int32_t err_code;   /* builtin code of an unsupported operator, or -1 */
    int32_t err_version; /* and its version */
#if TPR_ERROR_DETAIL
    char detail[TPR_DETAIL_BYTES]; /* host builds: which tensor/op/field and why */
#endif
#if TPR_PROFILE
    tpr_op_hook_t op_hook; /* set after tpr_init (which clears it); NULL: not called */
    void *op_hook_user;
#endif
} tpr_model_t;

#define TPR_READY_MAGIC 0x54505231u /* "TPR1" */
#define TPR_MULT_GROUP_BYTES 20u /* four stored multipliers: 4 x int32 m, 4 x int8 shift */

/* One input or output of the graph. */
typedef struct {
    void *data;                 /* bytes of the tensor in the arena */
    uint32_t bytes;             /* elements * element size */
    int32_t dims[TPR_MAX_DIMS]; /* shape, e.g. {1, 49, 10, 1} */
    uint8_t ndims;
    uint8_t type;        /* TPR_TYPE_INT8 or TPR_TYPE_FLOAT32 */
    int32_t zero_point;  /* quantization of int8 tensors: real = scale * (q - zero_point) */
    uint32_t scale_bits; /* the float32 scale's IEEE-754 bits (0 when absent) */
} tpr_io_t;

/* Validate `model`, plan its tensors into `arena` and get it ready to run. Returns TPR_OK, or an
 * error: the model is then unusable and m->status / tpr_detail(m) say why. When the arena is too
 * small the result is TPR_ERR_ARENA_TOO_SMALL and m->arena_required holds the bytes needed (if the
 * arena could hold the plan's working data: 14 bytes per tensor). */
tpr_status_t tpr_init(tpr_model_t *m, const void *model, size_t model_size, void *arena,
                      size_t arena_size);

/* The arena bytes tpr_init needs for `model`, planned inside `work` (which needs 14 bytes per
 * tensor). If `work` is too small the result is TPR_ERR_ARENA_TOO_SMALL and *required holds the
 * work size to retry with. */
tpr_status_t tpr_required_arena_bytes(const void *model, size_t model_size, void *work,
                                      size_t work_size, uint32_t *required);

/* Like tpr_required_arena_bytes, the arena that keeps every multiplier (m->arena_fast): tpr_invoke
 * reads them instead of computing them, which pays most in layers with few output positions per
 * channel (fully connected ones) and on cores without a double-precision FPU. */
tpr_status_t tpr_fast_arena_bytes(const void *model, size_t model_size, void *work,
                                  size_t work_size, uint32_t *fast);

/* Run one inference on the current input data. */
tpr_status_t tpr_invoke(tpr_model_t *m);

uint32_t tpr_input_count(const tpr_model_t *m);
uint32_t tpr_output_count(const tpr_model_t *m);
/* Describe graph input/output `index` (an error here is also recorded in the model). */
tpr_status_t tpr_input(tpr_model_t *m, uint32_t index, tpr_io_t *io);
tpr_status_t tpr_output(tpr_model_t *m, uint32_t index, tpr_io_t *io);

/* A constant message for a status. */
const char *tpr_status_str(tpr_status_t s);

/* The most precise message for the model's last error: with TPR_ERROR_DETAIL it names the
 * operator, tensor and field; otherwise the status message. */
const char *tpr_detail(const tpr_model_t *m);

/* Whether this build runs builtin operator `code` at `version`: TPR_OK, TPR_ERR_UNSUPPORTED_OP,
 * TPR_ERR_OP_NOT_BUILT or TPR_ERR_OP_VERSION. */
tpr_status_t tpr_op_supported(int32_t code, int32_t version);

/* The TFLite name of builtin operator `code` ("CONV_2D"); "" when unknown or when names are
 * compiled out (TPR_ERROR_DETAIL 0). */
const char *tpr_op_name(int32_t code);

/* sizeof(tpr_model_t), for bindings that allocate it. */
size_t tpr_model_sizeof(void);

#ifdef __cplusplus
}
#endif

#endif
