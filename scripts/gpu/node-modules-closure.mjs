// node-modules-closure.mjs: prints, one per line, the node_modules package folders (relative
// to the repository root) that the given root packages need at run time: each package's
// dependencies, optionalDependencies and installed peerDependencies, resolved the way Node
// resolves them (nearest node_modules first, walking up). Used by prepare-carry.sh to send a
// reduced node_modules to the GPU machine.
//
//   node scripts/gpu/node-modules-closure.mjs vitest commander ... > list.txt
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const seen = new Set();
const missing = [];

function locate(name, fromDir) {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const cand = join(dir, 'node_modules', name);
    if (existsSync(join(cand, 'package.json'))) return cand;
    if (dir === root || dirname(dir) === dir) return null;
  }
}

function visit(name, fromDir, optional) {
  const dir = locate(name, fromDir);
  if (!dir) {
    if (!optional) missing.push(`${name} (needed from ${relative(root, fromDir) || '.'})`);
    return;
  }
  if (seen.has(dir)) return;
  seen.add(dir);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  for (const d of Object.keys(pkg.dependencies ?? {})) visit(d, dir, false);
  for (const d of Object.keys(pkg.optionalDependencies ?? {})) visit(d, dir, true);
  for (const d of Object.keys(pkg.peerDependencies ?? {})) visit(d, dir, true);
}

for (const name of process.argv.slice(2)) visit(name, root, false);
for (const dir of [...seen].sort()) console.log(relative(root, dir));
if (missing.length) console.error(`not installed: ${missing.join(', ')}`);
