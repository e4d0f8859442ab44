/* Internal interfaces of the micro runtime: the bounds-checked flatbuffer reader, tensor views,
 * the operator context kernels receive, and error reporting. Not part of the public API. */
#ifndef TPR_INTERNAL_H
#define TPR_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "tpr_runtime.h"

/* For a function GCC would copy into its callers at -Os although a call is smaller. */
#if defined(__GNUC__)
#define TPR_NOINLINE __attribute__((noinline))
#else
#define TPR_NOINLINE
#endif

/* ---- flatbuffer reader (tpr_flatbuf.c) ------------------------------------------------------
 * Every read goes through these functions, which check bounds against the model's length. Errors
 * are sticky: the first failure is kept in fb->err and later reads return defaults (0, absent,
 * empty), which are always safe to use. Callers test fb->err at the end of a step. */
typedef struct {
    const uint8_t *b;
    uint32_t n;
    tpr_status_t err;
} tpr_fb_t;

typedef struct {
    uint32_t pos;   /* start of the table (its soffset to the vtable) */
    uint32_t vt;    /* start of the vtable */
    uint16_t vtlen; /* vtable bytes */
    uint16_t tlen;  /* table bytes */
} tpr_tab_t;

typedef struct {
    uint32_t pos; /* first element */
    uint32_t len; /* elements */
} tpr_vec_t;

/* Little-endian uint32_t/uint16_t at any alignment: one inline load on cores that load unaligned
 * words (v7-M and later, little-endian hosts); elsewhere (v6-M) the bytes, assembled by one shared
 * copy in tpr_flatbuf.c. */
#if (defined(__ARM_FEATURE_UNALIGNED) && !defined(__ARM_BIG_ENDIAN)) || defined(__x86_64__) || \
    defined(__i386__) || (defined(__aarch64__) && !defined(__AARCH64EB__))
#define TPR_UNALIGNED_LE 1
static inline uint32_t tpr_rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint32_t tpr_rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
#else
#define TPR_UNALIGNED_LE 0
uint32_t tpr_rd32(const uint8_t *p);
uint32_t tpr_rd16(const uint8_t *p);
#endif
/* The table at `pos` (TPR_FB_ABSENT: none, no error); 0 and a zeroed *t when it cannot be read. */
#define TPR_FB_ABSENT 0xFFFFFFFFu
int tpr_fb_table_at(tpr_fb_t *fb, uint32_t pos, tpr_tab_t *t);
/* The readers below take a field and the bytes of its value or elements as one argument,
 * TPR_FW(field, width): one register less at every call. */
#define TPR_FW(field, width) ((unsigned)(field) << 4 | (unsigned)(width)) /* a movs below 16 */
/* A scalar field of `width` bytes (1, 4; 8: the value if it fits in 32 bits, else
 * 0xFFFFFFFF), `dflt` when absent; tpr_fb_u: 0 when absent. */
uint32_t tpr_fb_get(tpr_fb_t *fb, const tpr_tab_t *t, unsigned fw, uint32_t dflt);
uint32_t tpr_fb_u0(tpr_fb_t *fb, const tpr_tab_t *t, unsigned fw);
#define tpr_fb_u(fb, t, field, width) tpr_fb_u0((fb), (t), TPR_FW(field, width))
/* A vector field of `width`-byte elements; empty when absent. */
void tpr_fb_vec(tpr_fb_t *fb, const tpr_tab_t *t, unsigned fw, tpr_vec_t *v);
/* The same with field and width apart (the fuzz mutator's; inline: no code unless used). */
static inline uint32_t tpr_fb_scalar(tpr_fb_t *fb, const tpr_tab_t *t, unsigned field,
                                     unsigned width, uint32_t dflt)
{
    return tpr_fb_get(fb, t, TPR_FW(field, width), dflt);
}
static inline void tpr_fb_vector(tpr_fb_t *fb, const tpr_tab_t *t, unsigned field, unsigned elem,
                                 tpr_vec_t *v)
{
    tpr_fb_vec(fb, t, TPR_FW(field, elem), v);
}
/* Nonzero (the field's offset in the table) when field `field` is present. */
uint32_t tpr_fb_present(const tpr_tab_t *t, const tpr_fb_t *fb, unsigned field);
int tpr_fb_table(tpr_fb_t *fb, const tpr_tab_t *t, unsigned field, tpr_tab_t *out);
/* The table element `at` of a checked vector refers to (at = the vector's pos + 4 i, i below its
 * length). */
