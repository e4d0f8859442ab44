/* Build-time configuration of the micro runtime. Every setting can be overridden with -D.
 *
 * Operator selection: by default every operator is built. A per-model build defines
 * TPR_OPS_SELECTED and then TPR_OP_<NAME>=1 for each operator the model uses, either on the
 * command line or in a generated header `tpr_ops.h` picked up with -DTPR_USE_OPS_HEADER
 * (tinyprune.runtime.ops_header() writes it). Unused kernels are then not compiled at all.
 */
#ifndef TPR_CONFIG_H
#define TPR_CONFIG_H

#ifdef TPR_USE_OPS_HEADER
#include "tpr_ops.h"
#endif

/* Size first. The files whose speed shows in no figure (tpr_init's checks and arena plan, I/O, the
 * fixed-point helpers of the activations, and every operator but CONV_2D, DEPTHWISE_CONV_2D,
 * FULLY_CONNECTED and ADD: their work is linear in their tensors) define TPR_COLD_FILE before
 * their first include, and are compiled for size in a speed-optimized GCC build too (GCC's
 * optimize pragma): -O2 then spends flash only where it buys speed (in the fast files, the
 * per-layer and per-row code is TPR_COLD or TPR_SIZE_OPT, below). The model reader
 * (tpr_reader.c, tpr_flatbuf.c) runs once per operator and invoke: compiled for size too, it
 * costs about 1 % of fc-autoencoder's -O2 time and 0.2 % of ds-cnn's for 0.55 KB. The
 * per-channel multipliers (tpr_mult_channel, on every invoke in the smallest arena) keep the
 * command line's level. TPR_COLD_FOR_SIZE=0
 * compiles every file at that level. TPR_SMALL: this file's code is compiled for size (its
 * source picks the compact variants). */
#ifndef TPR_COLD_FOR_SIZE
#define TPR_COLD_FOR_SIZE 1
#endif
/* TPR_FAST_KERNELS=1: in a size-optimized build (-Os) the convolution, depthwise and ADD kernels
 * (the files defining TPR_HOT_FILE) keep the fast variants of a speed-optimized one, compiled for
 * size: on Cortex-M4 ds-cnn 2.3 instructions per MAC instead of 3.6 (-O2: 2.25) for 2.3 KB more
 * code (`tinyprune build --optimize balanced`). */
#ifndef TPR_FAST_KERNELS
#define TPR_FAST_KERNELS 0
#endif
#if defined(__OPTIMIZE_SIZE__) && TPR_FAST_KERNELS && defined(TPR_HOT_FILE)
#define TPR_SMALL 0
#elif defined(__OPTIMIZE_SIZE__)
#define TPR_SMALL 1
#elif defined(TPR_COLD_FILE) && TPR_COLD_FOR_SIZE && defined(__OPTIMIZE__) && defined(__GNUC__) && \
    !defined(__clang__)
#pragma GCC optimize("Os")
#define TPR_SMALL 1
#else
#define TPR_SMALL 0
#endif
/* A function of a speed-optimized file that runs once per operator and invoke, or only on a rare
 * path: compiled for size too (and placed with the cold code). GCC treats a static function that
 * only TPR_COLD functions call as cold as well: no loop over the tensors may hide there (which is
 * why tpr_k_depthwise_conv_2d, holding the inlined depthwise loops, is not marked). */
#if TPR_COLD_FOR_SIZE && defined(__GNUC__)
#define TPR_COLD __attribute__((cold))
#else
#define TPR_COLD
#endif

/* A function of a speed-optimized file whose work is per layer or per row of outputs, not per
 * output: compiled for size like TPR_COLD, but without GCC's cold semantics (a static function
 * that only cold functions call is cold too), so the loops it calls keep the command line's
 * level. GCC only; see TPR_COLD_FOR_SIZE. */
#if TPR_COLD_FOR_SIZE && defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__) && \
    !defined(__OPTIMIZE_SIZE__)
#define TPR_SIZE_OPT __attribute__((optimize("Os")))
#else
#define TPR_SIZE_OPT
#endif

/* Highest tensor rank the runtime handles (TFLite Micro's RuntimeShape keeps 6 inline). */
#ifndef TPR_MAX_DIMS
#define TPR_MAX_DIMS 6
#endif

/* Longest filter window (kernel rows x columns x input channels, bytes) whose weights the 2x2
 * blocks of CONV_2D widen once per pair of output channels, on the stack (TPR_WIDE_MAX x 4 bytes):
 * 144 takes 3x3 windows of 16 channels. On resnet8 (Cortex-M4, -O2) 144 gives 1.93 instructions
 * per MAC and about 2.2 KB of stack in all, 288 1.82 and 2.7 KB, 576 1.77 and 3.8 KB. A multiple
 * of 4; DSP cores, -O1 and up. */
#ifndef TPR_WIDE_MAX
#define TPR_WIDE_MAX 144
#endif
/* Alignment of every planned tensor in the arena (4 is enough for the portable kernels; SIMD
 * kernels may want 8 or 16). */
