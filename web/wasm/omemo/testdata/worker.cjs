// worker.cjs runs web/src/omemo-worker.js under node for node_test.go, as
// a browser would run it in a Worker (the worker script has no imports):
//   node worker.cjs WASM_EXEC_JS OMEMO_WASM OMEMO_WORKER_JS
// Each line on stdin is a JSON list of requests, posted to the worker at
// once without waiting; a request with module:true gets the compiled
// module in its place. The answer is one JSON line: the worker's replies,
// in the order it posted them.
"use strict";

const gowasm = require("../../testdata/gowasm.cjs");
const fs = require("fs");

gowasm.load(process.argv[2]);
const module_ = new WebAssembly.Module(fs.readFileSync(process.argv[3]));

let replies = [];
let waiter = null;
globalThis.self = globalThis;
globalThis.postMessage = (m) => {
  replies.push(JSON.parse(JSON.stringify(m)));
  if (waiter) waiter();
};
require("vm").runInThisContext(fs.readFileSync(process.argv[4], "utf8"), { filename: "omemo-worker.js" });

gowasm.main(() =>
  gowasm.serve(async (batch) => {
    replies = [];
    for (const m of batch) {
      if (m.module) m.module = module_;
      self.onmessage({ data: m });
    }
    while (replies.length < batch.length) await new Promise((r) => (waiter = r));
    waiter = null;
    return replies;
  }),
);
