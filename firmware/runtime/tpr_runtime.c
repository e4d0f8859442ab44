/* The runtime proper: model validation, tensor lifetimes and the arena plan, invoke, I/O. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_internal.h"

/* Schema field numbers (tensorflow/lite/schema/schema.fbs). */
enum { M_VERSION = 0, M_OPCODES = 1, M_SUBGRAPHS = 2, M_DESCRIPTION = 3, M_BUFFERS = 4 };
enum { SG_TENSORS = 0, SG_INPUTS = 1, SG_OUTPUTS = 2, SG_OPERATORS = 3 };
enum { OP_OPCODE_INDEX = 0, OP_INPUTS = 1, OP_OUTPUTS = 2, OP_OPTIONS_TYPE = 3, OP_OPTIONS = 4,
       OP_OPTIONS2_TYPE = 11 };
enum { OC_DEPRECATED_CODE = 0, OC_VERSION = 2, OC_CODE = 3 };

#define ALIAS_MARK TPR_LIFE_ALIAS /* first[]: shares its root's memory (root index in size[]) */

/* The buffer whose memory tensor i uses: i itself, or the end of its chain of aliases (a reshape's
 * points at a root; an in-place takeover can make that root an alias in turn). */
static uint32_t root_of(const uint16_t *first, const uint32_t *size, uint32_t i)
{
    while (first[i] == ALIAS_MARK) {
        i = size[i];
    }
    return i;
}

/* The index of the next operator's first multiplier, a (at most TPR_MULT_CAP) + b, capped: a
 * hostile model's counts cannot wrap the indices tpr_conv_mult forms (index + an output channel
 * below 2^29), and a multiplier indexed past the cap is never stored or read (the arena holds
 * fewer). tpr_init and tpr_invoke count alike. */
#define TPR_MULT_CAP 0x40000000u
static uint32_t mult_next(uint32_t a, uint32_t b)
{
    return b > TPR_MULT_CAP - a ? TPR_MULT_CAP : a + b;
}

static uint32_t align_up(uint32_t v)
{
    return (v + (TPR_ARENA_ALIGN - 1u)) & ~(uint32_t)(TPR_ARENA_ALIGN - 1u);
}

const char *tpr_status_str(tpr_status_t s)
{
    /* the messages one after the other, each ended by its 0 (no table of pointers); a value
     * that is no status is a bad argument */
#define TPR_STATUS_MSG(name, msg) msg "\0"
    static const char msgs[] = TPR_STATUS_LIST(TPR_STATUS_MSG);
#undef TPR_STATUS_MSG
    const char *p = msgs;
    unsigned i = (unsigned)s < (unsigned)TPR_STATUS_COUNT ? (unsigned)s : (unsigned)TPR_ERR_ARG;
    for (; i > 0; --i) {
        while (*p++ != 0) {
        }
    }
    return p;
}

const char *tpr_detail(const tpr_model_t *m)
{
    if (m == 0) {
        return tpr_status_str(TPR_ERR_ARG);
    }
#if TPR_ERROR_DETAIL
    if (m->status != TPR_OK && m->detail[0] != 0) {
        return m->detail;
    }
#endif
    return tpr_status_str(m->status);
}

size_t tpr_model_sizeof(void)
{
    return sizeof(tpr_model_t);
}

/* Builtin code and version of operator code `index`, below n_opcodes (meaningless once fb->err
 * is set, which the callers test). */
static void opcode(tpr_model_t *m, tpr_fb_t *fb, uint32_t index, int32_t *code, int32_t *version)
{
    tpr_tab_t t;
    int32_t dep, c;
    /* a zeroed table on failure: every field its default */
    tpr_fb_elem_table(fb, m->opcodes + 4u * index, &t);
    dep = (int8_t)tpr_fb_u(fb, &t, OC_DEPRECATED_CODE, 1);
    c = (int32_t)tpr_fb_u(fb, &t, OC_CODE, 4);
    *code = c > dep ? c : dep; /* TFLite's GetBuiltinCode */
    *version = (int32_t)tpr_fb_get(fb, &t, TPR_FW(OC_VERSION, 4), 1);
}

