/* libFuzzer target: arbitrary bytes as a model, through tpr_init and tpr_invoke.
 *
 *     clang -fsanitize=fuzzer,address,undefined ... fuzz_model.c <runtime sources>
 *     ./fuzz_model CORPUS_DIR SEED_DIR          (tinyprune/fuzz.py builds and runs it)
 *
 * Built with -DTPR_FUZZ_MAIN instead of -fsanitize=fuzzer, the same checks run as a plain
 * program over files and directories given on the command line (any compiler: the regression
 * replay in tests/test_fuzz.py uses gcc when clang is missing, and coverage uses it too).
 *
 * For each input, the invariants of the runtime's trust model (firmware/runtime/README.md) are
 * checked; a violation calls abort(), which libFuzzer reports as a crash:
 *
 *  1. The model is copied into a heap block of exactly its size, the planning work area and the
 *     arena are heap blocks of exactly the size the runtime asked for: AddressSanitizer sees any
 *     read or write past the model or the arena, UndefinedBehaviorSanitizer any UB.
 *  2. tpr_required_arena_bytes and tpr_init agree on the status and the arena size; one byte
 *     less arena is refused with TPR_ERR_ARENA_TOO_SMALL.
 *  3. A model that fails tpr_init is refused by tpr_invoke, and its detail message is a
 *     terminated string shorter than TPR_DETAIL_BYTES.
 *  4. Inputs and outputs lie inside the arena.
 *  5. Outputs depend only on the model and the inputs: the same inputs run in a second arena,
 *     filled with a different byte pattern before tpr_init, give the same status and the same
 *     output bytes (a kernel that read memory nobody wrote would see the pattern).
 *  6. The same model 1 to 3 bytes off alignment (the end of the block still where the model
 *     ends) is refused with TPR_ERR_ALIGNMENT or gets the same status as aligned, and runs
 *     when accepted: no 32-bit read of misaligned constant data (UBSan's alignment check).
 *     (A model whose own data is misaligned may of course become valid when shifted.)
 *  7. The fast arena (tpr_fast_arena_bytes, m.arena_fast: the multipliers kept in it), a heap
 *     block of exactly that size, keeps them all (mult_kept) and gives the same status and
 *     outputs as the smallest arena, as does an arena of a size in between (the first ones kept).
 *
 * Inputs come from the tail of the fuzz data (byte j of the inputs is data[size - 1 - j % tail]),
 * so mutations reach the input values too. Models whose arena is above TPR_FUZZ_MAX_ARENA are
 * validated but not run: a corrupted shape can ask for gigabytes and hours of arithmetic,
 * which is no bug of the runtime (the same rule as host/tpr_run.c's --max-arena). */
#if defined(TPR_FUZZ_MAIN) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* opendir, stat */
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tpr_runtime.h"

#ifndef TPR_FUZZ_MAX_ARENA
#define TPR_FUZZ_MAX_ARENA (256u * 1024u)
#endif
#ifndef TPR_FUZZ_MAX_OUTPUT
#define TPR_FUZZ_MAX_OUTPUT (256u * 1024u)
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok) {
        abort();
    }
}

/* Whether s ends within n bytes (read byte by byte: never past its terminator). */
static int terminated(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        if (s[i] == 0) {
            return 1;
        }
    }
    return 0;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n > 0 ? n : 1u);
    check(p != NULL);
    return p;
}

/* The arena the runtime asks for, planned in work areas of exactly the size it asks for. */
static tpr_status_t required(const uint8_t *model, size_t size, uint32_t *need)
{
    uint32_t work_size = 64;
    tpr_status_t st;
    for (;;) {
        void *work = xmalloc(work_size);
        *need = 0;
        st = tpr_required_arena_bytes(model, size, work, work_size, need);
        free(work);
        if (st == TPR_ERR_ARENA_TOO_SMALL && *need > work_size && *need <= TPR_FUZZ_MAX_ARENA) {
            work_size = *need;
            continue;
        }
        return st;
    }
}

static void fill_inputs(tpr_model_t *m, const uint8_t *data, size_t size, const uint8_t *arena,
                        uint32_t arena_size)
{
    uint32_t i, j, k = 0, tail = size < 4096u ? (uint32_t)size : 4096u;
    for (i = 0; i < tpr_input_count(m); ++i) {
        tpr_io_t io;
        uint8_t *p;
        check(tpr_input(m, i, &io) == TPR_OK);
        p = (uint8_t *)io.data;
        check(p >= arena && io.bytes <= arena_size && (size_t)(p - arena) <= arena_size - io.bytes);
        for (j = 0; j < io.bytes; ++j, ++k) {
            p[j] = tail ? data[size - 1u - k % tail] : 0u;
        }
    }
}

/* Every output's bytes, concatenated into out (at most cap bytes); returns the total length. */
static uint32_t collect_outputs(tpr_model_t *m, const uint8_t *arena, uint32_t arena_size,
                                uint8_t *out, uint32_t cap)
{
    uint32_t i, n = 0;
    for (i = 0; i < tpr_output_count(m); ++i) {
        tpr_io_t io;
        const uint8_t *p;
        check(tpr_output(m, i, &io) == TPR_OK);
        p = (const uint8_t *)io.data;
        check(p >= arena && io.bytes <= arena_size && (size_t)(p - arena) <= arena_size - io.bytes);
        if (io.bytes <= cap - n) {
            memcpy(out + n, p, io.bytes);
            n += io.bytes;
        }
    }
    return n;
}

/* Init in a fresh arena of exactly `arena_size` bytes (`need` or more) filled with `pattern`,
 * run once; returns the invoke status and the outputs. */
