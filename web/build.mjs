// Builds the widget into web/dist (run from anywhere: node web/build.mjs).
//
//	dist/widget.js                 the launcher, with the asset names and their
//	                               sha384 integrity values baked in
//	dist/assets/chat-<h>.js        chat UI + Strophe.js (loaded on first click)
//	dist/assets/worker-<h>.js      Go's wasm_exec.js + the worker glue
//	dist/assets/otr-<h>.wasm       the OTR engine: GOOS=js GOARCH=wasm go build ./wasm
//	dist/assets/wasm_exec-<h>.js   wasm_exec.js as copied from this Go toolchain
//	dist/assets/omemo-worker-<h>.js  Go's wasm_exec.js + the OMEMO worker glue
//	dist/assets/omemo-<h>.wasm     the OMEMO engine: GOOS=js GOARCH=wasm go build
//	                               ./wasm/omemo (fetched only by pages that can
//	                               trust an OMEMO key, never for OTR alone)
//	dist/sizes.json                raw, gzip and brotli sizes of each asset
//	dist/**/<file>.br, <file>.gz   each of the above (but sizes.json) compressed
//	                               once here, at the highest levels: otrdesk
//	                               serves them with Content-Encoding to browsers
//	                               that accept it, so no request pays for
//	                               compression and none gets less of it
//
// <h> is the first 16 hex digits of the file's SHA-256. The launcher must stay
// within 10 KB gzip, the budget for what every page that embeds the chat
// loads before anyone clicks; the build fails when it does not.

import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, gzipSync, constants as zc } from 'node:zlib';

const web = dirname(fileURLToPath(import.meta.url));
const dist = join(web, 'dist');
const assetsDir = join(dist, 'assets');
const LAUNCHER_GZIP_LIMIT = 10 * 1024;
// What the first click downloads of the OTR engine: the budget of the
// first-impression work (the Go runtime alone is about 440 KB of it).
const OTR_WASM_BROTLI_LIMIT = 600 * 1000;

function fail(msg) {
  console.error('build.mjs: ' + msg);
  process.exit(1);
}

// Clean dist/, keeping the committed placeholder.
mkdirSync(dist, { recursive: true });
for (const name of readdirSync(dist)) {
  if (name !== 'README.txt') rmSync(join(dist, name), { recursive: true, force: true });
}
mkdirSync(assetsDir, { recursive: true });

const tmp = mkdtempSync(join(tmpdir(), 'otrdesk-web-'));
const assets = {};

function emit(key, base, ext, bytes) {
  const h = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const file = `${base}-${h}.${ext}`;
  writeFileSync(join(assetsDir, file), bytes);
  assets[key] = { file, integrity: 'sha384-' + createHash('sha384').update(bytes).digest('base64') };
}