#if TPR_ERROR_DETAIL
int32_t tpr_op_code_of(tpr_model_t *m, uint32_t op)
{
    tpr_fb_t fb = {m->data, m->size, TPR_OK};
    tpr_vec_t ops = {m->operators, m->n_ops};
    tpr_tab_t t;
    int32_t code, version;
    uint32_t oc;
    if (op >= m->n_ops || !tpr_fb_vec_table(&fb, &ops, op, &t)) {
        return -1;
    }
    oc = tpr_fb_u(&fb, &t, OP_OPCODE_INDEX, 4);
    if (fb.err != TPR_OK || oc >= m->n_opcodes) {
        return -1;
    }
    opcode(m, &fb, oc, &code, &version);
    return fb.err == TPR_OK ? code : -1;
}
#endif

/* tpr_init's planning state: the planner's scratch arrays and the tensors an operator's
 * in-place and alias decisions look at. */
typedef struct {
    uint16_t *first, *last;
    uint32_t *size;
    tpr_tensor_t ts[3]; /* inputs 0 and 1 (for in-place operators), then any other tensor */
} planning_t;

/* Operator `k`: read it, find its kernel and run it (p NULL: tpr_invoke), or validate it and
 * note its tensors' lifetimes in the plan's scratch (p: tpr_init). *base is the index of the
 * operator's first multiplier, moved past its own when it succeeds. */
