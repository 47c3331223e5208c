#!/usr/bin/env node
// Drives sluice's web console in headless Debian Chromium with playwright-core.
//
// Starts a sluice broker (SLUICE_BIN, default target/release/sluice) on free loopback ports,
// fills it with the sluice CLI (topics, records with chosen timestamps, a group that
// consumed part of them), then checks in the browser: every page loads without a script
// error, the message browser finds a produced record by offset and by timestamp, a record
// holding <script> renders as text (no dialog opens), the lag shown for the group matches
// `sluice group describe --format json`, and a topic created through the confirm flow
// exists for the CLI. Screenshots go to target/console-screenshots/.
//
//   node compat-tests/console/console.test.js      (CHROMIUM=/usr/bin/chromium by default)
"use strict";

const { chromium } = require("playwright-core");
const { spawn, execFileSync } = require("child_process");
const fs = require("fs");
const net = require("net");
const os = require("os");
const path = require("path");

const root = path.resolve(__dirname, "..", "..");
const bin = path.resolve(root, process.env.SLUICE_BIN || "target/release/sluice");
const shots = path.join(root, "target", "console-screenshots");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function assert(cond, msg) {
  if (!cond) throw new Error("assertion failed: " + msg);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let kafkaPort;
function cli(args, input) {
  return execFileSync(bin, [...args, "-b", `127.0.0.1:${kafkaPort}`], {
    input: input === undefined ? "" : input,
    encoding: "utf8",
    timeout: 30000,
  });
}

async function waitReady(adminPort, broker) {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (broker.exitCode !== null) throw new Error("sluice exited with " + broker.exitCode);
    try {
      const r = await fetch(`http://127.0.0.1:${adminPort}/v1/ready`);
      if (r.status === 200) return;
    } catch (e) {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error("sluice not ready within 30 s");
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-console-"));
  kafkaPort = await freePort();
  const adminPort = await freePort();
  const logPath = path.join(dataDir, "broker.log");
  const log = fs.openSync(logPath, "w");
  const broker = spawn(
    bin,
    [
      "serve",
      "--listen", `127.0.0.1:${kafkaPort}`,
      "--admin-listen", `127.0.0.1:${adminPort}`,
      "--data-dir", path.join(dataDir, "data"),
    ],
    { stdio: ["ignore", log, log] }
  );
  let browser;
  let failed = false;
  try {
    await waitReady(adminPort, broker);
    const base = `http://127.0.0.1:${adminPort}`;

    // Data, through the CLI (the Kafka protocol), as a user would produce it.
    cli(["topic", "create", "pw.orders", "-p", "3"]);
    const t0 = Date.now() - 60000;
    const lines = [];
    for (let i = 0; i < 8; i++) lines.push(`order-${i}\t{"id":${i},"total":${i * 10}}`);
    cli(["produce", "pw.orders", "-p", "0", "-k", "\t", "--timestamp", String(t0), "-q"], lines.join("\n") + "\n");
    const needleTs = t0 + 5000;
    const produced = JSON.parse(
      cli(
        ["produce", "pw.orders", "-p", "0", "-k", "\t", "-H", "source=playwright", "--timestamp", String(needleTs), "--format", "json"],
        "needle\tthe needle record\n"
      ).trim().split("\n").pop()
    );
    const needleOffset = produced.offset;
    assert(needleOffset === 8, "needle at offset 8, got " + needleOffset);
    cli(["produce", "pw.orders", "-p", "0", "-q"], "<script>alert(1)</script>\n");
    for (const p of ["1", "2"]) {
      cli(["produce", "pw.orders", "-p", p, "-q"], "a\nb\nc\nd\ne\n");
    }
    // A group that read part of the topic: 6 records, committed.
    cli(["consume", "pw.orders", "-g", "pw-group", "-o", "start", "-n", "6", "-f", "%v\\n"]);
    const describedAll = JSON.parse(cli(["group", "describe", "pw-group", "--format", "json"]));
    const described = Array.isArray(describedAll) ? describedAll[0] : describedAll;
    assert(described.partitions.length > 0, "the CLI describes the group's partitions");

    browser = await chromium.launch({
      executablePath: browserPath,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = [];
    page.on("pageerror", (e) => problems.push("page error: " + e.message));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push("console error: " + m.text());
    });
    page.on("dialog", async (d) => {
      problems.push("a dialog opened (script from a record ran): " + d.message());
      await d.dismiss();
    });
    page.on("request", (r) => {
      if (!r.url().startsWith(base)) problems.push("request outside the broker: " + r.url());
    });

    // Overview, with the throughput chart drawn by the embedded script.
    let resp = await page.goto(base + "/");
    assert(resp.status() === 200, "overview 200");
    assert((await page.textContent("#overview")).includes("Broker id"), "overview shows the broker");
    await page.waitForFunction(() => {
      const s = document.getElementById("chart-records");
      return s && s.getAttribute("data-samples") !== null;
    }, null, { timeout: 10000 });
    await page.screenshot({ path: path.join(shots, "overview.png"), fullPage: true });

    // Topics and a topic.
    await page.click("nav >> text=Topics");
    await page.click("#topics >> text=pw.orders");
    assert((await page.title()).includes("pw.orders"), "topic page");
    const hw0 = await page.textContent("#partitions tbody tr:nth-child(1) td:nth-child(5)");
    assert(hw0.trim() === "10", "partition 0 high watermark 10, got " + hw0);
    await page.screenshot({ path: path.join(shots, "topic.png"), fullPage: true });

    // The message browser: by offset.
    await page.goto(`${base}/console/topics/pw.orders/messages`);
    await page.fill("input[name=partition]", "0");
    await page.fill("input[name=offset]", String(needleOffset));
    await page.fill("input[name=timestamp]", "");
    await page.click("#browse button");
    let first = page.locator("#records tr.record").first();
    assert((await first.getAttribute("data-offset")) === String(needleOffset), "by offset: first row is the needle");
    assert((await first.textContent()).includes("the needle record"), "needle value shown");
    assert((await first.locator("td.headers").textContent()).includes("playwright"), "needle header shown");
    // The record holding <script> is the next one, shown as text.
    const evil = page.locator(`#records tr.record[data-offset="${needleOffset + 1}"] td.value`);
    assert((await evil.textContent()).includes("<script>alert(1)</script>"), "script record rendered as text");
    await page.screenshot({ path: path.join(shots, "messages.png"), fullPage: true });

    // By timestamp: the needle is the first record at or after its timestamp.
    await page.fill("input[name=offset]", "");
    await page.fill("input[name=timestamp]", String(needleTs));
    await page.click("#browse button");
    first = page.locator("#records tr.record").first();
    assert((await first.getAttribute("data-offset")) === String(needleOffset), "by timestamp: first row is the needle");
    assert((await first.getAttribute("data-timestamp")) === String(needleTs), "needle timestamp");

    // JSON rendering.
    await page.goto(`${base}/console/topics/pw.orders/messages?partition=0&offset=3&limit=1&format=json`);
    const pretty = await page.textContent("#records tr.record td.value pre.json");
    assert(JSON.parse(pretty).total === 30, "JSON value pretty-printed: " + pretty);

    // Group lag matches the CLI's.
    await page.goto(`${base}/console/groups`);
    await page.click("#groups >> text=pw-group");
    const rows = await page.$$eval("#lag tr.lag", (trs) =>
      trs.map((tr) => ({
        topic: tr.dataset.topic,
        partition: Number(tr.dataset.partition),
        lag: tr.dataset.lag,
      }))
    );
    const cliLag = described.partitions.map((p) => ({
      topic: p.topic,
      partition: p.partition,
      lag: p.lag === null ? "-" : String(p.lag),
    }));
    const key = (r) => `${r.topic}/${r.partition}=${r.lag}`;
    assert(
      JSON.stringify(rows.map(key).sort()) === JSON.stringify(cliLag.map(key).sort()),
      `console lag ${JSON.stringify(rows)} equals the CLI's ${JSON.stringify(cliLag)}`
    );
    assert(
      (await page.textContent("#total-lag")).trim() === String(described.total_lag),
      "total lag equals the CLI's"
    );
    await page.screenshot({ path: path.join(shots, "group.png"), fullPage: true });

    // Broker configuration.
    await page.click("nav >> text=Broker config");
    assert((await page.textContent("#broker-config")).includes("num.partitions"), "broker config listed");
    await page.screenshot({ path: path.join(shots, "broker-config.png"), fullPage: true });

    // Create a topic through the confirm flow.
    await page.goto(`${base}/console/create-topic`);
    await page.fill("#create input[name=name]", "pw.created");
    await page.fill("#create input[name=partitions]", "2");
    await page.fill("#create textarea[name=configs]", "cleanup.policy=compact");
    await page.click("#create button");
    assert((await page.textContent(".confirm")).includes("pw.created"), "confirm page names the topic");
    assert(!cli(["topic", "list"]).includes("pw.created"), "nothing created before confirming");
    await page.screenshot({ path: path.join(shots, "confirm.png"), fullPage: true });
    await page.click("#confirm button");
    assert((await page.textContent("#done")).includes("pw.created"), "created");
    assert(cli(["topic", "list"]).includes("pw.created"), "the CLI sees the created topic");

    assert(problems.length === 0, problems.join("\n"));
    console.log(`console.test.js: ok (screenshots in ${path.relative(root, shots)}/)`);
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    if (browser) await browser.close();
    broker.kill("SIGTERM");
    await new Promise((r) => (broker.exitCode !== null ? r() : broker.once("exit", r)));
    if (failed) {
      console.error("broker log tail:\n" + fs.readFileSync(logPath, "utf8").split("\n").slice(-30).join("\n"));
    } else {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exitCode = 1;
});
