/* libFuzzer custom mutator: structural mutations of valid models.
 *
 * Linked with fuzz_model.c (the same target and checks) into the `fuzz_mutate` fuzzer. Byte
 * flips rarely get past the flatbuffer checks of a valid model, so this mutator parses the
 * model with the runtime's own bounds-checked reader (tpr_flatbuf.c), collects the positions
 * of the fields that carry meaning, and overwrites one to four of them in place with values
 * chosen to hit edges:
 *
 *   tensor shapes            0, -1, 1, d +- 1, 2d, 2^16, 2^24, 2^31 - 1, ...
 *   tensor types             every TFLite type code, 255
 *   buffer indices           another buffer, the count, the count + 1, 2^32 - 1
 *   operator code indices    another code, the count, huge
 *   builtin codes, versions  every implemented operator, unknown codes, version 0..7, -1
 *   tensor indices           of operator inputs/outputs and graph inputs/outputs: another
 *                            tensor, -1 (absent), the count, negative
 *   quantization             scales 0, negative, NaN, +-Inf, denormal, 2^-40, 1e30;
 *                            zero points -129, 128, +-2^40, INT64_MIN; quantized_dimension
 *   options                  every field of the builtin options table: 0, 1, 2, 255,
 *                            0x7FFFFFFF, 0x80000000, -1; the options type
 *   constant data            int32 biases INT32_MIN/MAX, int8 weights -128/127
 *   vector lengths, vtables  +- 1, 0, huge (the reader's own checks)
 *
 * The size never changes, so a mutated model stays a flatbuffer whose every other field is
 * intact: the runtime's semantic checks (shapes, indices, quantization, options) and the
 * kernels behind them are what gets exercised. One call in five is left to libFuzzer's own
 * byte-level mutations (LLVMFuzzerMutate), which also keeps its comparison-guided values.
 * Deterministic for a given seed. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tpr_internal.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

enum {
    K_DIM, K_TYPE, K_BUFFER_INDEX, K_OPCODE_INDEX, K_BUILTIN_CODE, K_DEPRECATED_CODE, K_VERSION,
    K_TENSOR_INDEX, K_SCALE, K_ZERO_POINT, K_QDIM, K_OPTION, K_OPTIONS_TYPE, K_CONST_I32,
    K_CONST_I8, K_VECTOR_LEN, K_VTABLE_ENTRY
};

/* Schema field numbers (tensorflow/lite/schema/schema.fbs), as in tpr_runtime.c/tpr_reader.c. */
enum { M_OPCODES = 1, M_SUBGRAPHS = 2, M_BUFFERS = 4 };
enum { SG_TENSORS = 0, SG_INPUTS = 1, SG_OUTPUTS = 2, SG_OPERATORS = 3 };
enum { OP_OPCODE_INDEX = 0, OP_INPUTS = 1, OP_OUTPUTS = 2, OP_OPTIONS_TYPE = 3, OP_OPTIONS = 4 };
enum { OC_DEPRECATED_CODE = 0, OC_VERSION = 2, OC_CODE = 3 };
enum { T_SHAPE = 0, T_TYPE = 1, T_BUFFER = 2, T_QUANT = 4 };
enum { Q_SCALE = 2, Q_ZERO_POINT = 3, Q_QDIM = 6 };
enum { B_DATA = 0 };

#define MAX_SITES 8192u
#define MAX_ITEMS 2048u /* tensors, operators, codes looked at */

typedef struct {
    uint32_t pos;
    uint8_t kind;
    uint8_t width;
} site_t;

typedef struct {
    tpr_fb_t fb;
    site_t sites[MAX_SITES];
    uint32_t n_sites;
    uint32_t n_tensors, n_buffers, n_opcodes;
    uint32_t rng;
} walk_t;

static walk_t w;

static uint32_t rnd(void)
{
    w.rng ^= w.rng << 13;
    w.rng ^= w.rng >> 17;
    w.rng ^= w.rng << 5;
    return w.rng;
}

static void add(uint32_t pos, unsigned kind, unsigned width)
{
    if (w.n_sites < MAX_SITES && pos != 0 && width <= w.fb.n && pos <= w.fb.n - width) {
        w.sites[w.n_sites].pos = pos;
        w.sites[w.n_sites].kind = (uint8_t)kind;
        w.sites[w.n_sites].width = (uint8_t)width;
        w.n_sites++;
    }
}