static tpr_status_t run_op(tpr_model_t *m, tpr_fb_t *fb, uint32_t k, planning_t *p,
                           uint32_t *base)
{
    tpr_tab_t ot; /* the operator table */
    tpr_ctx_t c;
    const tpr_kernel_t *kern;
    uint32_t oc, opts_type;
    tpr_status_t st;
#if TPR_ERROR_DETAIL
    const char *why;
#endif

    c.m = m; /* every field is set below */
    c.fb = fb;
    c.op = k;
    c.mult_n = 0;
    tpr_fb_elem_table(fb, m->operators + 4u * k, &ot); /* k < n_ops */
    oc = tpr_fb_u(fb, &ot, OP_OPCODE_INDEX, 4);
    tpr_fb_vec(fb, &ot, TPR_FW(OP_INPUTS, 4), &c.in);
    tpr_fb_vec(fb, &ot, TPR_FW(OP_OUTPUTS, 4), &c.out);
    opts_type = tpr_fb_u(fb, &ot, OP_OPTIONS_TYPE, 1);
    c.has_opts = (uint8_t)tpr_fb_table(fb, &ot, OP_OPTIONS, &c.opts);
    if (fb->err != TPR_OK) {
        TPR_BAD(fb->err, "operator table");
    }
    if (oc >= m->n_opcodes) {
        TPR_BAD(TPR_ERR_INDEX, "opcode_index out of range");
    }
    opcode(m, fb, oc, &c.code, &c.version);
    if (fb->err != TPR_OK) {
        TPR_BAD(fb->err, "operator code table");
    }
    if ((st = tpr_find_kernel(c.code, c.version, &kern)) != TPR_OK) {
        if (m->status == TPR_OK) {
            m->err_code = c.code;
            m->err_version = c.version;
        }
        TPR_BAD(st, 0);
    }
    if (tpr_fb_u(fb, &ot, OP_OPTIONS2_TYPE, 1) != 0 ||
        (opts_type != 0 && opts_type != kern->opts_type)) {
        TPR_BAD(TPR_ERR_OPTIONS, "unexpected options type");
    }
    if (opts_type == 0) { /* options of no type are ignored: no fields (tpr_opt) */
        c.has_opts = 0;
        c.opts.vtlen = 0;
    }
    if (c.out.len == 0) {
        TPR_BAD(TPR_ERR_GRAPH, "operator without outputs");
    }
    c.eval = p == 0;
    if (p != 0) {
        uint32_t i, cand;
        int is_out;
        tpr_tensor_t *ts = p->ts, *t = &ts[2];
        ts[0].is_const = ts[1].is_const = 1; /* absent */
        /* the inputs (ts[0], ts[1], then ts[2]), then the outputs (ts[2]); tpr_fb_vec checked
         * the vectors, their elements are read in place */
        for (is_out = 0; is_out < 2; ++is_out) {
            const tpr_vec_t *v = is_out ? &c.out : &c.in;
            for (i = 0; i < v->len; ++i) {
                int32_t idx = (int32_t)tpr_rd32(fb->b + v->pos + 4u * i);
                if (idx == -1 && !is_out) {
                    continue; /* an absent optional input */
                }
                t = &ts[i < 2 && !is_out ? i : 2];
                if ((st = tpr_tensor(&c, idx, t)) != TPR_OK) {
                    return st;
                }
                if (t->is_const && !is_out) {
                    continue;
                }
                /* an input must be written before, an output not (nor be a constant) */
                if (t->is_const || (p->first[idx] == TPR_LIFE_UNUSED) != is_out) {
                    return TPR_ERR(m, TPR_ERR_GRAPH, (int32_t)k, idx,
                                   (is_out ? "output is a constant, a graph input or written twice"
                                           : "tensor read before any operator writes it"));
                }
                if (is_out) {
                    p->first[idx] = (uint16_t)k;
                    p->size[idx] = align_up(t->bytes);
                }
                p->last[idx] = (uint16_t)k;
            }
        }
        /* In-place operators: inputs the output may take over if they die here, noted in the
         * output's loc[] (free until the plan): input 0 at bits 0-15, input 1 at 16-31, 0xFFFF
         * none. Element-wise kernels (INPLACE) write element i after reading it, in order, so
         * an input of as many elements, each at least as wide, qualifies; PAD (INPLACE_PAD)
         * moves its input from the end. */
        if ((kern->flags & (TPR_KFLAG_INPLACE | TPR_KFLAG_INPLACE_PAD)) != 0 && c.out.len == 1) {
            for (cand = 0, i = 2; i-- > 0;) {
                int ok = !ts[i].is_const && ((kern->flags & TPR_KFLAG_INPLACE_PAD) != 0 ||
                                             (ts[i].count == t->count && ts[i].bytes >= t->bytes));
                cand = cand << 16 | (ok ? (uint32_t)ts[i].index : 0xFFFFu);
            }
            m->loc[t->index] = cand;
        }
        /* Reshape-like operators: the output shares the input's memory (its root's, along a
         * chain of them) unless the input is a constant (or absent); size[] then holds the
         * root's index. (A variable input was checked above to be written before.) */
        if ((kern->flags & TPR_KFLAG_ALIAS) != 0 && !ts[0].is_const) {
            uint32_t root = root_of(p->first, p->size, (uint32_t)ts[0].index);
            uint32_t b = tpr_rd32(fb->b + c.out.pos);
            if (p->size[root] == p->size[b]) {
                p->first[b] = ALIAS_MARK;
                p->size[b] = root;
            }
        }
    }
    /* the kernel: with p, checks types, shapes, quantization and options (and stores
     * multipliers); without, computes the outputs */
    c.mult_base = *base;
    st = kern->fn(&c);
    if (st == TPR_OK && fb->err != TPR_OK) {
        st = TPR_ERR(m, fb->err, (int32_t)k, -1, (p != 0 ? "operator options" : 0));
    }
    if (st == TPR_OK) {
        *base = mult_next(*base, c.mult_n);
    }
    return st;
bad:
    return TPR_ERR(m, st, (int32_t)k, -1, why);
}

/* Graph input/output tensor `i` (of the validated vector at `pos`, i below its length): in the
 * arena, int8 or float32; with its data when `with_data`. */
static tpr_status_t io_tensor(tpr_model_t *m, tpr_fb_t *fb, uint32_t pos, uint32_t i,
                              tpr_tensor_t *t, int with_data)
{
    int32_t idx = (int32_t)tpr_rd32(fb->b + pos + 4u * i);
    tpr_ctx_t g; /* what tpr_tensor reads: no operator */
    tpr_status_t st;
    g.m = m;
    g.fb = fb;
    g.op = 0xFFFFFFFFu;
    g.eval = (uint8_t)with_data;
    if (fb->err != TPR_OK) { /* left by a tensor read before (tpr_tensor can succeed with it) */
        return TPR_ERR(m, fb->err, -1, -1, ("graph inputs/outputs"));
    }
    st = tpr_tensor(&g, idx, t);
    if (st != TPR_OK) {
        return st;
    }
    if (t->is_const) {
        return TPR_ERR(m, TPR_ERR_GRAPH, -1, idx, ("graph input/output is a constant"));
    }
    if (t->type != TPR_TYPE_INT8 && t->type != TPR_TYPE_FLOAT32) {
        return TPR_ERR(m, TPR_ERR_TYPE, -1, idx, ("graph input/output not int8/float32"));
    }
    return TPR_OK;
}