#ifndef TPR_ARENA_ALIGN
#define TPR_ARENA_ALIGN 4
#endif
/* TPR_MULT_CACHE=1: given an arena of arena_fast bytes, tpr_invoke reads the convolutions'
 * per-channel multipliers from it (computed once by tpr_init) instead of computing them again on
 * every invoke (tpr_runtime.h, "Arena layout"). 0: always computed (about 100 bytes less code). */
#ifndef TPR_MULT_CACHE
#define TPR_MULT_CACHE 1
#endif

/* TPR_PROFILE=1: tpr_model_t gets op_hook (tpr_runtime.h), which tpr_invoke calls at every
 * operator boundary, for per-operator timing (`tinyprune verify --profile`). Changes tpr_model_t,
 * like TPR_ERROR_DETAIL. 0 (default): no hook, no code. */
#ifndef TPR_PROFILE
#define TPR_PROFILE 0
#endif

/* Detail messages naming the operator, tensor and field of an error, and operator names. On by
 * default for host builds, off for firmware (saves ~3 KB of flash and the message buffer). */
#ifndef TPR_ERROR_DETAIL
#if defined(__arm__) || defined(__thumb__)
#define TPR_ERROR_DETAIL 0
#else
#define TPR_ERROR_DETAIL 1
#endif
#endif
#ifndef TPR_DETAIL_BYTES
#define TPR_DETAIL_BYTES 160
#endif

/* TFLite's rounding mode for MultiplyByQuantizedMultiplier: 0 = double rounding (gemmlowp
 * SaturatingRoundingDoublingHighMul then RoundingDivideByPOT, TFLite's default), 1 = single
 * rounding (TFLITE_SINGLE_ROUNDING). Must match the TFLite Micro build being compared against;
 * the tests check which mode the installed tflite_micro uses. */
#ifndef TPR_SINGLE_ROUNDING
#define TPR_SINGLE_ROUNDING 0
#endif

/* Limits: counts above these are rejected (TPR_ERR_LIMIT). They keep the planner's 16-bit
 * lifetimes valid and bound tpr_init's time on hostile models (the planner is O(tensors^2)). */
#ifndef TPR_MAX_OPS
#define TPR_MAX_OPS 4096u
#endif
#ifndef TPR_MAX_TENSORS
#define TPR_MAX_TENSORS 8192u
#endif

/* The operators: name, builtin code, highest operator version implemented. Versions follow
 * TFLite's tools/versioning/op_version.cc; versions that only add types the runtime does not
 * support (int16, int4, hybrid) are accepted and then rejected by the type checks. */
#define TPR_OP_LIST(X)                     \
    X(ADD, 0, 2)                           \
    X(AVERAGE_POOL_2D, 1, 2)               \
    X(CONCATENATION, 2, 2)                 \
    X(CONV_2D, 3, 6)                       \
    X(DEPTHWISE_CONV_2D, 4, 6)             \
    X(DEQUANTIZE, 6, 2)                    \
    X(FULLY_CONNECTED, 9, 6)               \
    X(LOGISTIC, 14, 2)                     \
    X(MAX_POOL_2D, 17, 2)                  \
    X(MUL, 18, 3)                          \
    X(RESHAPE, 22, 1)                      \
    X(SOFTMAX, 25, 2)                      \
    X(TANH, 28, 2)                         \
    X(PAD, 34, 4)                          \
    X(MEAN, 40, 2)                         \
    X(SQUEEZE, 43, 1)                      \
    X(PADV2, 60, 4)                        \
    X(EXPAND_DIMS, 70, 1)                  \
    X(QUANTIZE, 114, 1)                    \
    X(HARD_SWISH, 117, 1)

#ifdef TPR_OPS_SELECTED
#define TPR_OP_DEFAULT 0
#else
#define TPR_OP_DEFAULT 1
#endif

#ifndef TPR_OP_ADD
#define TPR_OP_ADD TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_AVERAGE_POOL_2D
#define TPR_OP_AVERAGE_POOL_2D TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_CONCATENATION
#define TPR_OP_CONCATENATION TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_CONV_2D
#define TPR_OP_CONV_2D TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_DEPTHWISE_CONV_2D
#define TPR_OP_DEPTHWISE_CONV_2D TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_DEQUANTIZE
#define TPR_OP_DEQUANTIZE TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_FULLY_CONNECTED
#define TPR_OP_FULLY_CONNECTED TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_LOGISTIC
#define TPR_OP_LOGISTIC TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_MAX_POOL_2D
#define TPR_OP_MAX_POOL_2D TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_MUL
#define TPR_OP_MUL TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_RESHAPE
#define TPR_OP_RESHAPE TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_SOFTMAX
#define TPR_OP_SOFTMAX TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_TANH
#define TPR_OP_TANH TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_PAD
#define TPR_OP_PAD TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_MEAN
#define TPR_OP_MEAN TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_SQUEEZE
#define TPR_OP_SQUEEZE TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_PADV2
#define TPR_OP_PADV2 TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_EXPAND_DIMS
#define TPR_OP_EXPAND_DIMS TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_QUANTIZE
#define TPR_OP_QUANTIZE TPR_OP_DEFAULT
#endif
#ifndef TPR_OP_HARD_SWISH
#define TPR_OP_HARD_SWISH TPR_OP_DEFAULT
#endif

#endif
