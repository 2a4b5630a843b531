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

const gowasm = require("../../testdata/gowasm.cjs");

function describe(dev) {
  return { id: dev.id(), fingerprint: dev.fingerprint(), list: dev.deviceList(), bundle: dev.bundle() };
}

gowasm.main(async () => {
  const api = await gowasm.start(process.argv[2], process.argv[3], "otrdeskOmemo");
  const devices = new Map();
  await gowasm.serve((m) => {
    switch (m.op) {
      case "version":
        return { result: api.version };
      case "new": {
        const dev = api.newDevice(...(m.args || [m.preKeys]));
        if (dev && typeof dev.id === "function") {
          devices.set(m.name, dev);
          return { result: describe(dev) };
        }
        return { result: dev };
      }
      case "restore": {
        const dev = api.restore(m.state);
        if (dev) {
          devices.set(m.name, dev);
          return { restored: true, ...describe(dev) };
        }
        return { restored: false, result: dev };
      }
      case "call": {
        const dev = devices.get(m.name);
        if (!dev) throw new Error("no device " + m.name);
        return { result: dev[m.method](...(m.args || [])) };
      }
      case "bench":
        return bench(api, m.n);
      default:
        return { exception: "unknown op " + m.op };
    }
  });
});

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