/* Validate the operators, compute tensor lifetimes and plan the arena. The planner's scratch
 * arrays first, last, size and next follow each other at the start of the arena's activation
 * area, right after loc[] (and its alignment). */
static tpr_status_t plan(tpr_model_t *m, tpr_fb_t *fb, uint16_t *first, int grow, uint32_t *peak,
                         int *grew)
{
    uint32_t i, k, n = m->n_tensors, cand, r;
    uint16_t *last = first + n, *next = first + 4u * n;
    uint32_t *size = (uint32_t *)(void *)(first + 2u * n); /* 4-byte aligned: 4n bytes in */
    planning_t p;
    tpr_tensor_t *t = &p.ts[2];
    tpr_status_t st;

    m->mult_count = 0;
    /* loc[] TPR_LOC_NONE and first[] TPR_LIFE_UNUSED (all ones), then last[] and size[] 0 */
    memset(m->loc, 0xFF, (size_t)((uint8_t *)last - (uint8_t *)m->loc));
    memset(last, 0, 6u * n);
    p.first = first;
    p.last = last;
    p.size = size;
    for (i = 0; i < m->n_inputs; ++i) {
        if ((st = io_tensor(m, fb, m->inputs, i, t, 0)) != TPR_OK) {
            return st;
        }
        first[t->index] = 0;
        size[t->index] = align_up(t->bytes);
    }
    for (k = 0; k < m->n_ops; ++k) {
        if ((st = run_op(m, fb, k, &p, &m->mult_count)) != TPR_OK) {
            return st;
        }
    }
    for (i = 0; i < m->n_outputs; ++i) {
        if ((st = io_tensor(m, fb, m->outputs, i, t, 0)) != TPR_OK) {
            return st;
        }
        if (first[t->index] == TPR_LIFE_UNUSED) {
            return TPR_ERR(m, TPR_ERR_GRAPH, -1, t->index, ("graph output never written"));
        }
        last[t->index] = (uint16_t)m->n_ops; /* alive after the last operator */
    }
    /* an alias lives as long as its root must: extend the root's lifetime */
    for (i = 0; i < n; ++i) {
        if (first[i] == ALIAS_MARK && last[i] > last[size[i]]) {
            last[size[i]] = last[i];
        }
    }
    /* an in-place output takes over the memory of a candidate input (its root's, along aliases)
     * that dies where the output is written; the root lives on, grown to the output's size if
     * that is larger and `grow` (*grew: a root could grow) */
    *grew = 0;
    for (i = 0; i < n; ++i) {
        for (cand = m->loc[i]; cand != TPR_LOC_NONE; cand = (cand >> 16) | 0xFFFF0000u) {
            if ((cand & 0xFFFFu) == 0xFFFFu) {
                continue;
            }
            r = root_of(first, size, cand & 0xFFFFu);
            if (last[r] != first[i] || r == i) {
                continue;
            }
            if (size[i] > size[r]) {
                *grew = 1;
                if (!grow) {
                    continue;
                }
                size[r] = size[i];
            }
            last[r] = last[i]; /* the later end: last[i] >= first[i] = last[r] */
            first[i] = ALIAS_MARK;
            size[i] = r;
            break;
        }
    }
    *peak = tpr_plan(n, first, last, size, m->loc, next);
    if (*peak > 0x7FFFFFF0u) {
        return TPR_ERR(m, TPR_ERR_LIMIT, -1, -1, ("the plan needs 2 GiB or more"));
    }
    /* every tensor at its root's offset, after loc[] (the activations start at first): in one
     * pass, a root below i is already moved */
    for (i = 0; i < n; ++i) {
        r = root_of(first, size, i);
        cand = m->loc[r];
        if (r >= i && cand != TPR_LOC_NONE) {
            cand += (uint32_t)((uint8_t *)first - m->arena);
        }
        m->loc[i] = cand;
    }
    return TPR_OK;
}

