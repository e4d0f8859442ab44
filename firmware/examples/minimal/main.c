/* The smallest application of a tinyprune deploy directory: run the model once on the sample in
 * sample_input.h and print the top class and the class the sample should have.
 *
 * Console: semihosting when built for QEMU (target "qemu", the default), the board's UART when
 * built for hardware (target "hardware": board.cmake / board.mk define TP_NO_SEMIHOSTING). On real
 * silicon the UART's clock, pins and baud rate are yours to set up first (see common/uart.h).
 *
 * Prints, e.g.:
 *   tinyprune minimal: model 55656 bytes, arena 3148 bytes
 *   top class: 7 (score 83)
 *   expected class: 7
 * Exit status under QEMU: 0 it ran (whatever the class), 2 the runtime refused the model,
 * 3 a fault, 4 the inference failed.
 */
#include <stdint.h>
#include <string.h>

#include "model_data.h"  /* g_model_data, g_model_data_len */
#include "model_io.h"    /* MODEL_TPR_ARENA_BYTES, MODEL_OUTPUT0_* */
#include "sample_input.h" /* g_sample_input, SAMPLE_EXPECTED_CLASS */
#include "tpr_runtime.h"
#ifdef TP_NO_SEMIHOSTING
#include "uart.h"
#else
#include "semihost.h"
#endif

#ifndef MODEL_TPR_ARENA_BYTES
#error "the tinyprune runtime cannot run this model (model_io.h has no MODEL_TPR_ARENA_BYTES): run `tinyprune inspect MODEL.tflite`"
#endif

/* the smallest arena; MODEL_TPR_ARENA_BYTES_FAST (if the RAM is there) keeps the multipliers in
 * it for faster invokes, with the same outputs */
static uint8_t arena[MODEL_TPR_ARENA_BYTES] __attribute__((aligned(16)));
static tpr_model_t model;

static void out_str(const char *s)
{
#ifdef TP_NO_SEMIHOSTING
    tp_uart_puts(s);
#else
    tp_sh_puts(s);
#endif
}

static void out_int(int32_t v)
{
    char buf[12];
    int i = 11;
    uint32_t u = v < 0 ? (uint32_t)(-(v + 1)) + 1u : (uint32_t)v;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0u);
    if (v < 0) {
        buf[--i] = '-';
    }
    out_str(&buf[i]);
}

static int fail(const char *what, tpr_status_t s, int code)
{
    out_str("tinyprune minimal: ");
    out_str(what);
    out_str(" failed: ");
    out_str(tpr_status_str(s));
    out_str("\n");
    return code;
}

/* Index of the largest output value (the first on ties), and that value as an integer. */
static int32_t top_class(const tpr_io_t *out, int32_t *score)
{
    int32_t best = 0;
    uint32_t i;
#ifdef MODEL_OUTPUT0_TYPE_FLOAT32
    const float *v = (const float *)out->data;
    for (i = 1; i < out->bytes / sizeof(float); i++) {
        if (v[i] > v[best]) {
            best = (int32_t)i;
        }
    }
    *score = (int32_t)(v[best] * 1000.0f); /* in thousandths */
#else
    const int8_t *v = (const int8_t *)out->data;
    for (i = 1; i < out->bytes; i++) {
        if (v[i] > v[best]) {
            best = (int32_t)i;
        }
    }
    *score = v[best];
#endif
    return best;
}

int main(void)
{
    tpr_io_t in, out;
    tpr_status_t s;
    int32_t top, score;

#ifdef TP_NO_SEMIHOSTING
    tp_uart_init();
#endif
    s = tpr_init(&model, g_model_data, g_model_data_len, arena, sizeof arena);
    if (s != TPR_OK) {
        return fail("tpr_init", s, 2);
    }
    if ((s = tpr_input(&model, 0, &in)) != TPR_OK || (s = tpr_output(&model, 0, &out)) != TPR_OK) {
        return fail("tpr_input/tpr_output", s, 2);
    }
    if (in.bytes != sizeof g_sample_input) {
        out_str("tinyprune minimal: sample_input.h does not match the model's input size\n");
        return 2;
    }
    memcpy(in.data, g_sample_input, in.bytes);
    s = tpr_invoke(&model);
    if (s != TPR_OK) {
        return fail("tpr_invoke", s, 4);
    }
    top = top_class(&out, &score);

    out_str("tinyprune minimal: model ");
    out_int((int32_t)g_model_data_len);
    out_str(" bytes, arena ");
    out_int((int32_t)sizeof arena);
    out_str(" bytes\ntop class: ");
    out_int(top);
    out_str(" (score ");
    out_int(score);
    out_str(")\nexpected class: ");
    if (SAMPLE_EXPECTED_CLASS >= 0) {
        out_int(SAMPLE_EXPECTED_CLASS);
    } else {
        out_str("unknown");
    }
    out_str("\n");
    return 0;
}
