# tinyprune: build a tinyprune deploy directory into your own CMake firmware project.
#
#   include(<tinyprune>/firmware/cmake/tinyprune.cmake)
#   add_executable(app main.c)
#   tinyprune_add_model(app <deploy_dir>)   # the runtime, the model array, only the model's operators
#   tinyprune_add_board(app <deploy_dir>)   # startup code, console, core flags, the board's linker script
#
# <deploy_dir> is what `tinyprune arrays MODEL.tflite --out DIR` (the model part) and
# `tinyprune deploy` (model + board/) write. Configure with the cross toolchain:
#   cmake -S . -B build -DCMAKE_TOOLCHAIN_FILE=<tinyprune>/firmware/cmake/arm-none-eabi.cmake
#
# Skip tinyprune_add_board() when your project has its own startup code and linker script: then
# compile everything with your core's flags, and link with --gc-sections.
# Other targets of yours that link into the same image need the core's flags too:
#   include(<deploy_dir>/board/board.cmake)
#   target_compile_options(mylib PRIVATE ${TINYPRUNE_BOARD_CPU_FLAGS})
include_guard(GLOBAL)
if(CMAKE_VERSION VERSION_LESS 3.20)
  message(FATAL_ERROR "tinyprune.cmake needs CMake 3.20 or newer (this is ${CMAKE_VERSION})")
endif()

# The checkout this file belongs to (a cache entry so that functions see it from any directory).
get_filename_component(_tinyprune_root "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
set(TINYPRUNE_DIR "${_tinyprune_root}" CACHE INTERNAL "the tinyprune checkout")
set(TINYPRUNE_RUNTIME_DIR "${TINYPRUNE_DIR}/firmware/runtime" CACHE INTERNAL "")
set(TINYPRUNE_COMMON_DIR "${TINYPRUNE_DIR}/firmware/common" CACHE INTERNAL "")

# An absolute deploy directory, checked to hold `files`.
function(_tinyprune_deploy_dir out dir)
  get_filename_component(abs "${dir}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  foreach(f IN LISTS ARGN)
    if(NOT EXISTS "${abs}/${f}")
      message(FATAL_ERROR "tinyprune: ${abs}/${f} does not exist.\n"
        "  The model files come from `tinyprune arrays MODEL.tflite --out ${abs}`, "
        "board/ from `tinyprune deploy` (or tinyprune.integration.write_integration_files).")
    endif()
  endforeach()
  set(${out} "${abs}" PARENT_SCOPE)
endfunction()

# tinyprune_add_model(<target> <deploy_dir>): compile the micro runtime and the model array into
# <target>. model_data.cc is valid C, and is compiled as C: no C++ compiler needed. Only the
# operators the model uses are built: from <deploy_dir>/tpr_ops.h when it is there
# (TPR_USE_OPS_HEADER), else from the TPR_OP_<NAME> lines of model_ops.h.
function(tinyprune_add_model target deploy_dir)
  _tinyprune_deploy_dir(deploy "${deploy_dir}" model_data.cc model_data.h model_io.h model_ops.h)
  file(GLOB runtime_sources CONFIGURE_DEPENDS
    "${TINYPRUNE_RUNTIME_DIR}/*.c" "${TINYPRUNE_RUNTIME_DIR}/kernels/*.c")
  list(SORT runtime_sources)
  target_sources(${target} PRIVATE ${runtime_sources} "${deploy}/model_data.cc")
  set_source_files_properties("${deploy}/model_data.cc" TARGET_DIRECTORY ${target} PROPERTIES LANGUAGE C)
  target_include_directories(${target} PUBLIC
    "${deploy}" "${TINYPRUNE_RUNTIME_DIR}" "${TINYPRUNE_RUNTIME_DIR}/kernels")
  if(EXISTS "${deploy}/tpr_ops.h")
    target_compile_definitions(${target} PUBLIC TPR_USE_OPS_HEADER=1)
  else()
    file(STRINGS "${deploy}/model_ops.h" op_lines REGEX "^#define TPR_OP_[A-Z0-9_]+ 1$")
    set(op_defines TPR_OPS_SELECTED=1)
    foreach(line IN LISTS op_lines)
      string(REGEX REPLACE "^#define (TPR_OP_[A-Z0-9_]+) 1$" "\\1=1" def "${line}")
      list(APPEND op_defines "${def}")
    endforeach()
    target_compile_definitions(${target} PUBLIC ${op_defines})
    # A regenerated model may use other operators: configure again when model_ops.h changes.
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${deploy}/model_ops.h")
  endif()
  target_compile_options(${target} PRIVATE -ffunction-sections -fdata-sections)
endfunction()

# tinyprune_add_board(<target> <deploy_dir>): make <target> a firmware image for the board
# <deploy_dir>/board/ was generated for: tinyprune's vector table and reset handler, semihosting
# and UART console (firmware/common), the core's flags, the board's defines, the generated linker
# script (its regions are the board's budget, so an image that links is one that fits),
# --gc-sections and a map file beside the ELF (<target>.map).
# For the QEMU target it also adds `<target>_qemu`, which runs the image:
#   cmake --build build --target <target>_qemu
function(tinyprune_add_board target deploy_dir)
  _tinyprune_deploy_dir(deploy "${deploy_dir}" board/board.cmake board/linker.ld)
  include("${deploy}/board/board.cmake")
  set(common "${TINYPRUNE_COMMON_DIR}")
  target_sources(${target} PRIVATE "${common}/startup.c" "${common}/semihost.c" "${common}/uart.c")
  target_include_directories(${target} PRIVATE "${common}")
  target_compile_options(${target} PRIVATE ${TINYPRUNE_BOARD_CPU_FLAGS} -ffunction-sections -fdata-sections)
  target_compile_definitions(${target} PRIVATE ${TINYPRUNE_BOARD_DEFINES})
  # The reset handler is tinyprune's (no crt0); newlib-nano with stub system calls: the console
  # is firmware/common/semihost.h (QEMU) or uart.h (hardware), so no libc I/O is needed.
  target_link_options(${target} PRIVATE
    ${TINYPRUNE_BOARD_CPU_FLAGS} -nostartfiles --specs=nano.specs --specs=nosys.specs
    "-T${TINYPRUNE_BOARD_LINKER_SCRIPT}" -Wl,--gc-sections
    "-Wl,-Map=$<TARGET_FILE_DIR:${target}>/$<TARGET_FILE_BASE_NAME:${target}>.map")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${TINYPRUNE_BOARD_LINKER_SCRIPT}")
  set_target_properties(${target} PROPERTIES
    TINYPRUNE_BOARD "${TINYPRUNE_BOARD}" TINYPRUNE_BOARD_TARGET "${TINYPRUNE_BOARD_TARGET}"
    TINYPRUNE_QEMU_MACHINE "${TINYPRUNE_BOARD_QEMU_MACHINE}")
  if(TINYPRUNE_BOARD_SEMIHOSTING)
    find_program(TINYPRUNE_QEMU qemu-system-arm)
    if(TINYPRUNE_QEMU)
      add_custom_target(${target}_qemu
        COMMAND "${TINYPRUNE_QEMU}" -M ${TINYPRUNE_BOARD_QEMU_MACHINE} -nographic -monitor none
                -serial none -semihosting-config enable=on,target=native -kernel $<TARGET_FILE:${target}>
        DEPENDS ${target} USES_TERMINAL
        COMMENT "Running ${target} on QEMU ${TINYPRUNE_BOARD_QEMU_MACHINE} (${TINYPRUNE_BOARD})")
    endif()
  endif()
endfunction()