/* Position of a present scalar field (0 when absent), like tpr_flatbuf.c's field_off. */
static uint32_t field_pos(const tpr_tab_t *t, unsigned field, unsigned width)
{
    uint32_t at = 4u + 2u * field, fo;
    if (w.fb.err != TPR_OK || t->tlen == 0 || at + 2u > t->vtlen) {
        return 0;
    }
    fo = (uint32_t)w.fb.b[t->vt + at] | ((uint32_t)w.fb.b[t->vt + at + 1u] << 8);
    if (fo < 4 || fo + width > t->tlen) {
        return 0;
    }
    return t->pos + fo;
}

static void add_field(const tpr_tab_t *t, unsigned field, unsigned kind, unsigned width)
{
    add(field_pos(t, field, width), kind, width);
}

/* A vector's elements (at most `most`, spread over it) and its length word. */
static void add_vector(const tpr_vec_t *v, unsigned kind, unsigned width, uint32_t most)
{
    uint32_t i, step;
    if (v->pos == 0) {
        return;
    }
    add(v->pos - 4u, K_VECTOR_LEN, 4);
    step = v->len > most ? v->len / most : 1u;
    for (i = 0; i < v->len && i / step < most; i += step) {
        add(v->pos + width * i, kind, width);
    }
}

static void walk_tensor(const tpr_vec_t *tensors, const tpr_vec_t *buffers, uint32_t i)
{
    tpr_tab_t t, q, b;
    tpr_vec_t v, data;
    uint32_t type, buf;
    if (!tpr_fb_vec_table(&w.fb, tensors, i, &t)) {
        return;
    }
    tpr_fb_vector(&w.fb, &t, T_SHAPE, 4, &v);
    add_vector(&v, K_DIM, 4, 8);
    add_field(&t, T_TYPE, K_TYPE, 1);
    add_field(&t, T_BUFFER, K_BUFFER_INDEX, 4);
    if (tpr_fb_table(&w.fb, &t, T_QUANT, &q)) {
        tpr_fb_vector(&w.fb, &q, Q_SCALE, 4, &v);
        add_vector(&v, K_SCALE, 4, 4);
        tpr_fb_vector(&w.fb, &q, Q_ZERO_POINT, 8, &v);
        add_vector(&v, K_ZERO_POINT, 8, 4);
        add_field(&q, Q_QDIM, K_QDIM, 4);
    }
    type = tpr_fb_scalar(&w.fb, &t, T_TYPE, 1, 0);
    buf = tpr_fb_scalar(&w.fb, &t, T_BUFFER, 4, 0);
    if (buf != 0 && buf < buffers->len && tpr_fb_vec_table(&w.fb, buffers, buf, &b)) {
        tpr_fb_vector(&w.fb, &b, B_DATA, 1, &data);
        if (data.pos != 0 && data.len >= 4) {
            uint32_t k = rnd() % data.len;
            if (type == TPR_TYPE_INT32) {
                add(data.pos + (k & ~3u) % (data.len & ~3u), K_CONST_I32, 4);
            } else {
                add(data.pos + k, K_CONST_I8, 1);
            }
        }
    }
    w.fb.err = TPR_OK; /* a broken part of a tensor does not stop the walk */
}

static void walk_operator(const tpr_vec_t *ops, uint32_t i)
{
    tpr_tab_t t, o;
    tpr_vec_t v;
    uint32_t k;
    if (!tpr_fb_vec_table(&w.fb, ops, i, &t)) {
        return;
    }
    add_field(&t, OP_OPCODE_INDEX, K_OPCODE_INDEX, 4);
    tpr_fb_vector(&w.fb, &t, OP_INPUTS, 4, &v);
    add_vector(&v, K_TENSOR_INDEX, 4, 8);
    tpr_fb_vector(&w.fb, &t, OP_OUTPUTS, 4, &v);
    add_vector(&v, K_TENSOR_INDEX, 4, 4);
    add_field(&t, OP_OPTIONS_TYPE, K_OPTIONS_TYPE, 1);
    if (tpr_fb_table(&w.fb, &t, OP_OPTIONS, &o)) {
        for (k = 0; 4u + 2u * k + 2u <= o.vtlen; ++k) {
            uint32_t p4 = field_pos(&o, k, 4);
            if (p4 != 0) {
                add(p4, K_OPTION, 4);
            } else {
                add_field(&o, k, K_OPTION, 1);
            }
            add(o.vt + 4u + 2u * k, K_VTABLE_ENTRY, 2);
        }
    }
    w.fb.err = TPR_OK;
}

