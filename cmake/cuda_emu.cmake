# cuda_emu.cmake: the CUDA kernels (kernels/cuda/*, through transform.py's mechanical edits)
# built with g++ against the CPU emulator (native/harness/emu/) instead of nvcc and the CUDA
# runtime, run on the CPU with every thread a fiber. One description of that build, for two
# programs, each from its own entry point:
#   imagerate_cuda_emu.node (target imagerate_cuda_emu): the CUDA addon, with the same glue
#     (native/cuda_*.cc), to run the project's op, gradient and model tests with --backend cuda
#     on a machine without a GPU. From the top-level CMakeLists.txt (IMAGERATE_CUDA_EMU=ON),
#     through cmake-js for the Node-API headers; scripts/cuda-emu-tests.sh does both steps:
#       npx cmake-js compile --out build-cuda-emu --CDIMAGERATE_CUDA=OFF --CDIMAGERATE_CUDA_EMU=ON --target imagerate_cuda_emu
#       IMAGERATE_CUDA_ADDON=build-cuda-emu/Release/imagerate_cuda_emu.node IMAGERATE_TEST_BACKENDS=cuda npx vitest run ...
#   imagerate_cuda_emu (target imagerate_cuda_emu_harness): the CUDA harness's checks (GEMM,
#     conv and the other ops: native/harness/validate_*.cc, against the CPU kernels), run by
#     emu_main.cc. From native/harness/emu/CMakeLists.txt, a standalone project needing only
#     cmake and g++ (no Node.js); native/harness/emu/build.sh does both steps:
#       cmake -S native/harness/emu -B build-emu && cmake --build build-emu --parallel 2
#       EMU_ORDER=shuffle build-emu/imagerate_cuda_emu --quick
# Shared: the transform.py step, the OBJECT library imagerate_cuda_emu_kernels (the transformed
# kernels and the emulator's runtime, linked into both), and imagerate_cuda_emu_compile() (the
# include order, flags and IMAGERATE_SANITIZE of every source either program compiles).
# It is slow (a 256-thread block is 256 fiber switches per barrier) and it times nothing: the
# benchmark commands refuse it. What it checks and what it cannot: native/harness/emu/emu.h.
get_filename_component(IMAGERATE_EMU_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(IMAGERATE_EMU_DIR ${IMAGERATE_EMU_ROOT}/native/harness/emu)
set(IMAGERATE_EMU_GEN ${CMAKE_CURRENT_BINARY_DIR}/cuda_emu_gen)

find_package(Python3 REQUIRED COMPONENTS Interpreter)
find_package(Threads REQUIRED)

# ------------------------------------------------------------------ shared by both programs
# Every source built for the emulator: the emulator's cuda_runtime*.h come first, so every
# #include <cuda_runtime_api.h> finds them, then the transformed kernels (kernels.cuh and the
# other headers of kernels/cuda come from there too). IMAGERATE_SANITIZE=address,undefined:
# ASan/UBSan (the fiber switches are announced to ASan, emu_runtime.cc).
# An optional second argument replaces the optimisation level -O2 (the CPU reference: -O3).
function(imagerate_cuda_emu_compile target)
  set(opt -O2)
  if(ARGC GREATER 1)
    set(opt ${ARGV1})
  endif()
  target_include_directories(${target} BEFORE PRIVATE ${IMAGERATE_EMU_DIR}/include ${IMAGERATE_EMU_GEN})
  target_include_directories(${target} PRIVATE ${IMAGERATE_EMU_DIR})
  target_compile_options(${target} PRIVATE -Wall -Wno-unused-parameter -Wno-unused-function
    -Wno-unknown-pragmas -Wno-maybe-uninitialized ${opt} -g)
  if(IMAGERATE_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${IMAGERATE_SANITIZE} -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${IMAGERATE_SANITIZE})
  endif()
endfunction()

file(GLOB IMAGERATE_EMU_KERNEL_INPUTS CONFIGURE_DEPENDS
  ${IMAGERATE_EMU_ROOT}/kernels/cuda/*.cu ${IMAGERATE_EMU_ROOT}/kernels/cuda/*.cuh ${IMAGERATE_EMU_ROOT}/kernels/cuda/*.h)
set(IMAGERATE_EMU_KERNELS "")
set(IMAGERATE_EMU_OUTPUTS "")
foreach(src IN LISTS IMAGERATE_EMU_KERNEL_INPUTS)
  get_filename_component(name ${src} NAME)
  list(APPEND IMAGERATE_EMU_OUTPUTS ${IMAGERATE_EMU_GEN}/${name})
  if(name MATCHES "\\.cu$")
    list(APPEND IMAGERATE_EMU_KERNELS ${IMAGERATE_EMU_GEN}/${name})
  endif()
endforeach()
add_custom_command(OUTPUT ${IMAGERATE_EMU_OUTPUTS}
  COMMAND ${Python3_EXECUTABLE} ${IMAGERATE_EMU_DIR}/transform.py ${IMAGERATE_EMU_ROOT}/kernels/cuda ${IMAGERATE_EMU_GEN}
  DEPENDS ${IMAGERATE_EMU_KERNEL_INPUTS} ${IMAGERATE_EMU_DIR}/transform.py
  COMMENT "imagerate: kernels/cuda -> emulator sources (transform.py)"
  VERBATIM)
# g++ does not know the .cu suffix: compile the generated kernels as C++.
set_source_files_properties(${IMAGERATE_EMU_KERNELS} PROPERTIES GENERATED ON LANGUAGE CXX COMPILE_OPTIONS "-xc++")

# The kernels and the emulator's runtime (fibers, shared window, device memory, the CUDA runtime
# API, the wgmma, TMA/mbarrier and async-proxy models, the tensor-map encoder). Linking it also
# orders a target's compiles after the transform.py step, whose headers they include. The device code is compiled as sm_90a's (__CUDA_ARCH__ 900 with the arch-specific
# features, __CUDA_ARCH_FEAT_SM90_ALL: wgmma.cuh's instructions), and gemm.cu's host code is
# told that the build has sm_90a code (IMAGERATE_CUDA_SM90A, as cmake/cuda_arch.cmake does for
# a 90a nvcc build); the emulated device reports compute capability 9.0.
set(IMAGERATE_EMU_DEVICE_DEFS IMAGERATE_CUDA_EMULATED=1 __CUDA_ARCH__=900 __CUDA_ARCH_FEAT_SM90_ALL IMAGERATE_CUDA_SM90A=1)
add_library(imagerate_cuda_emu_kernels OBJECT ${IMAGERATE_EMU_KERNELS}
  ${IMAGERATE_EMU_DIR}/emu_runtime.cc ${IMAGERATE_EMU_DIR}/emu_shared.cc ${IMAGERATE_EMU_DIR}/emu_memory.cc
  ${IMAGERATE_EMU_DIR}/emu_api.cc ${IMAGERATE_EMU_DIR}/emu_wgmma.cc ${IMAGERATE_EMU_DIR}/emu_tma.cc
  ${IMAGERATE_EMU_DIR}/emu_tensormap.cc ${IMAGERATE_EMU_DIR}/emu_proxy.cc)
imagerate_cuda_emu_compile(imagerate_cuda_emu_kernels)
target_compile_definitions(imagerate_cuda_emu_kernels PRIVATE ${IMAGERATE_EMU_DEVICE_DEFS})
target_link_libraries(imagerate_cuda_emu_kernels PUBLIC Threads::Threads)

# ------------------------------------------------------------------ the two programs
# The top-level build (cmake-js, which provides the Node-API headers: CMAKE_JS_INC) builds the
# addon, native/harness/emu/CMakeLists.txt the harness; never both in one build directory, where
# the harness's file imagerate_cuda_emu would shadow the addon's target name for ninja.
if(CMAKE_JS_INC)
  # The addon: the CUDA glue and the shared glue of the top-level build, Node-API.
  file(GLOB IMAGERATE_EMU_GLUE CONFIGURE_DEPENDS ${IMAGERATE_EMU_ROOT}/native/cuda_*.cc)
  add_library(imagerate_cuda_emu SHARED ${IMAGERATE_EMU_GLUE} ${IMAGERATE_SHARED_GLUE} ${CMAKE_JS_SRC})
  set_target_properties(imagerate_cuda_emu PROPERTIES PREFIX "" SUFFIX ".node")
  imagerate_cuda_emu_compile(imagerate_cuda_emu)
  target_include_directories(imagerate_cuda_emu PRIVATE ${CMAKE_JS_INC} ${IMAGERATE_EMU_ROOT}/native)
  target_compile_definitions(imagerate_cuda_emu PRIVATE
    NAPI_VERSION=8 NAPI_CPP_EXCEPTIONS NODE_ADDON_API_CPP_EXCEPTIONS_ALL IMAGERATE_BUILT_BY_CMAKE=1
    IMAGERATE_CUDA_EMULATED=1)
  target_link_libraries(imagerate_cuda_emu PRIVATE imagerate_cuda_emu_kernels Threads::Threads ${CMAKE_DL_LIBS} ${CMAKE_JS_LIB})
  imagerate_load_check(imagerate_cuda_emu "an emulator entry point or kernel missing?" "${IMAGERATE_SANITIZE}")
  message(STATUS "imagerate: building imagerate_cuda_emu (the CUDA addon on the CPU emulator; correctness only)")
else()
  # The harness's checks against the CPU kernels (the reference, cpu_reference.cmake). emu_main.cc
  # runs them: cuda_harness.cc's main() is renamed. The model self-tests (emu_selftest*.cc:
  # --selftest-wgmma, --selftest-tma) are compiled as device code, like the kernels.
  include(${CMAKE_CURRENT_LIST_DIR}/cpu_reference.cmake)
  imagerate_cpu_reference(imagerate_cuda_emu_cpu_ref ${IMAGERATE_EMU_ROOT})
  imagerate_cuda_emu_compile(imagerate_cuda_emu_cpu_ref -O3)

  set(IMAGERATE_EMU_HARNESS ${IMAGERATE_EMU_ROOT}/native/harness)
  set_source_files_properties(${IMAGERATE_EMU_HARNESS}/cuda_harness.cc PROPERTIES COMPILE_DEFINITIONS main=harness_main_not_used)
  set(IMAGERATE_EMU_SELFTESTS ${IMAGERATE_EMU_DIR}/emu_selftest.cc ${IMAGERATE_EMU_DIR}/emu_selftest_tma.cc
    ${IMAGERATE_EMU_DIR}/emu_selftest_tma_pipe.cc ${IMAGERATE_EMU_DIR}/emu_selftest_tma_faults.cc)
  set_source_files_properties(${IMAGERATE_EMU_SELFTESTS} PROPERTIES COMPILE_DEFINITIONS "${IMAGERATE_EMU_DEVICE_DEFS}")
  add_executable(imagerate_cuda_emu_harness ${IMAGERATE_EMU_DIR}/emu_main.cc ${IMAGERATE_EMU_SELFTESTS}
    ${IMAGERATE_EMU_HARNESS}/cuda_harness.cc
    ${IMAGERATE_EMU_HARNESS}/validate_gemm.cc ${IMAGERATE_EMU_HARNESS}/validate_conv.cc ${IMAGERATE_EMU_HARNESS}/validate_ops.cc)
  set_target_properties(imagerate_cuda_emu_harness PROPERTIES OUTPUT_NAME imagerate_cuda_emu)
  imagerate_cuda_emu_compile(imagerate_cuda_emu_harness)
  target_include_directories(imagerate_cuda_emu_harness PRIVATE ${IMAGERATE_EMU_HARNESS})
  target_link_libraries(imagerate_cuda_emu_harness PRIVATE imagerate_cuda_emu_kernels imagerate_cuda_emu_cpu_ref Threads::Threads)
  message(STATUS "imagerate: building imagerate_cuda_emu_harness (the CUDA harness's checks on the CPU emulator)")
endif()
