// Smoke test of the npm package `ib` 0.2.9 (node-ib, 2016) against ibot.sim. Run by run_node.py:
//   NODE_PATH=<dir>/node_modules node smoke_nodeib.mjs <port> <simulator's max server version>
// node-ib speaks the protocol from before v100: no "API\0" prefix, its bare client version ("62\0") and
// client id unframed, then it waits for the server's version (it supports server versions up to 38). The
// simulator speaks v157..178 only, so the most it can do is refuse it at once instead of leaving it waiting.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url); // CommonJS resolution: honours NODE_PATH
const IB = require("ib");
const { CLIENT_VERSION } = require("ib/lib/constants");

const PORT = Number(process.argv[2]);
let passed = 0;
let failed = 0;
const report = (name, cond, why) => {
  if (cond) {
    passed += 1;
    console.log(`PASS ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL ${name}: ${why}`);
  }
};

report("client is pre-v100 (client version < 100)", CLIENT_VERSION < 100, `client version ${CLIENT_VERSION}`);
const ib = new IB({ host: "127.0.0.1", port: PORT, clientId: 7 });
const events = [];
for (const name of ["connected", "disconnected", "server", "error", "nextValidId"]) {
  ib.on(name, (...args) => events.push([name, Date.now(), ...args]));
}
const t0 = Date.now();
ib.connect();
const closed = await new Promise((resolve) => {
  const timer = setTimeout(() => resolve(false), 10000);
  ib.on("disconnected", () => (clearTimeout(timer), resolve(true)));
});
const names = events.map((e) => e[0]).join(",");
report("connected over TCP", events.some((e) => e[0] === "connected"), `events: ${names}`);
report("refused: connection closed by the server", closed, `no close within 10 s (the client hangs); events: ${names}`);
report("refused at once (< 2 s)", closed && Date.now() - t0 < 2000, `${Date.now() - t0} ms`);
report("no server version sent", !events.some((e) => e[0] === "server"), `events: ${names}`);
console.log(`RESULT - ${passed} ${failed}`);
process.exit(0);
