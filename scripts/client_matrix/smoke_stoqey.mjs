// Smoke test of @stoqey/ib (the TypeScript port of IB's API, npm) against ibot.sim: the scenario of
// smoke_ibapi.py as far as the library allows. Run by run_node.py, which starts the simulator:
//   NODE_PATH=<dir>/node_modules node smoke_stoqey.mjs <port> <simulator's max server version>
// Prints PASS / FAIL lines and a last `RESULT <server version> <passed> <failed>` line for run.sh. Every
// decoder complaint (an error event for unread fields, an underrun, an unknown message) counts as a failure.
// `NOTE library bug:` lines name what the library itself gets wrong (neither passed nor failed).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url); // CommonJS resolution: honours NODE_PATH
const { IBApi, EventName, MIN_SERVER_VER } = require("@stoqey/ib");

const PORT = Number(process.argv[2]);
const SIM_MAX = Number(process.argv[3] ?? 178);
const CLIENT_ID = 7;
const WAIT_MS = 10000;
const ACCOUNT = "DU123456";
// The library offers v100..CME_TAGGING_FIELDS_IN_OPEN_ORDER (its MAX_SUPPORTED_SERVER_VERSION).
const CLIENT_MAX = MIN_SERVER_VER.CME_TAGGING_FIELDS_IN_OPEN_ORDER;

let passed = 0;
let failed = 0;
let serverVersion = "-";
const ok = (name) => {
  passed += 1;
  console.log(`PASS ${name}`);
};
const fail = (name, why) => {
  failed += 1;
  console.log(`FAIL ${name}: ${String(why).replace(/\s+/g, " ").slice(0, 400)}`);
};
const note = (what) => console.log(`NOTE library bug: ${what}`);
const check = (cond, why) => {
  if (!cond) throw new Error(typeof why === "string" ? why : JSON.stringify(why));
};
async function run(name, fn) {
  try {
    await fn();
    ok(name);
  } catch (e) {
    fail(name, e?.message ?? e);
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const close = (a, b) => Math.abs(a - b) < 1e-9;

// Decoder complaints: the library reports them as error events with these texts.
const DECODER_ERROR = /unprocessed data left on queue|Underrun error|No parser implementation|Decoding error/;

/** One connection: every event recorded as [name, ...args] in arrival order; `wait` for one matching. */
class Client {
  constructor(port, clientId) {
    this.events = [];
    this.waiters = [];
    this.decoderErrors = [];
    this.ib = new IBApi({ host: "127.0.0.1", port, clientId });
    this.ib.on(EventName.all, (name, args) => this.add(name, args)); // every event, errors included
    this.ib.on(EventName.error, () => {}); // an EventEmitter throws on an "error" event nobody listens to
  }
  add(name, args) {
    if (name === EventName.all || name === EventName.received || name === EventName.sent) return;
    if (name === EventName.error || name === EventName.info) {
      const text = args[0] instanceof Error ? args[0].message : String(args[0]);
      if (DECODER_ERROR.test(text)) this.decoderErrors.push(text.slice(0, 300));
    }
    const event = [name, ...args];
    this.events.push(event);
    const met = this.waiters.filter((w) => w.name === name && w.test(args));
    this.waiters = this.waiters.filter((w) => !met.includes(w));
    for (const w of met) w.resolve(args);
  }
  of(name) {
    return this.events.filter((e) => e[0] === name).map((e) => e.slice(1));
  }
  wait(name, test = () => true, ms = WAIT_MS) {
    const found = this.of(name).find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const names = [...new Set(this.events.map((e) => e[0]))].sort();
        reject(new Error(`no matching ${name} within ${ms / 1000} s (got ${names.join(",")})`));
      }, ms);
      this.waiters.push({ name, test, resolve: (v) => (clearTimeout(timer), resolve(v)) });
    });
  }
  async waitMore(name, before) {
    const deadline = Date.now() + WAIT_MS;
    while (this.of(name).length <= before) {
      if (Date.now() > deadline) throw new Error(`no new ${name}`);
      await sleep(20);
    }
  }
  errorEvent(reqId, code) {
    // error events: (Error, code, reqId, advancedOrderReject); info (reqId -1): (message, code)
    return Promise.race([
      this.wait(EventName.error, (e) => e[1] === code && (reqId === undefined || e[2] === reqId)),
      reqId === undefined || reqId === -1 ? this.wait(EventName.info, (e) => e[1] === code) : new Promise(() => {}),
    ]);
  }
}

