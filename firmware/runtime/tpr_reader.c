/* TFLite schema on top of the flatbuffer reader: tensors (shape, type, buffer, quantization),
 * operator inputs/outputs and options, and error reporting with detail. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_internal.h"

/* Schema field numbers used here (tensorflow/lite/schema/schema.fbs). */
enum { T_SHAPE = 0, T_TYPE = 1, T_BUFFER = 2, T_NAME = 3, T_QUANT = 4, T_IS_VARIABLE = 5,
       T_SPARSITY = 6, T_EXTERNAL_BUFFER = 10 };
enum { Q_SCALE = 2, Q_ZERO_POINT = 3, Q_DETAILS_TYPE = 4, Q_QDIM = 6 };
enum { B_DATA = 0, B_OFFSET = 1 };

/* Element bytes, 0 for unsupported types. */
static uint32_t type_size(uint8_t type)
{
    switch (type) {
    case TPR_TYPE_INT8:
        return 1;
    case TPR_TYPE_FLOAT32:
    case TPR_TYPE_INT32:
        return 4;
    default:
        return 0;
    }
}

tpr_status_t tpr_tensor(const tpr_ctx_t *c, int32_t index, tpr_tensor_t *t)
{
    tpr_model_t *m = c->m;
    tpr_fb_t *fb = c->fb;
    tpr_tab_t tt, qt, bt;
    tpr_vec_t shape, data;
    uint32_t i, esize, buf, count = 1, off;
    tpr_status_t st;
#if TPR_ERROR_DETAIL
    const char *why;
#endif

    memset(t, 0, sizeof *t);
    t->index = index;
    if (index < 0 || (uint32_t)index >= m->n_tensors) {
        TPR_BAD(TPR_ERR_INDEX, "tensor index out of range");
    }
    tpr_fb_elem_table(fb, m->tensors + 4u * (uint32_t)index, &tt);
    tpr_fb_vec(fb, &tt, TPR_FW(T_SHAPE, 4), &shape);
    if (fb->err != TPR_OK) {
        TPR_BAD(fb->err, "tensor table");
    }
    if (shape.len > TPR_MAX_DIMS) {
        TPR_BAD(TPR_ERR_LIMIT, "rank above TPR_MAX_DIMS");
    }
    t->ndims = (uint8_t)shape.len;
    for (i = 0; i < shape.len; ++i) {
        int32_t d = (int32_t)tpr_rd32(fb->b + shape.pos + 4u * i); /* inside the checked vector */
        if (d < 1) {
            TPR_BAD(TPR_ERR_SHAPE, "dimension below 1");
        }
        if ((uint32_t)d > 0x7FFFFFFFu / count) {
            TPR_BAD(TPR_ERR_LIMIT, "too many elements");
        }
        count *= (uint32_t)d;
        t->dims[i] = d;
    }
    t->type = (uint8_t)tpr_fb_u(fb, &tt, T_TYPE, 1);
    esize = type_size(t->type);
    if (esize == 0) {
        TPR_BAD(TPR_ERR_TYPE, "tensor type not int8, int32 or float32");
    }
    if (count > 0x7FFFFFFFu / esize) {
        TPR_BAD(TPR_ERR_LIMIT, "too many bytes");
    }
    t->count = count;
    t->bytes = count * esize;
    if (tpr_fb_u(fb, &tt, T_IS_VARIABLE, 1) != 0) {
        TPR_BAD(TPR_ERR_GRAPH, "variable tensors are not supported");
    }
    if (tpr_fb_present(&tt, fb, T_SPARSITY)) {
        TPR_BAD(TPR_ERR_TYPE, "sparse tensors are not supported");
    }
    if (tpr_fb_u(fb, &tt, T_EXTERNAL_BUFFER, 4) != 0) {
        TPR_BAD(TPR_ERR_TYPE, "external buffers are not supported");
    }

    /* buffer: constant data in the model, or nothing (the tensor lives in the arena) */
    buf = tpr_fb_u(fb, &tt, T_BUFFER, 4);
    if (buf >= m->n_buffers) {
        TPR_BAD(TPR_ERR_INDEX, "buffer index out of range");
    }
    tpr_fb_elem_table(fb, m->buffers + 4u * buf, &bt);
    tpr_fb_vec(fb, &bt, TPR_FW(B_DATA, 1), &data);
    off = tpr_fb_u(fb, &bt, B_OFFSET, 8);
    if (fb->err != TPR_OK) {
        TPR_BAD(fb->err, "buffer table");
    }
    if (data.len > 0) {
        if (data.len < t->bytes) {
            TPR_BAD(TPR_ERR_TRUNCATED, "buffer smaller than tensor");
        }
        t->is_const = 1;
        t->data = (uint8_t *)(uintptr_t)(m->data + data.pos);
    } else if (off > 1) {
        /* data after the flatbuffer (models over 2 GB): not for microcontrollers */
        TPR_BAD(TPR_ERR_TYPE, "buffer stored outside the flatbuffer");
    } else if (c->eval) {
        uint32_t loc = m->loc[index];
        if (loc == TPR_LOC_NONE) {
            TPR_BAD(TPR_ERR_GRAPH, "tensor has no arena space");
        }
        t->data = m->arena + loc;
    }
    if (t->data != 0 && esize == 4 && ((uintptr_t)t->data & 3u) != 0) {
        TPR_BAD(TPR_ERR_ALIGNMENT, "32-bit tensor data not 4-byte aligned (align the model array)");
    }

    /* quantization */
    if (tpr_fb_table(fb, &tt, T_QUANT, &qt)) {
        if (tpr_fb_u(fb, &qt, Q_DETAILS_TYPE, 1) != 0) {
            TPR_BAD(TPR_ERR_QUANT, "custom quantization details");
        }
        tpr_fb_vec(fb, &qt, TPR_FW(Q_SCALE, 4), &t->scales);
        tpr_fb_vec(fb, &qt, TPR_FW(Q_ZERO_POINT, 8), &t->zps);
        t->qdim = (int32_t)tpr_fb_u(fb, &qt, Q_QDIM, 4);
        if (fb->err != TPR_OK) {
            TPR_BAD(fb->err, "quantization table");
        }
        if (t->scales.len > 0) {
            uint32_t zlo, zhi;
            t->has_quant = 1;
            t->scale = tpr_rd32(fb->b + t->scales.pos);
            if (t->zps.len != 0 && t->zps.len != t->scales.len) {
                TPR_BAD(TPR_ERR_QUANT, "zero_point and scale counts differ");
            }
            if (t->zps.len > 0) {
                zlo = tpr_rd32(fb->b + t->zps.pos);
                zhi = tpr_rd32(fb->b + t->zps.pos + 4);
                if (zhi != ((zlo & 0x80000000u) ? 0xFFFFFFFFu : 0u)) {
                    TPR_BAD(TPR_ERR_QUANT, "zero point out of range");
                }
                t->zp = (int32_t)zlo;
            }
            if (t->scales.len > 1 &&
                ((uint32_t)t->qdim >= t->ndims ||
                 (uint32_t)t->dims[t->qdim] != t->scales.len)) {
                TPR_BAD(TPR_ERR_QUANT, "per-channel scales do not match quantized_dimension");
            }
        }
    }
    return TPR_OK;
bad:
    return TPR_ERR(m, st, (int32_t)c->op, index, why);
}

