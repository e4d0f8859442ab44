/* Bounds-checked reads of a flatbuffer held in memory (in place, nothing copied).
 *
 * The model's length n is at least 8 and below 2^31 (tpr_init checks), so n - 4 does not wrap,
 * and every sum of a position < n and a checked length stays below 2^32: unsigned arithmetic
 * cannot wrap unnoticed. No alignment is
 * assumed for the flatbuffer's own fields (tpr_rd32, tpr_rd16). */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_internal.h"

#if !TPR_UNALIGNED_LE
uint32_t tpr_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

uint32_t tpr_rd16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}
#endif

static void fail(tpr_fb_t *fb, tpr_status_t st)
{
    if (fb->err == TPR_OK) {
        fb->err = st;
    }
}

int tpr_fb_table_at(tpr_fb_t *fb, uint32_t pos, tpr_tab_t *t)
{
    uint32_t vt, vtlen, tlen;
    memset(t, 0, sizeof *t);
    if (fb->err != TPR_OK || pos == TPR_FB_ABSENT) {
        return 0;
    }
    if (pos > fb->n - 4) {
        fail(fb, TPR_ERR_TRUNCATED);
        return 0;
    }
    /* vtable = pos - soffset; with n < 2^31 a wrapped result is >= 2^31 > n and is rejected */
    vt = pos - tpr_rd32(fb->b + pos);
    if (vt > fb->n - 4) {
        fail(fb, TPR_ERR_TRUNCATED);
        return 0;
    }
    vtlen = tpr_rd16(fb->b + vt);
    tlen = tpr_rd16(fb->b + vt + 2);
    if (vtlen < 4 || (vtlen & 1u) != 0 || vtlen > fb->n - vt || tlen < 4 || tlen > fb->n - pos) {
        fail(fb, TPR_ERR_MALFORMED);
        return 0;
    }
    t->pos = pos;
    t->vt = vt;
    t->vtlen = (uint16_t)vtlen;
    t->tlen = (uint16_t)tlen;
    return 1;
}

/* The vtable entry of field `field`: its offset in the table, 0 when absent (a zeroed table,
 * vtlen 0, has no fields). Needs no error check: a table's vtable was checked when it was read
 * (vtlen is even, so the entry, 2 bytes at an even offset, fits when it starts below vtlen). */
uint32_t tpr_fb_present(const tpr_tab_t *t, const tpr_fb_t *fb, unsigned field)
{
    uint32_t at = 4u + 2u * field;
    return at < t->vtlen ? tpr_rd16(fb->b + t->vt + at) : 0;
}

/* Offset of field `field` inside the table, 0 when absent; checks that `width` bytes fit. */
static uint32_t field_off(tpr_fb_t *fb, const tpr_tab_t *t, unsigned field, unsigned width)
{
    uint32_t fo = fb->err == TPR_OK ? tpr_fb_present(t, fb, field) : 0;
    if (fo != 0 && (fo < 4 || fo + width > t->tlen)) {
        fail(fb, TPR_ERR_MALFORMED);
        return 0;
    }
    return fo;
}

uint32_t tpr_fb_get(tpr_fb_t *fb, const tpr_tab_t *t, unsigned fw, uint32_t dflt)
{
    const unsigned width = fw & 15u;
    uint32_t fo = field_off(fb, t, fw >> 4, width);
    const uint8_t *p;
    if (fo == 0) {
        return dflt;
    }
    p = fb->b + t->pos + fo;
    if (width == 1) {
        return p[0];
    }
    if (width == 8 && tpr_rd32(p + 4) != 0) {
        return 0xFFFFFFFFu; /* above 32 bits: saturated */
    }
    return tpr_rd32(p);
}

/* Target of the reference in field `field`, or TPR_FB_ABSENT (absent/error). Needs 4 bytes there
 * (a table's soffset, a vector's length). */
static uint32_t ref(tpr_fb_t *fb, const tpr_tab_t *t, unsigned field)
{
    uint32_t fo = field_off(fb, t, field, 4), at, off;
    if (fo == 0) {
        return TPR_FB_ABSENT;
    }
    at = t->pos + fo; /* at + 4 <= pos + tlen <= n */
    off = tpr_rd32(fb->b + at);
    if (off - 1u >= fb->n - at - 4u) { /* not 1 <= off <= n - at - 4: 4 bytes there */
        fb->err = TPR_ERR_TRUNCATED; /* the first error: field_off found the field */
        return TPR_FB_ABSENT;
    }
    return at + off;
}

int tpr_fb_table(tpr_fb_t *fb, const tpr_tab_t *t, unsigned field, tpr_tab_t *out)
{
    return tpr_fb_table_at(fb, ref(fb, t, field), out);
}

void tpr_fb_vec(tpr_fb_t *fb, const tpr_tab_t *t, unsigned fw, tpr_vec_t *v)
{
    const unsigned elem = fw & 15u;
    uint32_t target = ref(fb, t, fw >> 4), len;
    v->pos = 0;
    v->len = 0;
    if (target != TPR_FB_ABSENT) {
        len = tpr_rd32(fb->b + target);
        if (len > (fb->n - target - 4u) / elem) {
            fb->err = TPR_ERR_TRUNCATED; /* the first error: ref found the vector */
            return;
        }
        v->pos = target + 4u;
        v->len = len;
    }
}

int tpr_fb_elem_table(tpr_fb_t *fb, uint32_t at, tpr_tab_t *out)
{
    uint32_t off = tpr_rd32(fb->b + at), pos = TPR_FB_ABSENT; /* at + 4 <= n */
    if (off - 1u >= fb->n - at) { /* not 1 <= off <= n - at */
        fail(fb, TPR_ERR_TRUNCATED);
    } else {
        pos = at + off;
    }
    return tpr_fb_table_at(fb, pos, out); /* fails at once after an error */
}


uint32_t tpr_fb_u0(tpr_fb_t *fb, const tpr_tab_t *t, unsigned fw)
{
    return tpr_fb_get(fb, t, fw, 0);
}