static tpr_status_t run(const uint8_t *model, size_t size, const uint8_t *data, size_t data_size,
                        uint32_t need, uint32_t arena_size, int pattern, uint8_t *out, uint32_t *out_len)
{
    tpr_model_t m;
    uint8_t *arena = (uint8_t *)xmalloc(arena_size);
    tpr_status_t st;
    memset(arena, pattern, arena_size > 0 ? arena_size : 1u);
    st = tpr_init(&m, model, size, arena, arena_size);
    check(st == TPR_OK && m.arena_required == need);
    check(m.mult_kept == (arena_size >= m.arena_fast ? m.mult_count
                                                       : 4u * (((arena_size & ~3u) - need) / TPR_MULT_GROUP_BYTES)));
    fill_inputs(&m, data, data_size, arena, arena_size);
    st = tpr_invoke(&m);
    *out_len = st == TPR_OK ? collect_outputs(&m, arena, arena_size, out, TPR_FUZZ_MAX_OUTPUT) : 0u;
    free(arena);
    return st;
}

static uint8_t out_a[TPR_FUZZ_MAX_OUTPUT], out_b[TPR_FUZZ_MAX_OUTPUT];

/* Invariant 6: the model at an address 1..3 bytes past a 16-byte boundary. */
static void misaligned(const uint8_t *data, size_t size, tpr_status_t aligned_status)
{
    size_t off = 1u + size % 3u;
    uint8_t *block = (uint8_t *)xmalloc(size + off), *model = block + off;
    uint32_t need = 0, len;
    tpr_status_t st;
    if (size > 0) {
        memcpy(model, data, size);
    }
    st = required(model, size, &need);
    /* the checks run in the same order: the first failure is the aligned one's, or an alignment
     * check that failed earlier (unless the aligned model failed one itself: then anything) */
    check(st == aligned_status || st == TPR_ERR_ALIGNMENT || aligned_status == TPR_ERR_ALIGNMENT);
    if (st == TPR_OK && need <= TPR_FUZZ_MAX_ARENA) {
        run(model, size, data, size, need, need, 0x5A, out_a, &len);
    }
    free(block);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *model = (uint8_t *)xmalloc(size); /* exactly `size` bytes, 16-byte aligned */
    tpr_model_t m;
    tpr_status_t st, st_a, st_b;
    uint32_t need = 0, fast = 0, len_a, len_b;
    if (size > 0) {
        memcpy(model, data, size);
    }
    st = required(model, size, &need);
    if (st != TPR_OK) {
        /* rejected: tpr_init agrees and tpr_invoke refuses the model */
        uint8_t arena[256] __attribute__((aligned(16)));
        tpr_status_t st2 = tpr_init(&m, model, size, arena, sizeof arena);
        check(st2 != TPR_OK);
        check(tpr_invoke(&m) == TPR_ERR_ARG);
        check(tpr_input_count(&m) == 0 && tpr_output_count(&m) == 0);
        check(terminated(tpr_detail(&m), TPR_DETAIL_BYTES));
        check(tpr_status_str(st)[0] != 0);
        free(model);
        misaligned(data, size, st);
        return 0;
    }
    if (need > TPR_FUZZ_MAX_ARENA) {
        free(model);
        return 0;
    }
    if (need > 0) { /* one byte less is refused */
        uint8_t *small = (uint8_t *)xmalloc(need - 1u);
        check(tpr_init(&m, model, size, small, need - 1u) == TPR_ERR_ARENA_TOO_SMALL);
        check(m.arena_required == need);
        free(small);
    }
    st_a = run(model, size, data, size, need, need, 0x00, out_a, &len_a);
    st_b = run(model, size, data, size, need, need, 0xA5, out_b, &len_b);
    check(st_a == st_b && len_a == len_b && memcmp(out_a, out_b, len_a) == 0);
    { /* invariant 7: the work area need bytes, as tpr_required_arena_bytes said */
        void *work = xmalloc(need);
        check(tpr_fast_arena_bytes(model, size, work, need, &fast) == TPR_OK && fast >= need);
        free(work);
    }
    if (fast <= TPR_FUZZ_MAX_ARENA) {
        st_b = run(model, size, data, size, need, fast, 0x3C, out_b, &len_b);
        check(st_a == st_b && len_a == len_b && memcmp(out_a, out_b, len_a) == 0);
        st_b = run(model, size, data, size, need, need + (fast - need) / 2u + 1u, 0xC3, out_b, &len_b);
        check(st_a == st_b && len_a == len_b && memcmp(out_a, out_b, len_a) == 0);
    }
    free(model);
    misaligned(data, size, TPR_OK);
    return 0;
}

#ifdef TPR_FUZZ_MAIN
/* Plain driver: run every file given, and every file in every directory given. Prints one line
 * per input ("ok PATH"); a violated invariant aborts (and the sanitizers report first). */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;
    uint8_t *buf;
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (uint8_t *)xmalloc(n > 0 ? (size_t)n : 0u);
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n > 0 ? (size_t)n : 0u);
    free(buf);
    printf("ok %s\n", path);
    fflush(stdout);
    return 0;
}

static int run_path(const char *path)
{
    struct stat sb;
    DIR *d;
    struct dirent *e;
    int bad = 0;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "no such file %s\n", path);
        return 1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        return run_file(path);
    }
    d = opendir(path);
    if (!d) {
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        char child[4096];
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        if (stat(child, &sb) == 0 && S_ISREG(sb.st_mode)) {
            bad |= run_file(child);
        }
    }
    closedir(d);
    return bad;
}

int main(int argc, char **argv)
{
    int i, bad = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    for (i = 1; i < argc; ++i) {
        bad |= run_path(argv[i]);
    }
    return bad;
}
#endif