/* The vectors of the model table and then of subgraph 0 that tpr_model_t keeps, in the order
 * they are read: schema field and element bytes (TPR_FW), where their position goes (their
 * length follows it: checked below). The description (only checked: it must fit) and the
 * subgraphs use the places of the subgraph's inputs and outputs, read after them. */
#define VEC(field, elem, pos) {TPR_FW(field, elem), offsetof(tpr_model_t, pos)}
static const uint8_t vecs[8][2] = {
    VEC(M_OPCODES, 4, opcodes),  VEC(M_BUFFERS, 4, buffers), VEC(M_DESCRIPTION, 1, inputs),
    VEC(M_SUBGRAPHS, 4, outputs), VEC(SG_TENSORS, 4, tensors), VEC(SG_OPERATORS, 4, operators),
    VEC(SG_INPUTS, 4, inputs),    VEC(SG_OUTPUTS, 4, outputs)};
#undef VEC
#define LEN_AFTER(pos, len) (offsetof(tpr_model_t, len) == offsetof(tpr_model_t, pos) + 4u)
typedef char vec_len_check[LEN_AFTER(opcodes, n_opcodes) && LEN_AFTER(buffers, n_buffers) &&
                                   LEN_AFTER(tensors, n_tensors) && LEN_AFTER(operators, n_ops) &&
                                   LEN_AFTER(inputs, n_inputs) && LEN_AFTER(outputs, n_outputs)
                               ? 1
                               : -1];
#undef LEN_AFTER

