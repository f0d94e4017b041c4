# bindings.gyp: the CPU addon (imagerate_cpu.node) for node-gyp, on machines without CMake.
# It builds the same sources as CMakeLists.txt with the same flags: -O3 for the baseline ISA,
# and -mavx2 -mfma for *_avx2.cc files only. gyp has no per-file flags, so those files form a
# static library of their own, linked into the addon.
#
# node-gyp wants a file named binding.gyp in its working directory and writes ./build, which
# cmake-js uses too, so do not run node-gyp here: run scripts/build-gyp.sh, which stages this
# file as binding.gyp in build-gyp/ and fails if a source in kernels/cpu/*.cc or
# native/cpu_*.cc is missing from the lists below (add new files by hand: explicit lists; the
# shared glue, native/op_*.cc, is not globbed by either build: keep it in step with
# IMAGERATE_SHARED_GLUE in CMakeLists.txt).
{
  'target_defaults': {
    'include_dirs': [
      "<!(node -p \"require('node-addon-api').include_dir\")",
      'kernels/cpu',
      'native',
    ],
    'defines': [
      'NAPI_VERSION=8',
      'NAPI_CPP_EXCEPTIONS',
      'NODE_ADDON_API_CPP_EXCEPTIONS_ALL',
      'IMAGERATE_BUILT_BY_GYP=1',
    ],
    'cflags!': ['-fno-exceptions'],
    'cflags_cc!': ['-fno-exceptions', '-std=gnu++17'],
    'cflags': ['-O3', '-fPIC', '-fvisibility=hidden'],
    'cflags_cc': ['-std=c++17', '-fvisibility-inlines-hidden'],
  },
  'targets': [
    {
      # The only sources compiled with AVX2/FMA; everything that calls them checks the CPU first.
      'target_name': 'imagerate_cpu_avx2',
      'type': 'static_library',
      'sources': [
        'kernels/cpu/gemm_kernel_avx2.cc',
      ],
      'cflags': ['-mavx2', '-mfma'],
    },
    {
      'target_name': 'imagerate_cpu',
      'dependencies': ['imagerate_cpu_avx2'],
      'sources': [
        'kernels/cpu/batchnorm.cc',
        'kernels/cpu/conv2d.cc',
        'kernels/cpu/elementwise.cc',
        'kernels/cpu/gemm.cc',
        'kernels/cpu/gemm_kernel_generic.cc',
        'kernels/cpu/im2col.cc',
        'kernels/cpu/lrn.cc',
        'kernels/cpu/parallel.cc',
        'kernels/cpu/pool2d.cc',
        'kernels/cpu/sgd.cc',
        'kernels/cpu/softmax_xent.cc',
        'native/cpu_addon.cc',
        'native/cpu_allocator.cc',
        'native/cpu_ops_nn.cc',
        'native/cpu_ops_norm.cc',
        'native/cpu_ops_pointwise.cc',
        'native/cpu_stream.cc',
        'native/gemm_bench.cc',
        # shared with the CUDA addon (CMakeLists.txt: IMAGERATE_SHARED_GLUE)
        'native/op_args.cc',
        'native/op_checks_nn.cc',
        'native/op_checks_norm.cc',
        'native/op_checks_pointwise.cc',
      ],
      'libraries': ['-pthread', '-ldl'],
      'ldflags': ['-pthread'],
    },
  ],
}
