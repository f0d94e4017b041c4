// Static checks of the WGSL sources that no driver we can run would catch.
//
// Component stores into shared vectors. WGSL lets a store to one component of a vector access
// every memory location of the vector (the spec's memory model; gpuweb issue 2112 saw it on
// Metal and D3D). So when different invocations write different components of one vec4 in
// workgroup or read_write storage memory, they race on a driver that stores vectors whole,
// while lavapipe and Vulkan drivers, which store the component, never show it. The kernels
// keep such memory as arrays of scalars, or store whole vectors; this test finds any store to
// a component (`v[i][2] = ...`, `v[i].x = ...`) of a vector held in workgroup or read_write
// storage memory.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { WGSL_DIR } from '../../src/backend/webgpu/shaders.js';

interface SharedVector {
  name: string;
  depth: number; // array nesting levels above the vector
}

/** Module-scope workgroup / read_write storage variables whose innermost type is a vector. */
function sharedVectors(src: string): SharedVector[] {
  const out: SharedVector[] = [];
  const re = /var<(workgroup|storage\s*,\s*read_write)>\s+([A-Za-z_]\w*)\s*:\s*([^;]+);/g;
  for (const m of src.matchAll(re)) {
    const type = m[3];
    if (!/vec[234]/.test(type)) continue;
    out.push({ name: m[2], depth: (type.match(/array</g) ?? []).length });
  }
  return out;
}

/** Stores (=, +=, ...) whose left-hand side is a component of one of `vars`: "line: text". */
function componentStores(src: string, vars: SharedVector[]): string[] {
  const found: string[] = [];
  const lines = src.split('\n');
  lines.forEach((line, ln) => {
    const code = line.replace(/\/\/.*$/, '');
    for (const v of vars) {
      const re = new RegExp(`\\b${v.name}\\b`, 'g');
      for (const m of code.matchAll(re)) {
        // Walk the index chain [..][..] (brackets may nest) and any .member after it.
        let i = m.index! + v.name.length;
        let indices = 0;
        for (;;) {
          while (code[i] === ' ') i++;
          if (code[i] !== '[') break;
          let level = 0;
          for (; i < code.length; i++) {
            if (code[i] === '[') level++;
            else if (code[i] === ']' && --level === 0) break;
          }
          i++;
          indices++;
        }
        let member = false;
        while (code[i] === ' ') i++;
        if (code[i] === '.') {
          member = true;
          i++;
          while (/\w/.test(code[i] ?? '')) i++;
        }
        while (code[i] === ' ') i++;
        const isStore = /^([+\-*/%&|^]|<<|>>)?=(?!=)/.test(code.slice(i));
        if (isStore && (member || indices > v.depth)) found.push(`${ln + 1}: ${line.trim()}`);
      }
    }
  });
  return found;
}

describe('WGSL sources', () => {
  it('the component-store check finds what it should (and nothing else)', () => {
    const src = [
      'var<workgroup> t: array<array<vec4f, 8>, 4>;',
      'var<storage, read_write> c: array<vec4f>;',
      'var<workgroup> s: array<f32, 32>;',
      'fn f(i: u32) {',
      '  t[i][2u][i & 3u] = 1.0;      // component by index',
      '  c[i >> 2u].y += 2.0;         // component by member',
      '  t[i][a[i]] = vec4f(0.0);     // whole vector: fine',
      '  s[i] = 3.0;                  // scalar array: fine',
      '  let x = t[i][1u][2u] == 1.0; // a read: fine',
      '}',
    ].join('\n');
    const found = componentStores(src, sharedVectors(src));
    expect(found.map((f) => Number(f.split(':')[0]))).toEqual([5, 6]);
  });

  const files = readdirSync(WGSL_DIR).filter((f) => f.endsWith('.wgsl'));
  it('has kernels to check', () => {
    expect(files.length).toBeGreaterThan(10);
  });
  for (const file of files) {
    it(`${file}: no invocation stores one component of a shared vector`, () => {
      const src = readFileSync(join(WGSL_DIR, file), 'utf8');
      expect(componentStores(src, sharedVectors(src))).toEqual([]);
    });
  }
});
