/* The verification harness: runs a model on the target and reports what happened.
 *
 * Two ways to feed it, chosen at build time:
 *  - semihosting (default, QEMU): reads every sample from `inputs.bin` on the host, writes the
 *    raw outputs to `outputs.bin` and the SysTick ticks of each invoke to `ticks.bin`, so one
 *    emulator launch runs hundreds of samples;
 *  - TP_HARNESS_EMBEDDED (Renode, hardware): the samples and labels are compiled in, and the
 *    results (a digest of all outputs, top-1 accuracy) are printed over the board's UART.
 *
 * TP_PROFILE_OPS=n (with TPR_PROFILE=1, n the model's operator count): the runtime's op_hook
 * sums the SysTick ticks of each operator over all samples, printed as one `TP_PROFILE op=k
 * ticks=t` line per operator at the end (the hook's own few instructions land in the operators').
 *
 * Results are printed as `key=value` lines that tinyprune/verify.py parses. Exit status:
 * 0 ok, 2 the model was refused, 4 an inference failed, 5 a host file could not be used.
 */
#include <stdint.h>
#include <string.h>

#include "harness_model.h" /* generated: tp_model_data, tp_model_size, TP_ARENA_BYTES */
#include "semihost.h"
#include "startup.h"
#include "timer.h"
#include "tpr_runtime.h"

#ifdef TP_HARNESS_EMBEDDED
#include "harness_inputs.h" /* generated: tp_inputs, tp_labels, TP_NUM_SAMPLES */
#include "uart.h"
#endif

static uint8_t tp_arena[TP_ARENA_BYTES] __attribute__((aligned(16)));
static tpr_model_t tp_model;
static uint32_t tp_init_ticks; /* SysTick ticks of tpr_init: the checks and the arena plan, at boot */

enum { EXIT_OK = 0, EXIT_MODEL = 2, EXIT_INVOKE = 4, EXIT_HOSTIO = 5 };

#ifdef TP_PROFILE_OPS
#if !TPR_PROFILE
#error "TP_PROFILE_OPS needs the runtime built with TPR_PROFILE=1"
#endif
static uint64_t tp_op_ticks[TP_PROFILE_OPS]; /* per operator, summed over the samples */
static uint64_t tp_op_mark;                  /* the timer at the last operator boundary */
#endif

/* ---- console: semihosting, or the UART for embedded builds ----------------------------- */

static void out_str(const char *s)
{
#ifdef TP_HARNESS_EMBEDDED
    tp_uart_puts(s);
#endif
#ifndef TP_NO_SEMIHOSTING
    tp_sh_puts(s);
#endif
}

static void out_u64(uint64_t v)
{
    char buf[21];
    int i = 20;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + (uint32_t)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    out_str(&buf[i]);
}

static void out_kv(const char *key, uint64_t value)
{
    out_str(" ");
    out_str(key);
    out_str("=");
    out_u64(value);
}

static int fail(const char *what, tpr_status_t s, int code)
{
    out_str("TP_ERROR ");
    out_str(what);
    out_str(": ");
    out_str(tpr_status_str(s));
    out_kv("status", (uint64_t)s);
    out_kv("op", (uint64_t)(uint32_t)tp_model.err_op);
    out_kv("tensor", (uint64_t)(uint32_t)tp_model.err_tensor);
    out_str("\n");
    return code;
}

static void report_model(void)
{
    out_str("TP_MODEL");
    out_kv("model_bytes", tp_model_size);
    out_kv("arena_bytes", TP_ARENA_BYTES);
    out_kv("arena_required", tp_model.arena_required);
    out_kv("activation_bytes", tp_model.activation_bytes);
    out_kv("mult_count", tp_model.mult_count);
    out_kv("mult_kept", tp_model.mult_kept);
    out_kv("init_ticks", tp_init_ticks);
    out_str("\n");
}

#ifdef TP_PROFILE_OPS
static void profile_hook(void *user, uint32_t op)
{
    const uint64_t now = tp_timer_ticks();
    (void)user;
    if (op > 0u && op <= TP_PROFILE_OPS) {
        tp_op_ticks[op - 1u] += now - tp_op_mark;
    }
    tp_op_mark = now;
}
#endif

/* One TP_PROFILE line per operator (nothing without TP_PROFILE_OPS). */
static void report_profile(void)
{
#ifdef TP_PROFILE_OPS
    uint32_t k;
    for (k = 0; k < TP_PROFILE_OPS && k < tp_model.n_ops; ++k) {
        out_str("TP_PROFILE");
        out_kv("op", k);
        out_kv("ticks", tp_op_ticks[k]);
        out_str("\n");
    }
#endif
}

static void report_result(uint32_t samples, uint64_t ticks_total, uint32_t ticks_min, uint32_t ticks_max)
{
    out_str("TP_RESULT");
    out_kv("samples", samples);
    out_kv("ticks_total", ticks_total);
    out_kv("ticks_min", ticks_min);
    out_kv("ticks_max", ticks_max);
    out_kv("stack_used", tp_stack_high_water_bytes());
    out_kv("stack_size", tp_stack_size_bytes());
    out_str("\n");
}

/* tpr_init on the harness's model and arena, timed (the timer started). */
static tpr_status_t timed_init(void)
{
    uint64_t t0 = tp_timer_ticks();
    tpr_status_t s = tpr_init(&tp_model, tp_model_data, tp_model_size, tp_arena, sizeof tp_arena);
    tp_init_ticks = (uint32_t)(tp_timer_ticks() - t0);
#ifdef TP_PROFILE_OPS
    tp_model.op_hook = profile_hook; /* tpr_init cleared it */
#endif
    return s;
}