function go(args, env) {
  try {
    return execFileSync('go', args, { cwd: web, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  } catch (e) {
    fail(`go ${args.join(' ')} failed` + (e.code === 'ENOENT' ? ': go is not installed' : ''));
  }
}

// 1. The OTR engine as WebAssembly, and the wasm_exec.js that matches it.
const goroot = go(['env', 'GOROOT']).trim();
const execJS = [join(goroot, 'lib', 'wasm', 'wasm_exec.js'), join(goroot, 'misc', 'wasm', 'wasm_exec.js')].find(existsSync);
if (!execJS) fail(`wasm_exec.js not found under ${goroot}/lib/wasm or ${goroot}/misc/wasm`);
const wasmExec = readFileSync(execJS);
emit('wasmExec', 'wasm_exec', 'js', wasmExec);

if (existsSync(join(web, 'wasm'))) {
  const out = join(tmp, 'otr.wasm');
  // No inlining, except in math/big and math/bits, whose loops set the
  // engine's speed: 9% less brotli at the same speed (AKE, data, SMP timed
  // under node). Then wasm/pack joins the linker's tens of thousands of data
  // segments, whose headers barely compress; memory starts the same.
  // (keep in step with nodewasm.OTR in web/wasm/internal/nodewasm, which
  // the node tests build with)
  go(['build', '-trimpath', '-ldflags=-s', '-gcflags=all=-l', '-gcflags=math/big=', '-gcflags=math/bits=', '-o', out, './wasm'], { GOOS: 'js', GOARCH: 'wasm', CGO_ENABLED: '0' });
  go(['run', './wasm/pack', out], {});
  emit('wasm', 'otr', 'wasm', readFileSync(out));
} else if (process.env.OTRDESK_ALLOW_NO_WASM === '1') {
  console.warn('build.mjs: web/wasm is missing: building a widget without encryption (plaintext skins only)');
} else {
  fail('web/wasm is missing: the OTR engine cannot be built (set OTRDESK_ALLOW_NO_WASM=1 to build a plaintext-only widget)');
}

// 1b. The OMEMO engine as WebAssembly, built like the OTR engine. It links
// the Signal library (and with it the protobuf runtime), so it is a module
// of its own: a page that uses OTR alone never downloads it.
if (existsSync(join(web, 'wasm', 'omemo'))) {
  const out = join(tmp, 'omemo.wasm');
  // (keep in step with nodewasm.OMEMO)
  go(['build', '-trimpath', '-ldflags=-s', '-o', out, './wasm/omemo'], { GOOS: 'js', GOARCH: 'wasm', CGO_ENABLED: '0' });
  go(['run', './wasm/pack', out], {});
  emit('omemoWasm', 'omemo', 'wasm', readFileSync(out));
}

// 2. The worker: wasm_exec.js first (it defines globalThis.Go), then our glue.
const common = { bundle: true, minify: true, format: 'iife', target: ['es2020'], write: false, legalComments: 'eof', logLevel: 'warning' };
const worker = await build({ ...common, entryPoints: [join(web, 'src', 'worker.js')] });
emit('worker', 'worker', 'js', Buffer.concat([wasmExec, Buffer.from('\n'), Buffer.from(worker.outputFiles[0].contents)]));
if (assets.omemoWasm) {
  const omemoWorker = await build({ ...common, entryPoints: [join(web, 'src', 'omemo-worker.js')] });
  emit('omemoWorker', 'omemo-worker', 'js', Buffer.concat([wasmExec, Buffer.from('\n'), Buffer.from(omemoWorker.outputFiles[0].contents)]));
}

// 3. The chat bundle.
const chat = await build({ ...common, entryPoints: [join(web, 'src', 'chat.js')] });
emit('chat', 'chat', 'js', Buffer.from(chat.outputFiles[0].contents));

// 4. The launcher, with everything above baked in.
const launcher = await build({
  ...common,
  entryPoints: [join(web, 'src', 'launcher.js')],
  define: { __OTRDESK_ASSETS__: JSON.stringify(assets) },
});
const widget = Buffer.from(launcher.outputFiles[0].contents);
writeFileSync(join(dist, 'widget.js'), widget);

// 5. Precompressed variants, and the sizes.
const sizes = {};
const compress = (name, path) => {
  const bytes = readFileSync(path);
  const gz = gzipSync(bytes, { level: 9 });
  const br = brotliCompressSync(bytes, { params: { [zc.BROTLI_PARAM_QUALITY]: 11, [zc.BROTLI_PARAM_SIZE_HINT]: bytes.length } });
  if (gz.length < bytes.length) writeFileSync(path + '.gz', gz);
  if (br.length < bytes.length) writeFileSync(path + '.br', br);
  sizes[name] = { raw: bytes.length, gzip: gz.length, brotli: br.length };
};
compress('widget.js', join(dist, 'widget.js'));
for (const [key, a] of Object.entries(assets)) compress(key + ' (' + a.file + ')', join(assetsDir, a.file));
writeFileSync(join(dist, 'sizes.json'), JSON.stringify(sizes, null, 2) + '\n');
rmSync(tmp, { recursive: true, force: true });

console.log('asset'.padEnd(48) + 'raw'.padStart(10) + 'gzip'.padStart(10) + 'brotli'.padStart(10));
for (const [name, s] of Object.entries(sizes)) {
  console.log(name.padEnd(48) + String(s.raw).padStart(10) + String(s.gzip).padStart(10) + String(s.brotli).padStart(10));
}
const otrWasm = Object.entries(sizes).find(([k]) => k.startsWith('wasm ('));
if (otrWasm && otrWasm[1].brotli > OTR_WASM_BROTLI_LIMIT) {
  fail(`the OTR engine is ${otrWasm[1].brotli} bytes brotli, over the ${OTR_WASM_BROTLI_LIMIT}-byte budget for the first click`);
}
if (sizes['widget.js'].gzip > LAUNCHER_GZIP_LIMIT) {
  fail(`the launcher is ${sizes['widget.js'].gzip} bytes gzip, over the ${LAUNCHER_GZIP_LIMIT}-byte limit for the launcher`);
}