/* Collect the sites of a model; 0 when it is not readable enough to have any. */
static uint32_t walk(const uint8_t *data, size_t size)
{
    tpr_tab_t root, sg, oc;
    tpr_vec_t opcodes, buffers, subgraphs, tensors, ops, v;
    uint32_t i, n;
    w.n_sites = 0;
    if (size < 8 || size > 0x7FFFFFF0u) {
        return 0;
    }
    w.fb.b = data;
    w.fb.n = (uint32_t)size;
    w.fb.err = TPR_OK;
    if (!tpr_fb_table_at(&w.fb, tpr_rd32(data), &root)) {
        return 0;
    }
    tpr_fb_vector(&w.fb, &root, M_OPCODES, 4, &opcodes);
    tpr_fb_vector(&w.fb, &root, M_BUFFERS, 4, &buffers);
    tpr_fb_vector(&w.fb, &root, M_SUBGRAPHS, 4, &subgraphs);
    if (w.fb.err != TPR_OK || subgraphs.len == 0 || !tpr_fb_vec_table(&w.fb, &subgraphs, 0, &sg)) {
        return 0;
    }
    w.n_opcodes = opcodes.len;
    w.n_buffers = buffers.len;
    for (i = 0; i < opcodes.len && i < MAX_ITEMS; ++i) {
        if (tpr_fb_vec_table(&w.fb, &opcodes, i, &oc)) {
            add_field(&oc, OC_DEPRECATED_CODE, K_DEPRECATED_CODE, 1);
            add_field(&oc, OC_VERSION, K_VERSION, 4);
            add_field(&oc, OC_CODE, K_BUILTIN_CODE, 4);
        }
        w.fb.err = TPR_OK;
    }
    tpr_fb_vector(&w.fb, &sg, SG_TENSORS, 4, &tensors);
    tpr_fb_vector(&w.fb, &sg, SG_OPERATORS, 4, &ops);
    if (w.fb.err != TPR_OK) {
        return 0;
    }
    w.n_tensors = tensors.len;
    tpr_fb_vector(&w.fb, &sg, SG_INPUTS, 4, &v);
    add_vector(&v, K_TENSOR_INDEX, 4, 4);
    tpr_fb_vector(&w.fb, &sg, SG_OUTPUTS, 4, &v);
    add_vector(&v, K_TENSOR_INDEX, 4, 4);
    w.fb.err = TPR_OK;
    n = tensors.len < MAX_ITEMS ? tensors.len : MAX_ITEMS;
    for (i = 0; i < n; ++i) {
        walk_tensor(&tensors, &buffers, i);
    }
    n = ops.len < MAX_ITEMS ? ops.len : MAX_ITEMS;
    for (i = 0; i < n; ++i) {
        walk_operator(&ops, i);
    }
    return w.n_sites;
}

static void put(uint8_t *p, unsigned width, uint64_t v)
{
    unsigned i;
    for (i = 0; i < width; ++i) {
        p[i] = (uint8_t)(v >> (8u * i));
    }
}

static uint64_t get(const uint8_t *p, unsigned width)
{
    uint64_t v = 0;
    unsigned i;
    for (i = 0; i < width; ++i) {
        v |= (uint64_t)p[i] << (8u * i);
    }
    return v;
}

static uint32_t pick(const uint32_t *values, uint32_t n)
{
    return values[rnd() % n];
}

/* An index near the edges of [0, count): another valid one, the count, beyond, negative. */
static uint32_t index_value(uint32_t count)
{
    switch (rnd() % 6u) {
    case 0:
    case 1:
    case 2:
        return count ? rnd() % count : 0u;
    case 3:
        return count;
    case 4:
        return count + 1u + rnd() % 4u;
    default:
        return rnd() % 2u ? 0xFFFFFFFFu : 0x80000000u;
    }
}

