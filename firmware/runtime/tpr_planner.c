/* Memory planner: buffer sizes and lifetimes in, offsets out. Knows nothing about tensors.
 *
 * Greedy by size: buffers are placed largest first. Each one goes into a gap between already
 * placed buffers whose lifetimes overlap its own, or on top of them. The order among equal sizes
 * and the gap rule change the result a lot (ResNet-8: 51 KB or 64 KB), so four variants are
 * tried and the smallest plan wins: equal sizes by later index first (TFLite Micro's greedy
 * planner's order) or by longer lifetime first, times first fit (lowest offset) or best fit
 * (smallest gap that holds the buffer). Placed buffers are kept in a list linked in offset order
 * (`next`: 2 bytes per buffer of the caller's scratch), so one placement is a linear walk: O(n^2)
 * for the whole plan and no other memory. */
#define TPR_COLD_FILE /* compiled for size: tpr_config.h */
#include "tpr_internal.h"

#define UNPLACED 0xFFFFFFFFu
#define END 0xFFFFu

/* Whether buffer i goes before buffer b (mode bit 1: longer lifetime first among equal sizes;
 * bit 2: in order of first use, then by size). */
static int before(uint32_t i, uint32_t b, const uint16_t *first, const uint16_t *last,
                  const uint32_t *size, int mode)
{
    if ((mode & 4) != 0 && first[i] != first[b]) {
        return first[i] < first[b];
    }
    if (size[i] != size[b]) {
        return size[i] > size[b];
    }
    if ((mode & 2) != 0 && last[i] - first[i] != last[b] - first[b]) {
        return last[i] - first[i] > last[b] - first[b];
    }
    return i > b;
}

static uint32_t place_all(uint32_t n, const uint16_t *first, const uint16_t *last,
                          const uint32_t *size, uint32_t *off, uint16_t *next, int mode)
{
    const uint32_t fit_mask = (mode & 1) ? 0xFFFFFFFFu : 0u; /* best fit: keep the waste */
    uint32_t i, peak = 0;
    uint16_t head = END, *link;
    for (i = 0; i < n; ++i) {
        off[i] = UNPLACED;
    }
    for (;;) {
        /* 32 bits suffice: every placed buffer ends at or below 2^31 - 1 (checked below), so
         * cur <= 2^31 - 1 and, with size[b] <= 2^31, cur + size[b] cannot wrap */
        uint32_t b = UNPLACED, o, cur = 0, best_waste = UNPLACED, chosen = UNPLACED;
        for (i = 0; i < n; ++i) {
            if (first[i] < TPR_LIFE_ALIAS && off[i] == UNPLACED &&
                (b == UNPLACED || before(i, b, first, last, size, mode))) {
                b = i;
            }
        }
        if (b == UNPLACED) {
            break;
        }
        /* walk placed buffers by offset; `cur` is the end of the live ones seen so far */
        for (o = head; o != END; o = next[o]) {
            if (first[o] > last[b] || first[b] > last[o]) {
                continue; /* never alive at the same time */
            }
            if (off[o] >= cur + size[b]) {
                uint32_t waste = off[o] - (cur + size[b]);
                if (waste < best_waste) { /* first fit: best_waste 0 after the first gap */
                    best_waste = waste & fit_mask;
                    chosen = cur;
                }
            }
            if (off[o] + size[o] > cur) {
                cur = off[o] + size[o];
            }
        }
        if (chosen == UNPLACED) {
            chosen = cur; /* on top */
        }
        if (chosen + size[b] > 0x7FFFFFFFu) {
            return UNPLACED; /* cannot be addressed: the caller reports a limit error */
        }
        off[b] = chosen;
        if (chosen + size[b] > peak) {
            peak = chosen + size[b];
        }
        /* link b into the offset-ordered list, after the buffers at or below its offset */
        for (link = &head; *link != END && off[*link] <= off[b]; link = &next[*link]) {
        }
        next[b] = *link;
        *link = (uint16_t)b;
    }
    return peak;
}

uint32_t tpr_plan(uint32_t n, const uint16_t *first, const uint16_t *last, const uint32_t *size,
                  uint32_t *off, uint16_t *next)
{
    uint32_t peak, best = UNPLACED;
    int mode, best_mode = 0;
    /* the six variants, then the best one again for its offsets (the same peak) unless it was the
     * last */
    for (mode = 0; mode < 6 || (mode == 6 && best_mode != 5); ++mode) {
        peak = place_all(n, first, last, size, off, next, mode < 6 ? mode : best_mode);
        if (peak < best) {
            best = peak;
            best_mode = mode;
        }
    }
    return best;
}