static tpr_status_t init(tpr_model_t *m, const void *model, size_t model_size, void *arena,
                         size_t arena_size, int need_full_arena)
{
    tpr_fb_t fb;
    tpr_tab_t tab; /* the model table, then subgraph 0 */
    tpr_vec_t v;
    uint32_t loc_bytes, work, peak = 0, best = 0, i, groups;
    int grow, grew = 0;
    tpr_status_t st;
    uint16_t *first;
#if TPR_ERROR_DETAIL
    const char *why;
#endif

    memset(m, 0, sizeof *m);
    m->err_op = -1;
    m->err_tensor = -1;
    m->err_code = -1;
    if (model == 0 || arena == 0) {
        TPR_BAD(TPR_ERR_ARG, "model or arena is NULL");
    }
    if (model_size < 8) {
        TPR_BAD(TPR_ERR_TRUNCATED, "shorter than a flatbuffer header");
    }
    if (model_size > 0x7FFFFFF0u || arena_size > 0x7FFFFFF0u) {
        TPR_BAD(TPR_ERR_LIMIT, "model or arena of 2 GiB or more");
    }
    if (((uintptr_t)arena & 3u) != 0) {
        TPR_BAD(TPR_ERR_ALIGNMENT, "arena not 4-byte aligned");
    }
    m->data = (const uint8_t *)model;
    m->size = (uint32_t)model_size;
    m->arena = (uint8_t *)arena;
    m->arena_size = (uint32_t)arena_size;
    fb.b = m->data;
    fb.n = m->size;
    fb.err = TPR_OK;

    if (tpr_rd32(m->data + 4) != 0x334C4654u) { /* "TFL3" */
        TPR_BAD(TPR_ERR_IDENTIFIER, 0);
    }
    if (!tpr_fb_table_at(&fb, tpr_rd32(m->data) < m->size ? tpr_rd32(m->data) : m->size, &tab)) {
        TPR_BAD(fb.err, "root table");
    }
    if (tpr_fb_u(&fb, &tab, M_VERSION, 4) != 3) {
        TPR_BAD(fb.err != TPR_OK ? fb.err : TPR_ERR_SCHEMA_VERSION, 0);
    }
    for (i = 0; i < 8; ++i) {
        if (i == 4) { /* the model table's vectors are read: on to subgraph 0 */
            if (fb.err != TPR_OK) {
                TPR_BAD(fb.err, "model table");
            }
            if (m->n_outputs == 0) {
                TPR_BAD(TPR_ERR_GRAPH, "no subgraph");
            }
            tpr_fb_elem_table(&fb, m->outputs, &tab); /* subgraph 0 */
        }
        tpr_fb_vec(&fb, &tab, vecs[i][0], &v);
        *(uint32_t *)(void *)((uint8_t *)m + vecs[i][1]) = v.pos;
        *(uint32_t *)(void *)((uint8_t *)m + vecs[i][1] + 4) = v.len;
    }
    if (fb.err != TPR_OK) {
        TPR_BAD(fb.err, "subgraph 0");
    }
    if (m->n_tensors > TPR_MAX_TENSORS || m->n_ops > TPR_MAX_OPS) {
        TPR_BAD(TPR_ERR_LIMIT, "too many tensors or operators");
    }
    if (m->n_outputs == 0) {
        TPR_BAD(TPR_ERR_GRAPH, "graph without outputs");
    }

    /* arena: [loc: 4 bytes per tensor][activations]; the planner's scratch (first, last: 2 bytes
     * each per tensor, size: 4, next: 2) sits in the activation area while planning */
    loc_bytes = align_up(4u * m->n_tensors);
    work = align_up(10u * m->n_tensors);
    if (m->arena_size < loc_bytes + work) {
        m->arena_required = loc_bytes + work;
        TPR_BAD(TPR_ERR_ARENA_TOO_SMALL, "arena cannot hold the plan's working data");
    }
    m->loc = (uint32_t *)(void *)m->arena;
    /* validation stores the multipliers that fit above the scratch */
    m->mult_room = ((m->arena_size & ~3u) - loc_bytes - work) / TPR_MULT_GROUP_BYTES;
    first = (uint16_t *)(void *)(m->arena + loc_bytes);
    /* with in-place roots grown (a PAD's), then, if that was possible, without, and again with
     * if that was better: a grown root takes more memory before the PAD (grew: the plan can
     * grow one; best: the other plan's peak) */
    for (grow = 1;; grow = !grow) {
        st = plan(m, &fb, first, grow, &peak, &grew);
        if (st != TPR_OK) {
            return st; /* reported */
        }
        if (!grew || peak <= best) {
            break;
        }
        best = peak;
    }
    m->activation_bytes = peak;
    m->arena_required = loc_bytes + (peak > work ? peak : work);
    /* the groups stored (each above the scratch) and clear of the activations are read */
    groups = (m->mult_count + 3u) / 4u; /* mult_count <= 2^30 */
    m->arena_fast = groups > (0x7FFFFFF0u - m->arena_required) / TPR_MULT_GROUP_BYTES
                        ? 0xFFFFFFFFu
                        : m->arena_required + TPR_MULT_GROUP_BYTES * groups;
    m->mult_room = TPR_MULT_CACHE && (m->arena_size & ~3u) >= m->arena_required
                       ? ((m->arena_size & ~3u) - m->arena_required) / TPR_MULT_GROUP_BYTES
                       : 0;
    /* the first 4 x mult_room, or all (fewer than 4 x mult_room when mult_room >= groups) */
    m->mult_kept = 4u * m->mult_room < m->mult_count ? 4u * m->mult_room : m->mult_count;
    if (need_full_arena && m->arena_required > m->arena_size) {
        TPR_BAD(TPR_ERR_ARENA_TOO_SMALL, 0);
    }
    m->ready = TPR_READY_MAGIC;
    return TPR_OK;
bad:
    return TPR_ERR(m, st, -1, -1, why);
}

tpr_status_t tpr_init(tpr_model_t *m, const void *model, size_t model_size, void *arena,
                      size_t arena_size)
{
    if (m == 0) {
        return TPR_ERR_ARG;
    }
    return init(m, model, model_size, arena, arena_size, 1);
}

/* The planned arena (fast 0: arena_required, 1: arena_fast) in *bytes; a too small `work`
 * gives TPR_ERR_ARENA_TOO_SMALL and the work size to retry with. */
static TPR_NOINLINE tpr_status_t arena_bytes(const void *model, size_t model_size, void *work,
                                size_t work_size, int fast, uint32_t *bytes)
{
    tpr_model_t m;
    tpr_status_t st;
    if (bytes == 0) {
        return TPR_ERR_ARG;
    }
    st = init(&m, model, model_size, work, work_size, 0);
    *bytes = fast && st == TPR_OK ? m.arena_fast : m.arena_required;
    return st;
}

