/* Host driver for the micro runtime (tests, fuzz corpora, sanitizer builds).
 *
 *     tpr_run [--invoke N] [--max-arena BYTES] MODEL.tflite [MODEL2.tflite ...]
 *
 * For each model: read the file into a buffer of exactly its size (so AddressSanitizer sees any
 * read past the end), ask the runtime for its arena size, init it in an arena of exactly that
 * size, and optionally run N inferences on deterministic pseudo-random inputs (only when the
 * arena is at most --max-arena bytes, default 16 MiB: a corrupted shape can ask for a huge
 * arena and hours of arithmetic, which is no bug of the runtime). Prints one line
 * per model: "<path> <status-name> <arena-bytes> <detail>". Exit status 0 unless the driver
 * itself failed (a model the runtime rejects is a normal result). This file is host-only: it
 * uses stdio and malloc; the runtime does not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpr_runtime.h"

#define TPR_STATUS_NAME(name, msg) #name,
static const char *const names[] = {TPR_STATUS_LIST(TPR_STATUS_NAME)};

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (unsigned char *)malloc(n > 0 ? (size_t)n : 1u);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n > 0 ? (size_t)n : 0u;
    return buf;
}

static void run_one(const char *path, int invokes, uint32_t max_arena)
{
    size_t len = 0;
    unsigned char *model = read_file(path, &len);
    uint32_t need = 0, work_size = 256;
    void *work, *arena;
    tpr_model_t m;
    tpr_status_t st;
    int k;
    if (!model) {
        printf("%s IO_ERROR 0 cannot read the file\n", path);
        return;
    }
    for (;;) { /* grow the arena until the plan fits (the first try may only hold the metadata) */
        work = malloc(work_size);
        st = tpr_init(&m, model, len, work, work_size);
        free(work);
        if (st == TPR_ERR_ARENA_TOO_SMALL && m.arena_required > work_size) {
            work_size = m.arena_required;
            continue;
        }
        break;
    }
    if (st != TPR_OK) {
        printf("%s %s 0 %s\n", path, names[st], tpr_detail(&m));
        free(model);
        return;
    }
    /* the planning query agrees with init; then run in an arena of exactly that size */
    need = m.arena_required;
    if (need > max_arena) {
        printf("%s TPR_OK %u (arena above --max-arena: not run)\n", path, (unsigned)need);
        free(model);
        return;
    }
    work = malloc(need);
    if (tpr_required_arena_bytes(model, len, work, need, &work_size) != TPR_OK || work_size != need) {
        printf("%s DRIVER_MISMATCH 0 tpr_required_arena_bytes disagrees with tpr_init\n", path);
    }
    free(work);
    arena = malloc(need > 0 ? need : 1u);
    st = tpr_init(&m, model, len, arena, need);
    if (st == TPR_OK) {
        uint32_t seed = 12345u, i, j;
        for (k = 0; k < invokes && st == TPR_OK; ++k) {
            for (i = 0; i < tpr_input_count(&m); ++i) {
                tpr_io_t io;
                if (tpr_input(&m, i, &io) != TPR_OK) {
                    continue;
                }
                for (j = 0; j < io.bytes; ++j) {
                    seed = seed * 1103515245u + 12345u;
                    ((unsigned char *)io.data)[j] = (unsigned char)(seed >> 16);
                }
                if (io.type == TPR_TYPE_FLOAT32) { /* keep floats finite: small integers */
                    for (j = 0; j + 4 <= io.bytes; j += 4) {
                        float v = (float)((int)(((unsigned char *)io.data)[j]) - 128) / 16.0f;
                        memcpy((unsigned char *)io.data + j, &v, 4);
                    }
                }
            }
            st = tpr_invoke(&m);
        }
    }
    printf("%s %s %u %s\n", path, names[st], (unsigned)need, tpr_detail(&m));
    free(arena);
    free(model);
}

int main(int argc, char **argv)
{
    int i = 1, invokes = 0;
    uint32_t max_arena = 16u << 20;
    while (i + 1 < argc && argv[i][0] == '-' && argv[i][1] == '-') {
        if (strcmp(argv[i], "--invoke") == 0) {
            invokes = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--max-arena") == 0) {
            max_arena = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        } else {
            break;
        }
        i += 2;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: %s [--invoke N] [--max-arena BYTES] MODEL.tflite ...\n", argv[0]);
        return 2;
    }
    for (; i < argc; ++i) {
        run_one(argv[i], invokes, max_arena);
    }
    return 0;
}
