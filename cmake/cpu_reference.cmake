# cpu_reference.cmake: imagerate_cpu_reference(TARGET ROOT), the CPU kernels (ROOT/kernels/cpu/*.cc)
# as a static library, the reference the CUDA harness checks every kernel against. Shared by the
# harness built with nvcc (cuda_harness.cmake) and the one on the CPU emulator (cuda_emu.cmake).
# The *_avx2.cc files, chosen at run time by the CPU's features, get -mavx2 -mfma; Release
# builds get -O3, as the CPU addon does.
function(imagerate_cpu_reference target root)
  find_package(Threads REQUIRED)
  file(GLOB sources CONFIGURE_DEPENDS ${root}/kernels/cpu/*.cc)
  foreach(src IN LISTS sources)
    if(src MATCHES "_avx2\\.cc$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
    endif()
  endforeach()
  add_library(${target} STATIC ${sources})
  target_include_directories(${target} PUBLIC ${root}/kernels/cpu)
  target_compile_options(${target} PRIVATE $<$<CONFIG:Release>:-O3>)
  target_link_libraries(${target} PUBLIC Threads::Threads)
endfunction()
