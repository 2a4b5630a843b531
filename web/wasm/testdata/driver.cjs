// driver.cjs runs the otrdesk wasm engine under node for node_test.go:
//   node driver.cjs WASM_EXEC_JS OTR_WASM
// It reads one JSON command per line on stdin and answers each with one
// JSON line on stdout:
//   {op:"new", policy, key?}           -> {instanceTag, ourFingerprint}
//   {op:"query"|"end"}                 -> Result
//   {op:"send", text} {op:"sendTo", instance, fingerprint, text}
//   {op:"receive", body} {op:"smp", question, secret}
//                                      -> Result (see main.go)
//   {op:"state"}                       -> {encrypted, fingerprint}
//   {op:"export"}                      -> {state}
//   {op:"restore", policy, state}      -> {restored, ourFingerprint}
//   {op:"bench", what, n, size}        -> {ms, cpuMs}  wall and CPU ms per operation
//                                         between two wasm conversations in this process
//                                         (cpuMs includes the setup of the run)
"use strict";

globalThis.require = require;
globalThis.fs = require("fs");
globalThis.path = require("path");
globalThis.TextEncoder = require("util").TextEncoder;
globalThis.TextDecoder = require("util").TextDecoder;
globalThis.performance ??= require("perf_hooks").performance;
globalThis.crypto ??= require("crypto").webcrypto;

require(process.argv[2]);

async function main() {
  const go = new Go();
  const { instance } = await WebAssembly.instantiate(fs.readFileSync(process.argv[3]), go.importObject);
  go.run(instance); // never returns: the API stays registered
  for (let i = 0; i < 500 && !globalThis.otrdesk; i++) await new Promise((r) => setTimeout(r, 2));
  const api = globalThis.otrdesk;
  if (!api) throw new Error("no otrdesk API registered");
  let conv = null;
  const rl = require("readline").createInterface({ input: process.stdin });
  for await (const line of rl) {
    const m = JSON.parse(line);
    let r;
    try {
      switch (m.op) {
        case "new":
          conv = api.newConversation({ policy: m.policy, key: m.key });
          r = { instanceTag: conv.instanceTag(), ourFingerprint: conv.ourFingerprint() };
          break;
        case "query": r = conv.query(); break;
        case "send": r = conv.send(m.text); break;
        case "sendTo": r = conv.sendTo(m.instance, m.fingerprint, m.text); break;
        case "receive": r = conv.receive(m.body); break;
        case "end": r = conv.end(); break;
        case "smp": r = conv.smp(m.question, m.secret); break;
        case "state": r = { encrypted: conv.isEncrypted(), fingerprint: conv.fingerprint() }; break;
        case "export": r = { state: conv.export() }; break;
        case "restore":
          conv = api.newConversation({ policy: m.policy });
          r = { restored: conv.restore(m.state), ourFingerprint: conv.ourFingerprint() };
          break;
        case "bench": {
          const c0 = process.cpuUsage();
          const ms = bench(api, m.what, m.n, m.size);
          const c = process.cpuUsage(c0);
          r = { ms, cpuMs: (c.user + c.system) / 1000 / m.n };
          break;
        }
        default: r = { error: "unknown op " + m.op };
      }
    } catch (e) {
      r = { exception: String(e && e.message || e) };
    }
    process.stdout.write(JSON.stringify(r) + "\n");
  }
  process.exit(0);
}

// relay delivers r's bodies (r came from a call on from) to to, and the
// replies back, until both are quiet.
function relay(from, to, r) {
  if (r.error) throw new Error(r.error);
  const queue = [[to, from, r.send]];
  let guard = 0;
  while (queue.length && guard++ < 10000) {
    const [dst, src, bodies] = queue.shift();
    for (const body of bodies) {
      const rr = dst.receive(body);
      if (rr.error) throw new Error(rr.error);
      queue.push([src, dst, rr.send]);
    }
  }
}

function bench(api, what, n, size) {
  if (what === "keygen") {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) api.generateKey();
    return (performance.now() - t0) / n;
  }
  const a = api.newConversation({ policy: "require" });
  const b = api.newConversation({ policy: "require" });
  const ake = () => relay(a, b, a.query());
  if (what === "ake") {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) ake();
    if (!a.isEncrypted() || !b.isEncrypted()) throw new Error("AKE failed");
    return (performance.now() - t0) / n;
  }
  ake();
  if (what === "data") {
    const text = "x".repeat(size);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      relay(a, b, a.send(text));
      relay(b, a, b.send(text));
    }
    return (performance.now() - t0) / n;
  }
  if (what === "smp") {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      relay(a, b, a.smp("", "secret"));
      relay(b, a, b.smp("", "secret"));
    }
    return (performance.now() - t0) / n;
  }
  throw new Error("unknown bench " + what);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
