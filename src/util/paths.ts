// Where the package lives on disk, for finding the native addons and bundled files both
// from src/ (vitest, tsx) and from dist/ (the compiled CLI).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
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