/* ---- operator context ------------------------------------------------------------------------- */

/* Input (kind 0), output (1) or optional input (2) `i` of the operator; an absent optional
 * input gives TPR_STATUS_COUNT. */
static tpr_status_t io(tpr_ctx_t *c, uint32_t i, tpr_tensor_t *t, unsigned kind)
{
    const tpr_vec_t *v = kind == 1 ? &c->out : &c->in;
    /* in the vector run_op checked; past its end like an absent tensor */
    int32_t idx = i < v->len ? (int32_t)tpr_rd32(c->fb->b + v->pos + 4u * i) : -1;
    if (idx < 0) {
        if (idx == -1 && kind == 2) {
            return TPR_STATUS_COUNT;
        }
        return TPR_FAIL(c, TPR_ERR_GRAPH, -1,
                        (i < v->len ? "required tensor is absent"
                                    : "operator has too few inputs or outputs"));
    }
    return tpr_tensor(c, idx, t);
}

tpr_status_t tpr_in(tpr_ctx_t *c, uint32_t i, tpr_tensor_t *t)
{
    return io(c, i, t, 0);
}

tpr_status_t tpr_out(tpr_ctx_t *c, uint32_t i, tpr_tensor_t *t)
{
    return io(c, i, t, 1);
}

int tpr_in_opt(tpr_ctx_t *c, uint32_t i, tpr_tensor_t *t, tpr_status_t *st)
{
    tpr_status_t s = io(c, i, t, 2);
    *st = s == TPR_STATUS_COUNT ? TPR_OK : s;
    return s == TPR_OK;
}

uint32_t tpr_opt(tpr_ctx_t *c, unsigned field, unsigned width, uint32_t dflt)
{
    /* without options, c->opts has no fields (vtlen 0): dflt */
    return tpr_fb_get(c->fb, &c->opts, TPR_FW(field, width), dflt);
}

tpr_status_t tpr_check_int8(tpr_ctx_t *c, const tpr_tensor_t *t, int need_quant)
{
    if (t->type != TPR_TYPE_INT8) {
        return TPR_FAIL(c, TPR_ERR_TYPE, t->index, "expected an int8 tensor");
    }
    if (need_quant && !t->has_quant) {
        return TPR_FAIL(c, TPR_ERR_QUANT, t->index, "int8 tensor without quantization");
    }
    if (t->zp < -128 || t->zp > 127) {
        return TPR_FAIL(c, TPR_ERR_QUANT, t->index, "zero point outside int8");
    }
    return TPR_OK;
}

tpr_status_t tpr_int8(tpr_ctx_t *c, int is_out, uint32_t i, tpr_tensor_t *t, unsigned lo,
                      unsigned hi)
{
    tpr_status_t st = io(c, i, t, (unsigned)is_out);
    if (st == TPR_OK) {
        st = tpr_check_int8(c, t, 1);
    }
    if (st == TPR_OK) {
        st = tpr_check_rank(c, t, lo, hi);
    }
    return st;
}

