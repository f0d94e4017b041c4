# cuda_emu.cmake: imagerate_cuda_emu.node, the CUDA addon built with g++ against the CPU
# emulator (native/harness/emu/) instead of nvcc and the CUDA runtime: the same glue
# (native/cuda_*.cc) and the same kernel sources (kernels/cuda/*, through transform.py's
# mechanical edits), run on the CPU with every thread a fiber. It exists to run the project's
# op, gradient and model tests with --backend cuda on a machine without a GPU:
#   npx cmake-js compile --out build-cuda-emu --CDIMAGERATE_CUDA=OFF --CDIMAGERATE_CUDA_EMU=ON --target imagerate_cuda_emu
#   IMAGERATE_CUDA_ADDON=build-cuda-emu/Release/imagerate_cuda_emu.node IMAGERATE_TEST_BACKENDS=cuda npx vitest run ...
# It is slow (a 256-thread block is 256 fiber switches per barrier) and it times nothing: the
# benchmark commands refuse it. What it checks and what it cannot: native/harness/emu/emu.h.
get_filename_component(IMAGERATE_EMU_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(IMAGERATE_EMU_DIR ${IMAGERATE_EMU_ROOT}/native/harness/emu)
set(IMAGERATE_EMU_GEN ${CMAKE_CURRENT_BINARY_DIR}/cuda_emu_gen)

find_package(Python3 REQUIRED COMPONENTS Interpreter)
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

file(GLOB IMAGERATE_EMU_GLUE CONFIGURE_DEPENDS ${IMAGERATE_EMU_ROOT}/native/cuda_*.cc)
add_library(imagerate_cuda_emu SHARED
  ${IMAGERATE_EMU_GLUE} ${IMAGERATE_EMU_KERNELS} ${IMAGERATE_SHARED_GLUE}
  ${IMAGERATE_EMU_DIR}/emu_runtime.cc ${IMAGERATE_EMU_DIR}/emu_memory.cc ${IMAGERATE_EMU_DIR}/emu_api.cc ${CMAKE_JS_SRC})
set_target_properties(imagerate_cuda_emu PROPERTIES PREFIX "" SUFFIX ".node")
# The emulator's cuda_runtime*.h come first, so every #include <cuda_runtime_api.h> finds them.
target_include_directories(imagerate_cuda_emu BEFORE PRIVATE ${IMAGERATE_EMU_DIR}/include ${IMAGERATE_EMU_GEN})
target_include_directories(imagerate_cuda_emu PRIVATE ${CMAKE_JS_INC} ${IMAGERATE_EMU_ROOT}/native ${IMAGERATE_EMU_DIR})
target_compile_definitions(imagerate_cuda_emu PRIVATE
  NAPI_VERSION=8 NAPI_CPP_EXCEPTIONS NODE_ADDON_API_CPP_EXCEPTIONS_ALL IMAGERATE_BUILT_BY_CMAKE=1
  IMAGERATE_CUDA_EMULATED=1 __CUDA_ARCH__=900)
target_compile_options(imagerate_cuda_emu PRIVATE -Wall -Wno-unused-parameter -Wno-unused-function
  -Wno-unknown-pragmas -Wno-maybe-uninitialized -O2 -g)
target_link_libraries(imagerate_cuda_emu PRIVATE Threads::Threads ${CMAKE_DL_LIBS} ${CMAKE_JS_LIB})
# IMAGERATE_SANITIZE=address,undefined: the glue and the emulated kernels under ASan/UBSan
# (the fiber switches are announced to ASan, emu_runtime.cc); run node as for the CPU addon.
if(IMAGERATE_SANITIZE)
  target_compile_options(imagerate_cuda_emu PRIVATE -fsanitize=${IMAGERATE_SANITIZE} -fno-omit-frame-pointer)
  target_link_options(imagerate_cuda_emu PRIVATE -fsanitize=${IMAGERATE_SANITIZE})
endif()
if(IMAGERATE_LINK_CHECK AND IMAGERATE_NODE AND NOT IMAGERATE_SANITIZE)
  add_custom_command(TARGET imagerate_cuda_emu POST_BUILD
    COMMAND ${IMAGERATE_NODE} -e "const os=require('os');const f=process.argv[1];try{process.dlopen({exports:{}},f,os.constants.dlopen.RTLD_NOW)}catch(e){console.error('imagerate: '+f+' does not load: '+e.message);process.exit(1)}" $<TARGET_FILE:imagerate_cuda_emu>
    VERBATIM)
endif()
message(STATUS "imagerate: building imagerate_cuda_emu (the CUDA addon on the CPU emulator; correctness only)")
