// vitest settings for `npm test`.
//
// testTimeout: WebGPU on lavapipe compiles each pipeline with LLVM the first time it is used
// (seconds for a GEMM/conv tile on a cold Mesa shader cache, as on a fresh CI machine, and
// more on a loaded 2-core machine), so the default 5 s fails tests that are only compiling.
// No test asserts a time; a hang still fails, after a minute.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