static uint64_t new_value(const site_t *s, uint64_t old)
{
    static const uint32_t dims[] = {0u, 1u, 2u, 3u, 4u, 7u, 8u, 16u, 0xFFFFFFFFu, 0xFFFFFFFEu,
                                    0x10000u, 0x1000000u, 0x7FFFFFFFu, 0x80000000u, 46341u};
    static const uint32_t types[] = {0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 9u, 10u, 15u, 16u, 17u, 255u};
    static const uint32_t codes[] = {0u, 1u, 2u, 3u, 4u, 6u, 9u, 14u, 17u, 18u, 22u, 25u, 28u,
                                     34u, 40u, 43u, 60u, 70u, 114u, 117u, 5u, 98u, 127u, 200u,
                                     0xFFFFFFFFu, 0x7FFFFFFFu};
    static const uint32_t versions[] = {0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 100u, 0xFFFFFFFFu};
    static const uint32_t scales[] = {0x00000000u, 0x80000000u, 0x3F800000u, 0xBF800000u,
                                      0x7FC00000u, 0x7F800000u, 0xFF800000u, 0x00000001u,
                                      0x007FFFFFu, 0x7F7FFFFFu, 0x2B8CBCCCu, 0x30000000u,
                                      0x3B800000u, 0x3C000000u, 0x4F000000u, 0x71000000u};
    static const uint32_t options[] = {0u, 1u, 2u, 3u, 4u, 5u, 6u, 255u, 0x7FFFFFFFu, 0x80000000u,
                                       0xFFFFFFFFu, 0x10000u, 0x1000000u, 64u};
    uint32_t o32 = (uint32_t)old;
    switch (s->kind) {
    case K_DIM:
        switch (rnd() % 4u) {
        case 0:
            return o32 + 1u;
        case 1:
            return o32 - 1u;
        case 2:
            return o32 * 2u;
        default:
            return pick(dims, sizeof dims / sizeof dims[0]);
        }
    case K_TYPE:
        return pick(types, sizeof types / sizeof types[0]);
    case K_BUFFER_INDEX:
        return index_value(w.n_buffers);
    case K_OPCODE_INDEX:
        return index_value(w.n_opcodes);
    case K_TENSOR_INDEX:
        return index_value(w.n_tensors);
    case K_BUILTIN_CODE:
        return rnd() % 4u ? pick(codes, sizeof codes / sizeof codes[0]) : rnd() % 210u;
    case K_DEPRECATED_CODE:
        return rnd() % 2u ? pick(codes, sizeof codes / sizeof codes[0]) & 0x7Fu : 127u;
    case K_VERSION:
        return pick(versions, sizeof versions / sizeof versions[0]);
    case K_SCALE:
        if (rnd() % 3u == 0) { /* double, halve or nudge the old scale */
            return rnd() % 2u ? o32 + 0x00800000u * (rnd() % 2u ? 1u : 0xFFFFFFFFu) : o32 ^ 1u;
        }
        return pick(scales, sizeof scales / sizeof scales[0]);
    case K_ZERO_POINT: {
        static const uint64_t zps[] = {0u, 127u, 0xFFFFFFFFFFFFFF80u, 128u, 0xFFFFFFFFFFFFFF7Fu,
                                       0x10000000000u, 0x8000000000000000u, 0xFFFFFFFFu,
                                       0x7FFFFFFFu, 0x80000000u};
        return zps[rnd() % (sizeof zps / sizeof zps[0])];
    }
    case K_QDIM:
        return rnd() % 4u ? rnd() % 7u : 0xFFFFFFFFu;
    case K_OPTION:
        if (s->width == 1) {
            return rnd() % 2u ? rnd() % 8u : rnd() & 0xFFu;
        }
        return rnd() % 4u ? pick(options, sizeof options / sizeof options[0]) : rnd();
    case K_OPTIONS_TYPE:
        return rnd() % 130u;
    case K_CONST_I32:
        return rnd() % 2u ? 0x80000000u : 0x7FFFFFFFu;
    case K_CONST_I8:
        return rnd() % 2u ? 0x80u : 0x7Fu;
    case K_VECTOR_LEN:
        switch (rnd() % 4u) {
        case 0:
            return o32 + 1u;
        case 1:
            return o32 - 1u;
        case 2:
            return 0u;
        default:
            return rnd() % 2u ? 0xFFFFFFFFu : 0x40000000u;
        }
    default: /* K_VTABLE_ENTRY */
        return rnd() % 2u ? 0u : (o32 + 4u * (rnd() % 3u) - 4u) & 0xFFFFu;
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    uint32_t n, k, count;
    w.rng = seed * 2654435761u + 1u;
    if (w.rng == 0) {
        w.rng = 1;
    }
    if (rnd() % 5u == 0 || (n = walk(data, size)) == 0) {
        return LLVMFuzzerMutate(data, size, max_size);
    }
    count = 1u + rnd() % 4u;
    for (k = 0; k < count; ++k) {
        const site_t *s = &w.sites[rnd() % n];
        put(data + s->pos, s->width, new_value(s, get(data + s->pos, s->width)));
    }
    return size;
}
