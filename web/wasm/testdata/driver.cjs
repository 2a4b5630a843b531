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

const gowasm = require("./gowasm.cjs");

gowasm.main(async () => {
  const api = await gowasm.start(process.argv[2], process.argv[3], "otrdesk");
  let conv = null;
  await gowasm.serve((m) => {
    switch (m.op) {
      case "new":
        conv = api.newConversation({ policy: m.policy, key: m.key });
        return { instanceTag: conv.instanceTag(), ourFingerprint: conv.ourFingerprint() };
      case "query": return conv.query();
      case "send": return conv.send(m.text);
      case "sendTo": return conv.sendTo(m.instance, m.fingerprint, m.text);
      case "receive": return conv.receive(m.body);
      case "end": return conv.end();
      case "smp": return conv.smp(m.question, m.secret);
      case "state": return { encrypted: conv.isEncrypted(), fingerprint: conv.fingerprint() };
      case "export": return { state: conv.export() };
      case "restore":
        conv = api.newConversation({ policy: m.policy });
        return { restored: conv.restore(m.state), ourFingerprint: conv.ourFingerprint() };
      case "bench": {
        const c0 = process.cpuUsage();
        const ms = bench(api, m.what, m.n, m.size);
        const c = process.cpuUsage(c0);
        return { ms, cpuMs: (c.user + c.system) / 1000 / m.n };
      }
      default: return { error: "unknown op " + m.op };
    }
  });
});

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
