// Where the package lives on disk, for finding the native addons and bundled files both
// from src/ (vitest, tsx) and from dist/ (the compiled CLI).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'CMakeLists.txt'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

export const PACKAGE_ROOT = findRoot();

/** Path of a native addon built by cmake-js (build/Release/<name>.node). */
export function addonPath(name: string): string {
  return join(PACKAGE_ROOT, 'build', 'Release', `${name}.node`);
}

/**
 * The addon named by an environment variable (IMAGERATE_CPU_ADDON, IMAGERATE_CUDA_ADDON), resolved
 * against the working directory as a user typing a relative path means it (require() would resolve
 * it against the loading module's folder instead), else the default build output.
 */
export function addonPathFromEnv(envVar: string, name: string): string {
  const p = process.env[envVar];
  return p ? resolve(process.cwd(), p) : addonPath(name);
}
