// echo.cjs answers {echo} with {echo} and throws on {throw}, through the
// line protocol of ../../../testdata/gowasm.cjs, for nodewasm_test.go.
"use strict";

const gowasm = require("../../../testdata/gowasm.cjs");

gowasm.main(() =>
  gowasm.serve((m) => {
    if (m.throw) throw new Error(m.throw);
    return { echo: m.echo };
  }),
);