tpr_status_t tpr_check_rank(tpr_ctx_t *c, const tpr_tensor_t *t, unsigned lo, unsigned hi)
{
    if (t->ndims < lo || t->ndims > hi) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, t->index, "unsupported rank");
    }
    return TPR_OK;
}

tpr_status_t tpr_check_same_count(tpr_ctx_t *c, const tpr_tensor_t *a, const tpr_tensor_t *b)
{
    if (a->count != b->count) {
        return TPR_FAIL(c, TPR_ERR_SHAPE, b->index, "element counts differ");
    }
    return TPR_OK;
}

/* ---- errors ----------------------------------------------------------------------------------- */

#if TPR_ERROR_DETAIL
typedef struct {
    char *p;
    uint32_t n, cap;
} sbuf_t;

static void put(sbuf_t *s, const char *str)
{
    while (*str && s->n + 1 < s->cap) {
        s->p[s->n++] = *str++;
    }
    s->p[s->n] = 0;
}

static void put_int(sbuf_t *s, int32_t v)
{
    char tmp[12];
    int i = 11;
    uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
    tmp[i] = 0;
    do {
        tmp[--i] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u && i > 1);
    if (v < 0) {
        tmp[--i] = '-';
    }
    put(s, tmp + i);
}

/* The tensor's name, copied safely (at most 48 characters). */
static void put_tensor_name(sbuf_t *s, tpr_model_t *m, int32_t index)
{
    tpr_fb_t fb = {m->data, m->size, TPR_OK};
    tpr_vec_t tensors = {m->tensors, m->n_tensors}, name;
    tpr_tab_t tt;
    uint32_t i;
    if (index < 0 || (uint32_t)index >= m->n_tensors || m->tensors == 0) {
        return;
    }
    if (!tpr_fb_vec_table(&fb, &tensors, (uint32_t)index, &tt)) {
        return;
    }
    tpr_fb_vec(&fb, &tt, TPR_FW(T_NAME, 1), &name);
    if (fb.err != TPR_OK || name.len == 0) {
        return;
    }
    put(s, " '");
    for (i = 0; i < name.len && i < 48u && s->n + 1 < s->cap; ++i) {
        char ch = (char)m->data[name.pos + i];
        s->p[s->n++] = (ch >= 32 && ch < 127) ? ch : '?';
    }
    s->p[s->n] = 0;
    if (i < name.len) {
        put(s, "...");
    }
    put(s, "'");
}
#endif

#if TPR_ERROR_DETAIL
tpr_status_t tpr_fail_op(tpr_ctx_t *c, tpr_status_t st, int32_t tensor, const char *why)
{
    return tpr_fail(c->m, st, (int32_t)c->op, tensor, why);
}

TPR_NOINLINE tpr_status_t tpr_fail(tpr_model_t *m, tpr_status_t st, int32_t op, int32_t tensor,
                                   const char *why)
#else
tpr_status_t tpr_fail_op(tpr_ctx_t *c, tpr_status_t st, int32_t tensor)
{
    return tpr_fail(c->m, st, (int32_t)c->op, tensor);
}

TPR_NOINLINE tpr_status_t tpr_fail(tpr_model_t *m, tpr_status_t st, int32_t op, int32_t tensor)
#endif
{
    if (m->status != TPR_OK) {
        return st; /* keep the first error */
    }
    m->status = st;
    m->err_op = op;
    m->err_tensor = tensor;
#if TPR_ERROR_DETAIL
    {
        sbuf_t s;
        s.p = m->detail;
        s.n = 0;
        s.cap = TPR_DETAIL_BYTES;
        if (m->err_code >= 0) { /* "unsupported op NAME (builtin code N)" and its variants */
            const char *name = tpr_op_name(m->err_code);
            put(&s, st == TPR_ERR_UNSUPPORTED_OP ? "unsupported op " : "op ");
            put(&s, name[0] ? name : "?");
            put(&s, " (builtin code ");
            put_int(&s, m->err_code);
            if (st == TPR_ERR_OP_VERSION) {
                put(&s, ", version ");
                put_int(&s, m->err_version);
                put(&s, ") version not implemented");
            } else {
                put(&s, st == TPR_ERR_OP_NOT_BUILT ? ") not built into this runtime" : ")");
            }
            put(&s, " at operator ");
            put_int(&s, op);
        } else {
            put(&s, tpr_status_str(st));
        }
        if (op >= 0 && m->err_code < 0) {
            int32_t code = tpr_op_code_of(m, (uint32_t)op);
            put(&s, ": operator ");
            put_int(&s, op);
            if (code >= 0) {
                put(&s, " (");
                put(&s, tpr_op_name(code));
                put(&s, ")");
            }
        }
        if (tensor >= 0) {
            put(&s, ": tensor ");
            put_int(&s, tensor);
            put_tensor_name(&s, m, tensor);
        }
        if (why) {
            put(&s, ": ");
            put(&s, why);
        }
    }
#endif
    return st;
}