int tpr_fb_elem_table(tpr_fb_t *fb, uint32_t at, tpr_tab_t *out);
/* The same for element i of vector v, checking i (inline: no code unless used). */
static inline int tpr_fb_vec_table(tpr_fb_t *fb, const tpr_vec_t *v, uint32_t i, tpr_tab_t *out)
{
    if (i < v->len) {
        return tpr_fb_elem_table(fb, v->pos + 4u * i, out);
    }
    if (fb->err == TPR_OK) {
        fb->err = TPR_ERR_INDEX;
    }
    return tpr_fb_table_at(fb, TPR_FB_ABSENT, out); /* a zeroed table */
}
/* Element i of a vector of uint32 (0 and TPR_ERR_INDEX past its end; inline: a few
 * instructions where used). */
static inline uint32_t tpr_fb_vec_u32(tpr_fb_t *fb, const tpr_vec_t *v, uint32_t i)
{
    if (i < v->len) {
        return tpr_rd32(fb->b + v->pos + 4u * i);
    }
    if (fb->err == TPR_OK) {
        fb->err = TPR_ERR_INDEX;
    }
    return 0;
}

/* ---- tensors (tpr_reader.c) ----------------------------------------------------------------- */
typedef struct {
    /* bytes to scale: tpr_io_t's fields after data, at the same distances (get_io copies them
     * with one memcpy; checked in tpr_runtime.c) */
    uint32_t bytes;
    int32_t dims[TPR_MAX_DIMS];
    uint8_t ndims;
    uint8_t type;
    uint8_t is_const;
    uint8_t has_quant;
    int32_t zp;        /* zero_point[0] */
    uint32_t scale;    /* scale[0] as float bits (0 when absent) */
    uint8_t *data;     /* arena or model bytes; NULL while planning */
    uint32_t count;    /* elements */
    int32_t index;
    tpr_vec_t scales;  /* every scale (per-channel quantization) */
    tpr_vec_t zps;     /* every zero point (int64 elements) */
    int32_t qdim;      /* quantized_dimension */
} tpr_tensor_t;

/* Fill `t` from tensor `index` of subgraph 0 of c->m (read through c->fb), fully validated.
 * With c->eval, data points at the tensor's bytes (model for constants, arena otherwise). Errors
 * name operator c->op (0xFFFFFFFF: none). */
struct tpr_ctx;
tpr_status_t tpr_tensor(const struct tpr_ctx *c, int32_t index, tpr_tensor_t *t);
/* Builtin code of operator `op`, or -1 if it cannot be read (detail messages only). */
int32_t tpr_op_code_of(tpr_model_t *m, uint32_t op);

/* ---- operator context ------------------------------------------------------------------------ */
typedef struct tpr_ctx {
    tpr_model_t *m;
    tpr_fb_t *fb;
    uint32_t op;    /* operator index */
    int32_t code;   /* builtin code */
    int32_t version;
    tpr_vec_t in;   /* input tensor indices (int32) */
    tpr_vec_t out;  /* output tensor indices */
    tpr_tab_t opts; /* builtin options table (no fields when has_opts is 0) */
    uint8_t has_opts;
    uint8_t eval;   /* 0: validate only (tpr_init), 1: run (tpr_invoke) */
    uint32_t mult_base; /* index of the operator's first multiplier among the model's */
    uint32_t mult_n;    /* multipliers the operator uses (set by its kernel) */
} tpr_ctx_t;

typedef tpr_status_t (*tpr_kernel_fn)(tpr_ctx_t *c);

/* Input/output `i` of the operator as a view; fails when absent or invalid. */
tpr_status_t tpr_in(tpr_ctx_t *c, uint32_t i, tpr_tensor_t *t);
tpr_status_t tpr_out(tpr_ctx_t *c, uint32_t i, tpr_tensor_t *t);
/* An optional input: returns 0 (and TPR_OK in *st) when it is absent (index -1 or missing). */
int tpr_in_opt(tpr_ctx_t *c, uint32_t i, tpr_tensor_t *t, tpr_status_t *st);
/* A scalar field of the builtin options, `width` 1, 4 or 8 bytes (default when absent). */
uint32_t tpr_opt(tpr_ctx_t *c, unsigned field, unsigned width, uint32_t dflt);

/* ---- errors -----------------------------------------------------------------------------------
 * Record an error about operator `op` and tensor `tensor` (-1: none) and return `st`. The first
 * error is kept. The explanation `why` exists only with TPR_ERROR_DETAIL: without it the string
 * and the argument are compiled out. */
#if TPR_ERROR_DETAIL
tpr_status_t tpr_fail(tpr_model_t *m, tpr_status_t st, int32_t op, int32_t tensor,
                      const char *why);
tpr_status_t tpr_fail_op(struct tpr_ctx *c, tpr_status_t st, int32_t tensor, const char *why);
#define TPR_ERR(m, st, op, tensor, why) tpr_fail((m), (st), (op), (tensor), (why))
#define TPR_FAIL(c, st, tensor, why) tpr_fail_op((c), (st), (tensor), (why))
#else
tpr_status_t tpr_fail(tpr_model_t *m, tpr_status_t st, int32_t op, int32_t tensor);
tpr_status_t tpr_fail_op(struct tpr_ctx *c, tpr_status_t st, int32_t tensor);
#define TPR_ERR(m, st, op, tensor, why) tpr_fail((m), (st), (op), (tensor))
#define TPR_FAIL(c, st, tensor, why) tpr_fail_op((c), (st), (tensor))
#endif