/* Time one inference in SysTick ticks. */
static tpr_status_t timed_invoke(uint32_t *ticks)
{
    uint64_t t0 = tp_timer_ticks();
    tpr_status_t s = tpr_invoke(&tp_model);
    *ticks = (uint32_t)(tp_timer_ticks() - t0);
    return s;
}

#ifndef TP_HARNESS_EMBEDDED

int main(void)
{
    tpr_io_t in, out;
    tpr_status_t s;
    int f_in, f_out, f_ticks;
    long in_len;
    uint32_t n, i, ticks, ticks_min = 0xFFFFFFFFu, ticks_max = 0u;
    uint64_t ticks_total = 0u;

    tp_timer_start();
    s = timed_init();
    report_model();
    if (s != TPR_OK) {
        return fail("init", s, EXIT_MODEL);
    }
    if (tpr_input(&tp_model, 0, &in) != TPR_OK || tpr_output(&tp_model, 0, &out) != TPR_OK) {
        return fail("io", TPR_ERR_GRAPH, EXIT_MODEL);
    }
    f_in = tp_sh_open("inputs.bin", TP_SH_MODE_RB);
    f_out = tp_sh_open("outputs.bin", TP_SH_MODE_WB);
    f_ticks = tp_sh_open("ticks.bin", TP_SH_MODE_WB);
    if (f_in < 0 || f_out < 0 || f_ticks < 0) {
        out_str("TP_ERROR hostio: cannot open inputs.bin/outputs.bin/ticks.bin\n");
        return EXIT_HOSTIO;
    }
    in_len = tp_sh_flen(f_in);
    if (in_len < 0 || in.bytes == 0u || (uint32_t)in_len % in.bytes != 0u) {
        out_str("TP_ERROR hostio: inputs.bin is not a whole number of samples\n");
        return EXIT_HOSTIO;
    }
    n = (uint32_t)in_len / in.bytes;
    for (i = 0; i < n; i++) {
        if (tp_sh_read(f_in, in.data, in.bytes) != in.bytes) {
            out_str("TP_ERROR hostio: short read from inputs.bin\n");
            return EXIT_HOSTIO;
        }
        s = timed_invoke(&ticks);
        if (s != TPR_OK) {
            return fail("invoke", s, EXIT_INVOKE);
        }
        ticks_total += ticks;
        ticks_min = ticks < ticks_min ? ticks : ticks_min;
        ticks_max = ticks > ticks_max ? ticks : ticks_max;
        if (tp_sh_write(f_out, out.data, out.bytes) != out.bytes ||
            tp_sh_write(f_ticks, &ticks, sizeof ticks) != sizeof ticks) {
            out_str("TP_ERROR hostio: short write\n");
            return EXIT_HOSTIO;
        }
    }
    tp_sh_close(f_in);
    tp_sh_close(f_out);
    tp_sh_close(f_ticks);
    report_profile();
    report_result(n, ticks_total, n ? ticks_min : 0u, ticks_max);
    return EXIT_OK;
}

#else /* TP_HARNESS_EMBEDDED */

/* FNV-1a over every output byte of every sample: one number the host predicts exactly. */
static uint32_t fnv1a(uint32_t h, const uint8_t *p, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

static uint32_t argmax_i8(const int8_t *v, uint32_t n)
{
    uint32_t i, best = 0;
    for (i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return best;
}

static void out_hex32(uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    char buf[11];
    int i;
    buf[0] = '0';
    buf[1] = 'x';
    for (i = 0; i < 8; i++) {
        buf[2 + i] = digits[(v >> (28 - 4 * i)) & 0xFu];
    }
    buf[10] = '\0';
    out_str(buf);
}

int main(void)
{
    tpr_io_t in, out;
    tpr_status_t s;
    uint32_t i, ticks, ticks_min = 0xFFFFFFFFu, ticks_max = 0u, correct = 0u, digest = 2166136261u;
    uint64_t ticks_total = 0u;

    tp_uart_init();
    tp_timer_start();
    s = timed_init();
    report_model();
    if (s != TPR_OK) {
        return fail("init", s, EXIT_MODEL);
    }
    if (tpr_input(&tp_model, 0, &in) != TPR_OK || tpr_output(&tp_model, 0, &out) != TPR_OK ||
        in.bytes != TP_INPUT_BYTES) {
        return fail("io", TPR_ERR_GRAPH, EXIT_MODEL);
    }
    for (i = 0; i < TP_NUM_SAMPLES; i++) {
        memcpy(in.data, &tp_inputs[i * TP_INPUT_BYTES], TP_INPUT_BYTES);
        s = timed_invoke(&ticks);
        if (s != TPR_OK) {
            return fail("invoke", s, EXIT_INVOKE);
        }
        ticks_total += ticks;
        ticks_min = ticks < ticks_min ? ticks : ticks_min;
        ticks_max = ticks > ticks_max ? ticks : ticks_max;
        digest = fnv1a(digest, (const uint8_t *)out.data, out.bytes);
        if (out.type == TPR_TYPE_INT8 && argmax_i8((const int8_t *)out.data, out.bytes) == tp_labels[i]) {
            correct++;
        }
    }
    report_profile();
    report_result(TP_NUM_SAMPLES, ticks_total, ticks_min, ticks_max);
    out_str("tinyprune outputs digest: ");
    out_hex32(digest);
    out_str("\ntinyprune accuracy: ");
    out_u64(correct);
    out_str("/");
    out_u64(TP_NUM_SAMPLES);
    out_str("\ntinyprune done\n");
#ifdef TP_NO_SEMIHOSTING
    for (;;) {
    }
#else
    return EXIT_OK;
#endif
}

#endif
