// driver.cjs runs the otrdesk OMEMO wasm module under node for node_test.go:
//   node driver.cjs WASM_EXEC_JS OMEMO_WASM
// It reads one JSON command per line on stdin and answers each with one
// JSON line on stdout. Devices live in this process under names:
//   {op:"new", name, preKeys}          -> {result} the value newDevice returned
//                                         ({id, fingerprint, list, bundle} added
//                                         when it is a device)
//   {op:"restore", name, state}        -> {restored, id, fingerprint}
//   {op:"call", name, method, args}    -> {result} what dev[method](...args) returned
//   {op:"bench", n}                    -> {newDevice, session, roundTrip} mean ms:
//                                         newDevice(10); peer + the first encrypt
//                                         (X3DH) + its decrypt; a reply and an
//                                         answer after that, each encrypt + decrypt
// A call that throws answers {exception}: the API must never throw.
"use strict";

globalThis.require = require;
globalThis.fs = require("fs");
globalThis.path = require("path");
globalThis.TextEncoder = require("util").TextEncoder;
globalThis.TextDecoder = require("util").TextDecoder;
globalThis.performance ??= require("perf_hooks").performance;
globalThis.crypto ??= require("crypto").webcrypto;

require(process.argv[2]);

function describe(dev) {
  return { id: dev.id(), fingerprint: dev.fingerprint(), list: dev.deviceList(), bundle: dev.bundle() };
}

async function main() {
  const go = new Go();
  const { instance } = await WebAssembly.instantiate(fs.readFileSync(process.argv[3]), go.importObject);
  go.run(instance); // never returns: the API stays registered
  for (let i = 0; i < 500 && !globalThis.otrdeskOmemo; i++) await new Promise((r) => setTimeout(r, 2));
  const api = globalThis.otrdeskOmemo;
  if (!api) throw new Error("no otrdeskOmemo API registered");
  const devices = new Map();
  const rl = require("readline").createInterface({ input: process.stdin });
  for await (const line of rl) {
    const m = JSON.parse(line);
    let r;
    try {
      switch (m.op) {
        case "version":
          r = { result: api.version };
          break;
        case "new": {
          const dev = api.newDevice(...(m.args || [m.preKeys]));
          if (dev && typeof dev.id === "function") {
            devices.set(m.name, dev);
            r = { result: describe(dev) };
          } else {
            r = { result: dev };
          }
          break;
        }
        case "restore": {
          const dev = api.restore(m.state);
          if (dev) {
            devices.set(m.name, dev);
            r = { restored: true, ...describe(dev) };
          } else {
            r = { restored: false, result: dev };
          }
          break;
        }
        case "call": {
          const dev = devices.get(m.name);
          if (!dev) throw new Error("no device " + m.name);
          r = { result: dev[m.method](...(m.args || [])) };
          break;
        }
        case "bench":
          r = bench(api, m.n);
          break;
        default:
          r = { exception: "unknown op " + m.op };
      }
    } catch (e) {
      r = { exception: String((e && e.message) || e) };
    }
    process.stdout.write(JSON.stringify(r) + "\n");
  }
  process.exit(0);
}

function must(r) {
  if (!r || r.error) throw new Error((r && r.error) || "no result");
  return r;
}

function bench(api, n) {
  let tNew = 0, tSession = 0, tTrip = 0;
  for (let i = 0; i < n; i++) {
    let t0 = performance.now();
    const a = api.newDevice(10);
    const b = api.newDevice(10);
    tNew += (performance.now() - t0) / 2;
    const aJID = "guest@desk.example", bJID = "op@example.org";
    const toB = [{ jid: bJID, device: b.id(), fingerprint: b.fingerprint() }];
    t0 = performance.now();
    must(a.peer(bJID, b.id(), b.bundle()));
    const first = must(a.encrypt("hello", toB));
    must(b.decrypt(aJID, first.xml));
    tSession += performance.now() - t0;
    t0 = performance.now();
    const reply = must(b.encrypt("hello yourself", [{ jid: aJID, device: a.id(), fingerprint: a.fingerprint() }]));
    must(a.decrypt(bJID, reply.xml));
    const second = must(a.encrypt("and again", toB));
    must(b.decrypt(aJID, second.xml));
    tTrip += performance.now() - t0;
  }
  return { newDevice: tNew / n, session: tSession / n, roundTrip: tTrip / n };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
