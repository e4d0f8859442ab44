# CMake toolchain file for bare-metal Arm Cortex-M with the GNU Arm toolchain (arm-none-eabi-gcc)
# and newlib, as tinyprune builds its own firmware:
#
#   cmake -S . -B build -DCMAKE_TOOLCHAIN_FILE=<tinyprune>/firmware/cmake/arm-none-eabi.cmake
#
# Only the compiler is chosen here; the core's flags (-mcpu, -mfpu, -mfloat-abi), the linker
# script and the C library specs come per board from tinyprune_add_board() (tinyprune.cmake).
# Set TINYPRUNE_TOOLCHAIN_PREFIX for a toolchain that is not on PATH, e.g.
# -DTINYPRUNE_TOOLCHAIN_PREFIX=/opt/arm-gnu-toolchain/bin/arm-none-eabi-
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

if(NOT DEFINED TINYPRUNE_TOOLCHAIN_PREFIX)
  set(TINYPRUNE_TOOLCHAIN_PREFIX "arm-none-eabi-")
endif()
# try_compile projects read this file again: hand them the prefix.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES TINYPRUNE_TOOLCHAIN_PREFIX)

set(CMAKE_C_COMPILER "${TINYPRUNE_TOOLCHAIN_PREFIX}gcc")
set(CMAKE_CXX_COMPILER "${TINYPRUNE_TOOLCHAIN_PREFIX}g++")
set(CMAKE_ASM_COMPILER "${TINYPRUNE_TOOLCHAIN_PREFIX}gcc")

# A bare-metal executable cannot link without a linker script and startup code, so CMake's
# compiler checks build a static library instead.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_EXECUTABLE_SUFFIX ".elf")
set(CMAKE_EXECUTABLE_SUFFIX_C ".elf")
set(CMAKE_EXECUTABLE_SUFFIX_CXX ".elf")

# Headers and libraries come from the toolchain's own sysroot (newlib), programs from the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
