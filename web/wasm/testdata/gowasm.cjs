// gowasm.cjs is what the node scripts of the wasm tests share (this
// directory's driver.cjs, and ../omemo/testdata's driver.cjs, worker.cjs
// and client.mjs): loading Go's wasm_exec.js, running a module, and the
// line protocol nodewasm.Driver speaks.
"use strict";

// load gives wasm_exec.js the globals it expects (as Go's own
// wasm_exec_node.js does) and runs it, which defines globalThis.Go.
function load(execJS) {
  globalThis.require = require;
  globalThis.fs = require("fs");
  globalThis.path = require("path");
  globalThis.TextEncoder = require("util").TextEncoder;
  globalThis.TextDecoder = require("util").TextDecoder;
  globalThis.performance ??= require("perf_hooks").performance;
  globalThis.crypto ??= require("crypto").webcrypto;
  require(execJS);
}

// start loads wasm_exec.js, runs the module at wasmPath, and returns the API
// it registers as globalThis[name]. The module's main never returns (the
// API stays registered), so this waits for the name to appear.
async function start(execJS, wasmPath, name) {
  load(execJS);
  const go = new Go();
  const { instance } = await WebAssembly.instantiate(require("fs").readFileSync(wasmPath), go.importObject);
  go.run(instance);
  for (let i = 0; i < 500 && !globalThis[name]; i++) await new Promise((r) => setTimeout(r, 2));
  if (!globalThis[name]) throw new Error("no " + name + " API registered");
  return globalThis[name];
}

// serve answers each JSON line on stdin with what handle returns for it
// (or resolves to) as one JSON line on stdout, {exception} when it throws,
// and ends the process when stdin does.
async function serve(handle) {
  const rl = require("readline").createInterface({ input: process.stdin });
  for await (const line of rl) {
    let r;
    try {
      r = await handle(JSON.parse(line));
    } catch (e) {
      r = { exception: String((e && e.message) || e) };
    }
    process.stdout.write(JSON.stringify(r) + "\n");
  }
  process.exit(0);
}

// main runs the script's async main; a failure is printed to stderr, which
// the test logs when it fails.
function main(fn) {
  fn().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

module.exports = { load, start, serve, main };