tpr_status_t tpr_required_arena_bytes(const void *model, size_t model_size, void *work,
                                      size_t work_size, uint32_t *required)
{
    return arena_bytes(model, model_size, work, work_size, 0, required);
}

tpr_status_t tpr_fast_arena_bytes(const void *model, size_t model_size, void *work,
                                  size_t work_size, uint32_t *fast)
{
    return arena_bytes(model, model_size, work, work_size, 1, fast);
}

tpr_status_t tpr_invoke(tpr_model_t *m)
{
    tpr_fb_t fb;
    uint32_t k, base = 0;
    tpr_status_t st;
    if (m == 0 || m->ready != TPR_READY_MAGIC) {
        return TPR_ERR_ARG;
    }
    m->status = TPR_OK;
    fb.b = m->data;
    fb.n = m->size;
    fb.err = TPR_OK;
    for (k = 0; k < m->n_ops; ++k) {
#if TPR_PROFILE
        if (m->op_hook != 0) {
            m->op_hook(m->op_hook_user, k);
        }
#endif
        if ((st = run_op(m, &fb, k, 0, &base)) != TPR_OK) {
            return st;
        }
    }
#if TPR_PROFILE
    if (m->op_hook != 0) {
        m->op_hook(m->op_hook_user, m->n_ops);
    }
#endif
    return TPR_OK;
}

/* Graph inputs (is_out 0) or outputs (1) of a model tpr_init accepted; 0 for any other. */
static TPR_NOINLINE uint32_t io_count(const tpr_model_t *m, int is_out)
{
    if (m == 0 || m->ready != TPR_READY_MAGIC) {
        return 0;
    }
    return is_out ? m->n_outputs : m->n_inputs;
}

uint32_t tpr_input_count(const tpr_model_t *m)
{
    return io_count(m, 0);
}

uint32_t tpr_output_count(const tpr_model_t *m)
{
    return io_count(m, 1);
}

/* tpr_tensor_t has tpr_io_t's fields from bytes on at the same distances from bytes (a negative
 * array size otherwise); the two bytes in tpr_io_t's padding are is_const and has_quant. */
#define IO_REST (sizeof(tpr_io_t) - offsetof(tpr_io_t, bytes))
#define SAME_AT(f, g) \
    (offsetof(tpr_tensor_t, f) - offsetof(tpr_tensor_t, bytes) == \
     offsetof(tpr_io_t, g) - offsetof(tpr_io_t, bytes))
typedef char io_layout_check[SAME_AT(dims, dims) && SAME_AT(ndims, ndims) && SAME_AT(type, type) &&
                                     SAME_AT(zp, zero_point) && SAME_AT(scale, scale_bits) &&
                                     IO_REST <= sizeof(tpr_tensor_t) - offsetof(tpr_tensor_t, bytes)
                                 ? 1
                                 : -1];
#undef SAME_AT

/* Graph input (is_out 0) or output (1) `index`. */
static tpr_status_t get_io(tpr_model_t *m, uint32_t index, tpr_io_t *io, int is_out)
{
    tpr_fb_t fb;
    tpr_tensor_t t;
    tpr_status_t st;
    if (io == 0 || index >= io_count(m, is_out)) { /* also a NULL or unready m */
        return TPR_ERR_ARG;
    }
    fb.b = m->data;
    fb.n = m->size;
    fb.err = TPR_OK;
    if ((st = io_tensor(m, &fb, is_out ? m->outputs : m->inputs, index, &t, 1)) != TPR_OK) {
        return st;
    }
    io->data = t.data;
    memcpy(&io->bytes, &t.bytes, IO_REST); /* the same fields in the same places */
    return TPR_OK;
}

tpr_status_t tpr_input(tpr_model_t *m, uint32_t index, tpr_io_t *io)
{
    return get_io(m, index, io, 0);
}

tpr_status_t tpr_output(tpr_model_t *m, uint32_t index, tpr_io_t *io)
{
    return get_io(m, index, io, 1);
}