const mes = (symbol = "MES") => ({
  symbol,
  secType: "FUT",
  exchange: "CME",
  currency: "USD",
  lastTradeDateOrContractMonth: "202506",
});
const order = (action, qty, orderType = "MKT", lmtPrice) => ({
  action,
  orderType,
  totalQuantity: qty,
  ...(lmtPrice === undefined ? {} : { lmtPrice }),
  transmit: true,
});

async function main() {
  const app = new Client(PORT, CLIENT_ID);
  app.ib.connect();
  const [nextId] = await app.wait(EventName.nextValidId);
  serverVersion = app.ib.serverVersion;
  const want = Math.min(CLIENT_MAX, SIM_MAX);
  (serverVersion === want ? ok : (n, w) => fail(n, w))("connect: negotiated version", `${serverVersion} != ${want}`);

  await run("managed accounts", async () => {
    const [accounts] = await app.wait(EventName.managedAccounts);
    check(accounts.split(",").includes(ACCOUNT), accounts);
  });

  await run("contract details MES", async () => {
    app.ib.reqContractDetails(1, mes());
    await app.wait(EventName.contractDetailsEnd, (e) => e[0] === 1);
    const got = app.of(EventName.contractDetails).filter((e) => e[0] === 1);
    check(got.length === 1, `${got.length} contract details`);
    const cd = got[0][1];
    const k = cd.contract;
    const fields = [k.localSymbol, k.exchange, k.currency, k.multiplier, cd.minTick, cd.timeZoneId];
    check(JSON.stringify(fields) === JSON.stringify(["MESM5", "CME", "USD", 5, 0.25, "US/Central"]), fields);
    check(k.conId > 0 && cd.longName && cd.realExpirationDate === "20250620", cd);
    check(cd.marketRuleIds && cd.tradingHours, cd);
    // TWS sends "20250620 08:30 US/Central"; the library splits it with the string "\\s+" (not a regex, as in
    // IB's Java), so the whole text stays in lastTradeDateOrContractMonth: its bug, noted, not a failure.
    const last = k.lastTradeDateOrContractMonth;
    if (last === "20250620 08:30 US/Central") note(`lastTradeDateOrContractMonth not split: ${JSON.stringify(last)}`);
    else check(last === "20250620" && cd.lastTradeTime === "08:30", [last, cd.lastTradeTime]);
    check(cd.minSize === 1 && cd.sizeIncrement === 1, [cd.minSize, cd.sizeIncrement]);
  });

  await run("contract of contract details used again", async () => {
    // as the library decoded it: lastTradeDateOrContractMonth still carries the time and zone (see above)
    const [[, cd]] = app.of(EventName.contractDetails).filter((e) => e[0] === 1);
    app.ib.reqContractDetails(8, { ...cd.contract, conId: 0, localSymbol: "" });
    await app.wait(EventName.contractDetailsEnd, (e) => e[0] === 8);
    const got = app.of(EventName.contractDetails).filter((e) => e[0] === 8).map((e) => e[1].contract.localSymbol);
    check(JSON.stringify(got) === JSON.stringify(["MESM5"]), got);
  });

  await run("contract details unknown symbol -> 200", async () => {
    app.ib.reqContractDetails(2, mes("NOPE"));
    await app.errorEvent(2, 200);
  });

  const contract = mes();
  await run("market data ticks", async () => {
    app.ib.reqMktData(3, contract, "", false, false);
    const [, , bid] = await app.wait(EventName.tickPrice, (e) => e[0] === 3 && e[1] === 1 && e[2] > 0);
    const [, , ask] = await app.wait(EventName.tickPrice, (e) => e[0] === 3 && e[1] === 2 && e[2] > 0);
    await app.wait(EventName.tickSize, (e) => e[0] === 3 && (e[1] === 0 || e[1] === 3) && e[2] > 0);
    check(ask - bid > 0 && ask - bid <= 1.0, [bid, ask]);
    const [, minTick] = await app.wait(EventName.tickReqParams, (e) => e[0] === 3);
    // TICK_REQ_PARAMS' minTick is a double (0.25); the library reads it with parseInt
    if (minTick === 0) note("tickReqParams minTick read as an integer: 0.25 -> 0");
    else check(minTick === 0.25, `minTick ${minTick}`);
  });

  for (const [fmt, req] of [
    [1, 4],
    [2, 5],
  ]) {
    await run(`historical bars formatDate=${fmt}`, async () => {
      app.ib.reqHistoricalData(req, contract, "", "3600 S", "1 min", "TRADES", 0, fmt, false);
      // the library marks the end with a pseudo bar dated "finished-<start>-<end>"
      await app.wait(EventName.historicalData, (e) => e[0] === req && String(e[1]).startsWith("finished"));
      const bars = app.of(EventName.historicalData).filter((e) => e[0] === req && !String(e[1]).startsWith("finished"));
      check(bars.length >= 55, `${bars.length} bars`);
      const [, date, , high, low] = bars[bars.length - 1];
      check(fmt === 2 ? /^\d+$/.test(date) : date.startsWith("20250305 "), date);
      check(high >= low && low > 0, bars[bars.length - 1]);
    });
  }

  const mktId = nextId;
  await run("MKT order filled, execDetails + commission", async () => {
    app.ib.placeOrder(mktId, contract, order("BUY", 2));
    await app.wait(EventName.orderStatus, (e) => e[0] === mktId && e[1] === "Filled");
    const [, k, ex] = await app.wait(EventName.execDetails, (e) => e[2].orderId === mktId);
    check(ex.side === "BOT" && ex.shares === 2 && k.localSymbol === "MESM5", ex);
    check(ex.clientId === CLIENT_ID && ex.permId > 0 && ex.acctNumber === ACCOUNT, ex);
    const [report] = await app.wait(EventName.commissionReport, (e) => e[0].execId === ex.execId);
    check(close(report.commission, 1.24) && report.currency === "USD", report);
    const [, ok_k, o] = await app.wait(EventName.openOrder, (e) => e[0] === mktId);
    check(o.action === "BUY" && o.orderType === "MKT" && o.totalQuantity === 2 && o.clientId === CLIENT_ID, o);
    check(o.permId > 0 && ok_k.localSymbol === "MESM5", o);
  });

  const [, , bid] = await app.wait(EventName.tickPrice, (e) => e[0] === 3 && e[1] === 1);
  const lmtId = nextId + 1;
  await run("LMT placed, modified, cancelled", async () => {
    app.ib.placeOrder(lmtId, contract, order("BUY", 1, "LMT", bid - 25));
    await app.wait(EventName.orderStatus, (e) => e[0] === lmtId && e[1] === "Submitted");
    app.ib.placeOrder(lmtId, contract, order("BUY", 1, "LMT", bid - 20));
    await app.wait(EventName.openOrder, (e) => e[0] === lmtId && close(e[2].lmtPrice, bid - 20));
    app.ib.cancelOrder(lmtId);
    await app.wait(EventName.orderStatus, (e) => e[0] === lmtId && e[1] === "Cancelled");
  });

  await run("positions", async () => {
    app.ib.reqPositions();
    await app.wait(EventName.positionEnd);
    const got = app.of(EventName.position).map(([acct, k, pos, avg]) => [acct, k.localSymbol, pos, avg > 0]);
    check(JSON.stringify(got) === JSON.stringify([[ACCOUNT, "MESM5", 2, true]]), got);
  });

  const restId = nextId + 2;
  await run("open orders", async () => {
    app.ib.placeOrder(restId, contract, order("SELL", 1, "LMT", bid + 25));
    await app.wait(EventName.orderStatus, (e) => e[0] === restId && e[1] === "Submitted");
    const before = app.of(EventName.openOrderEnd).length;
    app.ib.reqOpenOrders();
    await app.waitMore(EventName.openOrderEnd, before);
    const last = app.of(EventName.openOrder).at(-1);
    check(last[0] === restId && last[2].orderType === "LMT" && last[3].status === "Submitted", last);
  });

  await run("completed orders", async () => {
    app.ib.reqCompletedOrders(true);
    await app.wait(EventName.completedOrdersEnd);
    const done = app.of(EventName.completedOrder);
    const got = done.map(([, o, st]) => [st.status, o.orderType, o.totalQuantity]).sort();
    check(JSON.stringify(got) === JSON.stringify([["Cancelled", "LMT", 1], ["Filled", "MKT", 2]]), got);
    check(done[0][0].localSymbol === "MESM5", done[0][0]);
  });

  await run("executions", async () => {
    app.ib.reqExecutions(6, {});
    await app.wait(EventName.execDetailsEnd, (e) => e[0] === 6);
    const got = app.of(EventName.execDetails).filter((e) => e[0] === 6).map(([, , ex]) => [ex.shares, ex.side]);
    check(JSON.stringify(got) === JSON.stringify([[2, "BOT"]]), got);
  });

  await run("account values / summary", async () => {
    app.ib.reqAccountUpdates(true, ACCOUNT);
    await app.wait(EventName.accountDownloadEnd);
    const keys = new Set(app.of(EventName.updateAccountValue).map((e) => e[0]));
    check(keys.has("NetLiquidation") && keys.has("TotalCashValue"), [...keys]);
    const portfolio = app.of(EventName.updatePortfolio).map(([k, pos]) => [k.localSymbol, pos]);
    check(JSON.stringify(portfolio) === JSON.stringify([["MESM5", 2]]), portfolio);
    app.ib.reqAccountSummary(7, "All", "NetLiquidation,TotalCashValue");
    await app.wait(EventName.accountSummaryEnd, (e) => e[0] === 7);
    const tags = new Set(app.of(EventName.accountSummary).filter((e) => e[0] === 7).map((e) => e[2]));
    check(tags.size === 2 && tags.has("NetLiquidation") && tags.has("TotalCashValue"), [...tags]);
  });

  await run("what-if order: margins, not placed", async () => {
    const probeId = nextId + 3;
    app.ib.placeOrder(probeId, contract, { ...order("SELL", 2), whatIf: true });
    const [, , o, st] = await app.wait(EventName.openOrder, (e) => e[0] === probeId);
    check(o.whatIf && st.initMarginChange === -3000 && st.initMarginAfter === 0, st);
    await sleep(200);
    check(!app.of(EventName.orderStatus).some((e) => e[0] === probeId), "what-if order was placed");
  });

  await run("duplicate client id -> 326", async () => {
    const other = new Client(PORT, CLIENT_ID);
    other.ib.connect();
    try {
      await other.errorEvent(undefined, 326);
      await other.wait(EventName.disconnected);
    } finally {
      other.ib.disconnect();
      app.decoderErrors.push(...other.decoderErrors);
    }
  });

  app.ib.cancelOrder(restId);
  await sleep(300);
  app.ib.disconnect();
  await sleep(100);
  if (app.decoderErrors.length === 0) ok("no decoder errors");
  else fail("no decoder errors", `${app.decoderErrors.length}: ${app.decoderErrors.slice(0, 3).join(" | ")}`);
}

try {
  await main();
} catch (e) {
  fail("session", e?.stack ?? e);
}
console.log(`RESULT ${serverVersion} ${passed} ${failed}`);
process.exit(0);
