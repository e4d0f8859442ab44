# tinyprune: build a tinyprune deploy directory into a Make-based firmware project.
#
#   TINYPRUNE_DEPLOY_DIR := path/to/deploy
#   include path/to/tinyprune/firmware/make/tinyprune.mk
#
# then compile $(TINYPRUNE_SOURCES) with $(TINYPRUNE_CFLAGS) and link with $(TINYPRUNE_LDFLAGS)
# (firmware/examples/minimal/Makefile does exactly that). model_data.cc is valid C: compile it as
# C (`-x c`), no C++ compiler needed.
#
# In:
#   TINYPRUNE_DEPLOY_DIR  what `tinyprune arrays MODEL.tflite --out DIR` (the model part) and
#                         `tinyprune deploy` (model + board/) write; required
#   TINYPRUNE_DIR         the tinyprune checkout; default: the one this file is in
# Out:
#   TINYPRUNE_SOURCES     TINYPRUNE_MODEL_SOURCES + TINYPRUNE_BOARD_SOURCES (absolute paths)
#   TINYPRUNE_CFLAGS      TINYPRUNE_MODEL_CFLAGS + TINYPRUNE_BOARD_CFLAGS
#   TINYPRUNE_LDFLAGS     the core's flags, newlib-nano, the board's linker script, --gc-sections
#   TINYPRUNE_MODEL_*     the micro runtime + model array, include dirs, the model's operators only
#   TINYPRUNE_BOARD_*     when DIR/board/board.mk exists: startup code, semihosting and UART console
#                         (firmware/common), core flags, defines, linker script, and the facts of
#                         board.mk (TINYPRUNE_BOARD_QEMU_MACHINE, ...). Projects with their own
#                         startup code and linker script use only the TINYPRUNE_MODEL_* part.

ifndef TINYPRUNE_DIR
TINYPRUNE_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../..)
endif
ifndef TINYPRUNE_DEPLOY_DIR
$(error TINYPRUNE_DEPLOY_DIR is not set: point it at the directory `tinyprune arrays MODEL.tflite --out DIR` wrote)
endif
_tp_deploy := $(abspath $(TINYPRUNE_DEPLOY_DIR))
_tp_runtime := $(TINYPRUNE_DIR)/firmware/runtime
_tp_common := $(TINYPRUNE_DIR)/firmware/common
ifeq ($(wildcard $(_tp_deploy)/model_data.cc $(_tp_deploy)/model_ops.h),)
$(error $(_tp_deploy) holds no model_data.cc/model_ops.h: write them with `tinyprune arrays MODEL.tflite --out $(_tp_deploy)`)
endif
ifeq ($(wildcard $(_tp_runtime)/tpr_runtime.h),)
$(error TINYPRUNE_DIR=$(TINYPRUNE_DIR) is not a tinyprune checkout (no firmware/runtime/tpr_runtime.h))
endif

# Only the operators the model uses: tpr_ops.h when it is there, else model_ops.h's TPR_OP_ lines.
ifneq ($(wildcard $(_tp_deploy)/tpr_ops.h),)
_tp_ops := -DTPR_USE_OPS_HEADER=1
else
_tp_ops := -DTPR_OPS_SELECTED=1 $(shell sed -n 's/^.define \(TPR_OP_[A-Z0-9_]*\) 1$$/-D\1=1/p' $(_tp_deploy)/model_ops.h)
endif

TINYPRUNE_MODEL_SOURCES := $(sort $(wildcard $(_tp_runtime)/*.c)) $(sort $(wildcard $(_tp_runtime)/kernels/*.c)) \
	$(_tp_deploy)/model_data.cc
TINYPRUNE_MODEL_CFLAGS := -I$(_tp_deploy) -I$(_tp_runtime) -I$(_tp_runtime)/kernels $(_tp_ops) \
	-ffunction-sections -fdata-sections

TINYPRUNE_BOARD_SOURCES :=
TINYPRUNE_BOARD_CFLAGS :=
TINYPRUNE_BOARD_LDFLAGS :=
ifneq ($(wildcard $(_tp_deploy)/board/board.mk),)
include $(_tp_deploy)/board/board.mk
TINYPRUNE_BOARD_SOURCES := $(_tp_common)/startup.c $(_tp_common)/semihost.c $(_tp_common)/uart.c
TINYPRUNE_BOARD_CFLAGS := $(TINYPRUNE_BOARD_CPU_FLAGS) $(TINYPRUNE_BOARD_DEFINES) -I$(_tp_common)
# tinyprune's reset handler (no crt0); newlib-nano with stub system calls (the console is
# semihost.h or uart.h, not libc I/O).
TINYPRUNE_BOARD_LDFLAGS := $(TINYPRUNE_BOARD_CPU_FLAGS) -nostartfiles --specs=nano.specs --specs=nosys.specs \
	-T$(TINYPRUNE_BOARD_LINKER_SCRIPT) -Wl,--gc-sections
endif

TINYPRUNE_SOURCES := $(TINYPRUNE_MODEL_SOURCES) $(TINYPRUNE_BOARD_SOURCES)
TINYPRUNE_CFLAGS := $(TINYPRUNE_MODEL_CFLAGS) $(TINYPRUNE_BOARD_CFLAGS)
TINYPRUNE_LDFLAGS := $(TINYPRUNE_BOARD_LDFLAGS)
