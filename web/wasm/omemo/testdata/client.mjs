// client.mjs runs web/src/omemo.js, the page side, under node for
// node_test.go, with what a browser would give it: fetch with integrity,
// blob: URLs, and Worker, here a node worker thread that runs the worker
// script from the blob as a browser would.
//   node client.mjs WASM_EXEC_JS OMEMO_WASM OMEMO_WORKER_JS OMEMO_JS
// One JSON command per line on stdin, one JSON line per answer:
//   {op:"start", name, damage}   startOMEMO(assets, base) as client name;
//                                damage: "worker" or "wasm" serves other bytes
//                                than the integrity names, "assets" leaves the
//                                OMEMO assets out of the map
//   {op:"calls", calls:[{name, method, args}]}
//                                makes every call at once, then waits for all:
//                                [{ok, result} | {ok:false, message, notSent}]
//   {op:"terminate", name}
import { Worker as Thread } from 'node:worker_threads';
import { resolveObjectURL } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import gowasm from '../../testdata/gowasm.cjs';

const [execJS, wasmPath, workerPath, omemoPath] = process.argv.slice(2);
const base = 'https://chat.example.org/';
const sri = (b) => 'sha384-' + createHash('sha384').update(b).digest('base64');
const script = Buffer.concat([readFileSync(execJS), Buffer.from('\n'), readFileSync(workerPath)]);
const wasm = readFileSync(wasmPath);
const assets = {
  omemoWorker: { file: 'omemo-worker-x.js', integrity: sri(script) },
  omemoWasm: { file: 'omemo-x.wasm', integrity: sri(wasm) },
};
let damage = '';

// fetch as the browser does it with an integrity option: bytes that do not
// match are a network error.
const served = (url) => {
  if (url === base + 'assets/' + assets.omemoWorker.file) return damage === 'worker' ? Buffer.concat([script, Buffer.from(';')]) : script;
  return null;
};
globalThis.fetch = async (url, opts = {}) => {
  const body = served(String(url));
  if (!body) return new Response('', { status: 404 });
  if (opts.integrity && sri(body) !== opts.integrity) throw new TypeError('Failed to fetch: integrity');
  return new Response(body);
};

// What runs in the thread before the worker script: the worker's globals,
// and its fetch of the wasm module with the same integrity rule.
const prelude = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
globalThis.self = globalThis;
globalThis.require = require;
globalThis.fs = require('node:fs');
globalThis.path = require('node:path');
globalThis.postMessage = (m) => parentPort.postMessage(m);
parentPort.on('message', (m) => self.onmessage && self.onmessage({ data: m }));
globalThis.fetch = async (url, opts = {}) => {
  if (url !== workerData.wasmURL) return new Response('', { status: 404 });
  let body = require('node:fs').readFileSync(workerData.wasmPath);
  if (workerData.damage === 'wasm') body = Buffer.concat([body, Buffer.from([0])]);
  if (opts.integrity && 'sha384-' + createHash('sha384').update(body).digest('base64') !== opts.integrity) throw new TypeError('Failed to fetch: integrity');
  return new Response(body, { headers: { 'Content-Type': 'application/wasm' } });
};
`;

globalThis.Worker = class {
  constructor(url) {
    const blob = resolveObjectURL(url);
    if (!blob) throw new Error('no such blob: ' + url);
    this.onmessage = null;
    this.onerror = null;
    this.thread = blob.text().then((src) => {
      const t = new Thread(prelude + src, {
        eval: true,
        workerData: { wasmURL: base + 'assets/' + assets.omemoWasm.file, wasmPath, damage },
      });
      t.on('message', (data) => this.onmessage && this.onmessage({ data }));
      t.on('error', (e) => this.onerror && this.onerror(e));
      return t;
    });
  }
  postMessage(m) {
    this.thread.then((t) => t.postMessage(m));
  }
  terminate() {
    this.thread.then((t) => t.terminate());
  }
};

const { startOMEMO } = await import(pathToFileURL(omemoPath).href);
const clients = new Map();
await gowasm.serve((m) => {
  switch (m.op) {
    case 'start':
      damage = m.damage || '';
      clients.set(m.name, startOMEMO(damage === 'assets' ? {} : assets, base));
      return { ok: true };
    case 'calls':
      return Promise.all(
        m.calls.map((c) =>
          clients
            .get(c.name)
            [c.method](...(c.args || []))
            .then(
              (result) => ({ ok: true, result }),
              (e) => ({ ok: false, message: String(e && e.message), notSent: !!(e && e.notSent), isError: e instanceof Error }),
            ),
        ),
      );
    case 'terminate':
      clients.get(m.name).terminate();
      return { ok: true };
    default:
      return { exception: 'unknown op ' + m.op };
  }
});
