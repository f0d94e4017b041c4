# cuda_harness.cmake: the standalone CUDA validation/timing program `imagerate_cuda_harness`
# (native/harness/*.cc), linked with the CUDA kernels (kernels/cuda/*.cu) and, as the reference,
# the CPU kernels (kernels/cpu/*.cc, as the static library imagerate_harness_cpu). No Node-API.
#
# Included in two ways, both with the CUDA language already enabled and CUDAToolkit found:
#   * from the top-level CMakeLists.txt, inside its CUDA section (cmake-js builds it with the
#     addons: build/Release/imagerate_cuda_harness or build/imagerate_cuda_harness);
#   * from native/harness/CMakeLists.txt, a standalone project for machines without Node:
#       cmake -S native/harness -B build-harness -DCMAKE_CUDA_ARCHITECTURES=90a && cmake --build build-harness -j
# Options: IMAGERATE_HARNESS_CUDA_ARCHITECTURES overrides the targets for the harness only
# (default: CMAKE_CUDA_ARCHITECTURES), e.g. "90a" for a quicker build on an H100 machine.
get_filename_component(IMAGERATE_HARNESS_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
find_package(Threads REQUIRED)

include(${CMAKE_CURRENT_LIST_DIR}/cpu_reference.cmake)
imagerate_cpu_reference(imagerate_harness_cpu ${IMAGERATE_HARNESS_ROOT})
target_compile_options(imagerate_harness_cpu PRIVATE -Wall -Wextra -Wno-unused-parameter)

file(GLOB IMAGERATE_HARNESS_CUDA_SOURCES CONFIGURE_DEPENDS ${IMAGERATE_HARNESS_ROOT}/kernels/cuda/*.cu)
file(GLOB IMAGERATE_HARNESS_SOURCES CONFIGURE_DEPENDS ${IMAGERATE_HARNESS_ROOT}/native/harness/*.cc)
add_executable(imagerate_cuda_harness ${IMAGERATE_HARNESS_SOURCES} ${IMAGERATE_HARNESS_CUDA_SOURCES})
target_include_directories(imagerate_cuda_harness PRIVATE
  ${IMAGERATE_HARNESS_ROOT}/kernels/cuda ${IMAGERATE_HARNESS_ROOT}/kernels/cpu ${IMAGERATE_HARNESS_ROOT}/native/harness)
set_target_properties(imagerate_cuda_harness PROPERTIES CUDA_RUNTIME_LIBRARY Static)
if(IMAGERATE_HARNESS_CUDA_ARCHITECTURES)
  set_target_properties(imagerate_cuda_harness PROPERTIES CUDA_ARCHITECTURES "${IMAGERATE_HARNESS_CUDA_ARCHITECTURES}")
endif()
include(${CMAKE_CURRENT_LIST_DIR}/cuda_arch.cmake)
imagerate_cuda_sm90a(imagerate_cuda_harness)
# -lineinfo: compute-sanitizer reports kernel source lines; it does not change the code.
target_compile_options(imagerate_cuda_harness PRIVATE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>
  $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo>)
target_link_libraries(imagerate_cuda_harness PRIVATE imagerate_harness_cpu CUDA::cudart_static Threads::Threads ${CMAKE_DL_LIBS})
message(STATUS "imagerate: building imagerate_cuda_harness")