/* A function with many errors can report them all with one call: it declares `tpr_status_t st`
 * and, with TPR_ERROR_DETAIL, `const char *why`, and ends in a label `bad` that passes both to
 * TPR_ERR; TPR_BAD(s, w) sets them and jumps there. */
#if TPR_ERROR_DETAIL
#define TPR_BAD(s, w) \
    do {              \
        st = (s);     \
        why = (w);    \
        goto bad;     \
    } while (0)
#else
#define TPR_BAD(s, w) \
    do {              \
        st = (s);     \
        goto bad;     \
    } while (0)
#endif

/* Input (is_out 0) or output (is_out 1) `i` as a quantized int8 tensor of rank lo..hi. */
tpr_status_t tpr_int8(tpr_ctx_t *c, int is_out, uint32_t i, tpr_tensor_t *t, unsigned lo,
                      unsigned hi);
/* Common checks used by kernels; each records the error itself. */
tpr_status_t tpr_check_int8(tpr_ctx_t *c, const tpr_tensor_t *t, int need_quant);
tpr_status_t tpr_check_rank(tpr_ctx_t *c, const tpr_tensor_t *t, unsigned lo, unsigned hi);
tpr_status_t tpr_check_same_count(tpr_ctx_t *c, const tpr_tensor_t *a, const tpr_tensor_t *b);

/* ---- kernels (one file each under kernels/), registry (tpr_ops.c) ----------------------- */
#define TPR_KFLAG_ALIAS 1u /* the output may share the input's memory (reshape-like) */
#define TPR_KFLAG_INPLACE 2u /* element-wise: the output may take over an input it reads in order */
#define TPR_KFLAG_INPLACE_PAD 4u /* the output may take over its input, which starts it (PAD) */

typedef struct {
    uint8_t code;        /* builtin code (all implemented ops are below 256) */
    uint8_t max_version; /* highest operator version implemented */
    uint8_t opts_type;   /* BuiltinOptions union type the op carries (0: none) */
    uint8_t flags;       /* TPR_KFLAG_* */
    tpr_kernel_fn fn;
} tpr_kernel_t;

/* The kernel for `code` in *kern (TPR_OK), or the reason it is missing. */
tpr_status_t tpr_find_kernel(int32_t code, int32_t version, const tpr_kernel_t **kern);

tpr_status_t tpr_k_add(tpr_ctx_t *c);
tpr_status_t tpr_k_average_pool_2d(tpr_ctx_t *c);
tpr_status_t tpr_k_concatenation(tpr_ctx_t *c);
tpr_status_t tpr_k_conv_2d(tpr_ctx_t *c);
tpr_status_t tpr_k_depthwise_conv_2d(tpr_ctx_t *c);
tpr_status_t tpr_k_dequantize(tpr_ctx_t *c);
tpr_status_t tpr_k_fully_connected(tpr_ctx_t *c);
tpr_status_t tpr_k_logistic(tpr_ctx_t *c);
tpr_status_t tpr_k_max_pool_2d(tpr_ctx_t *c);
tpr_status_t tpr_k_mul(tpr_ctx_t *c);
tpr_status_t tpr_k_reshape(tpr_ctx_t *c);
tpr_status_t tpr_k_softmax(tpr_ctx_t *c);
tpr_status_t tpr_k_tanh(tpr_ctx_t *c);
tpr_status_t tpr_k_pad(tpr_ctx_t *c);
tpr_status_t tpr_k_mean(tpr_ctx_t *c);
tpr_status_t tpr_k_quantize(tpr_ctx_t *c);
tpr_status_t tpr_k_hard_swish(tpr_ctx_t *c);

/* ---- planner (tpr_planner.c) ------------------------------------------------------------------ */
#define TPR_LIFE_UNUSED 0xFFFFu /* first[]: buffer needs no space */
#define TPR_LIFE_ALIAS 0xFFFEu  /* first[]: buffer shares another's space (skipped too) */

/* Place n buffers (size[i] bytes, live from op first[i] to op last[i] inclusive; entries with
 * first[i] >= TPR_LIFE_ALIAS are skipped) so that buffers alive at the same time never overlap.
 * Writes off[i] and returns the peak (highest end), or 0xFFFFFFFF if the plan exceeds 2 GiB.
 * Sizes must be multiples of the alignment and at most 2^31; `next` is scratch for n entries. */
uint32_t tpr_plan(uint32_t n, const uint16_t *first, const uint16_t *last, const uint32_t *size,
                  uint32_t *off, uint16_t *next);

#endif
