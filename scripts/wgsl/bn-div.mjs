// Times biasAdd, ReLU and batch-norm evaluation (its per-element sqrt and division) on the webgpu backend; after `npx tsc`: node scripts/wgsl/bn-div.mjs
import { openBackend } from '../../dist/backend/registry.js';
const be = await openBackend('webgpu');
const [o, c, i] = [128, 64, 1024], n = o * c * i;
const x = be.alloc(n * 4), y = be.alloc(n * 4), b = be.alloc(c * 4), g = be.alloc(c * 4), rv = be.alloc(c * 4);
be.upload(rv, new Float32Array(c).fill(1));
async function t(name, fn) { fn(); await be.sync(); const ts = []; for (let r = 0; r < 5; r++) ts.push(await be.timeOnDevice(fn)); ts.sort((a, b) => a - b); console.log(name, (ts[2] * 1e3).toFixed(1), 'ms'); }
await t('biasAdd', () => be.biasAdd(o, c, i, x, b, y));
await t('relu', () => be.reluFwd(n, x, y));
await t('bn eval', () => be.batchnorm2dFwdEval(o, c, i, 1e-5, x, g, b, b, rv, y));
process.exit(0);
