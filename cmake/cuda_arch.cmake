# cuda_arch.cmake: the kernels' wgmma main loop (kernels/cuda/wgmma.cuh) exists only in sm_90a
# code ('a': Hopper's arch-specific instructions, which run on compute capability 9.0 only).
# imagerate_cuda_sm90a(target) tells the target's host code whether its CUDA architectures
# include it (IMAGERATE_CUDA_SM90A=1; gemm_wgmma_supported() in kernels/cuda/gemm.cu).
# Call it after the target's CUDA_ARCHITECTURES are final.
function(imagerate_cuda_sm90a target)
  get_target_property(archs ${target} CUDA_ARCHITECTURES)
  if(archs MATCHES "(^|;)90a(-real|-virtual)?(;|$)")
    target_compile_definitions(${target} PRIVATE IMAGERATE_CUDA_SM90A=1)
  endif()
endfunction()
