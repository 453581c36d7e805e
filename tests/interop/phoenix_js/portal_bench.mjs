// The portal's speed (issue 3, "Speed"): many client sockets on one portal, then
//   create_flow -> flow_created latency at a steady rate (p50, p99; bar p99 < 20 ms), and
//   revoke (DELETE /v1/policies/{id}) -> reject_access at the gateway (p99; bar < 100 ms).
// It starts nothing: tests/bench/portal_bench.sh starts the portal, runs this, and prints the portal's peak RSS.
//
// Environment (the script sets the first four):
//   PORTAL_URL        wss://127.0.0.1:PORT/socket/websocket
//   PORTAL_CA_FILE    the portal's CA (DIR/tls/ca-cert.pem)
//   ADMIN_URL         https://127.0.0.1:APORT
//   ADMIN_TOKEN_FILE  DIR/admin-token
//   BENCH_CLIENTS 1000, BENCH_RATE 200 (create_flow per second), BENCH_SECONDS 10, BENCH_REVOKES 50,
//   BENCH_RESOURCES 10 (resources the flows spread over)
// Prints the figures on stdout (progress on stderr); exit 1 when the run itself failed (a refused call,
// lost replies), not when a bar is missed.
import fs from "node:fs";
import https from "node:https";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Socket } from "phoenix";
import { caWebSocket, randomPublicKey } from "./ca_websocket.mjs";

const env = (name, fallback) => process.env[name] ?? fallback;
const intEnv = (name, fallback) => {
  const v = Number.parseInt(env(name, String(fallback)), 10);
  if (!Number.isFinite(v) || v <= 0) die(`${name} must be a positive integer`);
  return v;
};
function die(why) {
  console.error(`portal_bench: ${why}`);
  process.exit(1);
}

const cfg = {
  url: env("PORTAL_URL"),
  ca: env("PORTAL_CA_FILE"),
  adminUrl: env("ADMIN_URL"),
  tokenFile: env("ADMIN_TOKEN_FILE"),
  clients: intEnv("BENCH_CLIENTS", 1000),
  rate: intEnv("BENCH_RATE", 200),
  seconds: intEnv("BENCH_SECONDS", 10),
  revokes: intEnv("BENCH_REVOKES", 50),
  resources: intEnv("BENCH_RESOURCES", 10),
};
for (const k of ["url", "ca", "adminUrl", "tokenFile"]) if (!cfg[k]) die(`missing setting ${k} (see the header)`);
if (cfg.revokes > cfg.clients) die("BENCH_REVOKES may not exceed BENCH_CLIENTS");

const ca = fs.readFileSync(cfg.ca);
const adminToken = fs.readFileSync(cfg.tokenFile, "utf8").trim();
const Transport = caWebSocket(cfg.ca);
const endpoint = cfg.url.replace(/\/websocket\/?$/, ""); // phoenix appends "/websocket" itself
const nowMs = () => Number(process.hrtime.bigint()) / 1e6; // monotonic, sub-millisecond
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const progress = (msg) => console.error(`portal_bench: ${msg}`);

// ---- the admin API over HTTPS, kept-alive connections ----------------------------------------------

const agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca });

function api(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      new URL(path, cfg.adminUrl),
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${adminToken}`,
          ...(data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {}),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (text += c));
        res.on("end", () => {
          if (res.statusCode >= 300) reject(new Error(`${method} ${path}: HTTP ${res.statusCode} ${text}`));
          else resolve(text ? JSON.parse(text) : {});
        });
      },
    );
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

/// fn(0..n-1) with at most `width` in flight; the results in order.
async function pool(n, width, fn) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
  return out;
}

// ---- phoenix sockets ---------------------------------------------------------------------------------

/// A joined channel on its own socket; `init` is the first "init" push.
function joinPeer(topic, token, handlers = {}) {
  return new Promise((resolve, reject) => {
    const socket = new Socket(endpoint, {
      transport: Transport,
      params: { token, public_key: randomPublicKey() },
      reconnectAfterMs: () => 60_000,
      rejoinAfterMs: () => 60_000,
      timeout: 20_000,
    });
    const channel = socket.channel(topic, {});
    for (const [event, fn] of Object.entries(handlers)) channel.on(event, fn);
    const timer = setTimeout(() => fail(new Error(`no init on "${topic}" within 30 s`)), 30_000);
    const fail = (e) => {
      clearTimeout(timer);
      socket.disconnect();
      reject(e);
    };
    socket.onError((e) => fail(new Error(`socket error on "${topic}": ${e?.message ?? e}`)));
    channel.on("init", (init) => {
      clearTimeout(timer);
      resolve({ socket, channel, init });
    });
    socket.connect();
    channel
      .join()
      .receive("error", (r) => fail(new Error(`join "${topic}" refused: ${JSON.stringify(r)}`)))
      .receive("timeout", () => fail(new Error(`join "${topic}" timed out`)));
  });
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
const fmt = (ms) => (Number.isFinite(ms) ? ms.toFixed(2) : "n/a");

// ---- the run -------------------------------------------------------------------------------------------

async function main() {
  const t0 = nowMs();
  progress(`setting up: ${cfg.clients} users and clients, ${cfg.resources} + ${cfg.revokes} resources...`);
  const site = await api("POST", "/v1/sites", { name: "bench" });
  const gateway = await api("POST", "/v1/gateways", { site_id: site.id, name: "bench-gateway" });
  const group = await api("POST", "/v1/groups", { name: "bench" });
  const resource = (name, k, octet) =>
    api("POST", "/v1/resources", { site_id: site.id, name: `${name}-${k}`, address: `10.${octet}.${k}.0/24` });
  const shared = await pool(cfg.resources, 8, (k) => resource("shared", k, 1));
  const revocable = await pool(cfg.revokes, 8, (k) => resource("revocable", k, 2));
  await pool(shared.length, 8, (k) => api("POST", "/v1/policies", { group_id: group.id, resource_id: shared[k].id }));
  const revokePolicies = await pool(revocable.length, 8, (k) =>
    api("POST", "/v1/policies", { group_id: group.id, resource_id: revocable[k].id }),
  );
  const clients = await pool(cfg.clients, 16, async (i) => {
    const user = await api("POST", "/v1/users", { name: `user-${i}`, email: `user-${i}@bench.example` });
    await api("POST", `/v1/groups/${group.id}/members`, { user_id: user.id });
    return api("POST", "/v1/clients", { user_id: user.id, name: `device-${i}` });
  });
  const setupS = (nowMs() - t0) / 1000;
  progress(`admin setup took ${setupS.toFixed(1)} s`);

  // The gateway answers every authorize_flow at once and timestamps every reject_access.
  const rejects = new Map(); // "client_id resource_id" -> receive time
  const rejectWaiters = new Map();
  let authorizations = 0;
  const gw = await joinPeer("gateway", gateway.token, {
    authorize_flow: (p) => {
      authorizations++;
      gw.channel.push("flow_authorized", { ref: p.ref });
    },
    reject_access: (p) => {
      const key = `${p.client_id} ${p.resource_id}`;
      rejects.set(key, nowMs());
      rejectWaiters.get(key)?.();
    },
  });

  // The clients; each keeps its outstanding create_flow send times by resource.
  let failed = 0;
  const failures = new Map();
  const latencies = [];
  const timeline = []; // [sent at, latency], for BENCH_DEBUG
  const flowWaiters = new Map(); // "client_id resource_id" -> resolve
  const t1 = nowMs();
  const peers = await pool(cfg.clients, 50, async (i) => {
    const pending = new Map();
    const id = clients[i].id;
    const peer = await joinPeer("client", clients[i].token, {
      flow_created: (p) => {
        const sent = pending.get(p.resource_id);
        if (sent === undefined) return;
        pending.delete(p.resource_id);
        latencies.push(nowMs() - sent.at);
        timeline.push([sent.at, nowMs() - sent.at]);
        sent.done();
        flowWaiters.get(`${id} ${p.resource_id}`)?.();
      },
      flow_creation_failed: (p) => {
        const sent = pending.get(p.resource_id);
        if (sent === undefined) return;
        pending.delete(p.resource_id);
        failed++;
        failures.set(p.reason, (failures.get(p.reason) ?? 0) + 1);
        sent.done();
      },
    });
    return { ...peer, id, pending };
  });
  const connectS = (nowMs() - t1) / 1000;
  progress(`${peers.length} client sockets joined in ${connectS.toFixed(1)} s`);
  await sleep(500); // let the joins' tail (presence, init) settle before measuring

  // create_flow at a steady rate, round-robin over the clients; no client asks twice for one resource.
  const total = cfg.rate * cfg.seconds;
  let outstanding = 0;
  let allDone;
  const finished = new Promise((r) => (allDone = r));
  const createFlow = (peer, resourceId, onDone = () => {}) => {
    outstanding++;
    peer.pending.set(resourceId, {
      at: nowMs(),
      done: () => {
        onDone();
        if (--outstanding === 0 && sent === total) allDone();
      },
    });
    peer.channel
      .push("create_flow", { resource_id: resourceId, connected_gateway_ids: [] })
      .receive("error", (r) => {
        if (!peer.pending.delete(resourceId)) return;
        failed++;
        failures.set(`error reply: ${r?.reason}`, (failures.get(`error reply: ${r?.reason}`) ?? 0) + 1);
        if (--outstanding === 0 && sent === total) allDone();
      });
  };
  progress(`create_flow at ${cfg.rate}/s for ${cfg.seconds} s (${total} flows)...`);
  let sent = 0;
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const start = nowMs();
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((nowMs() - start) / 1000) * cfg.rate));
      while (sent < due) {
        const i = sent++;
        const c = i % cfg.clients;
        const round = Math.floor(i / cfg.clients);
        createFlow(peers[c], shared[(c + round) % shared.length].id);
      }
      if (sent === total) {
        clearInterval(tick);
        resolve();
      }
    }, 2);
  });
  if (outstanding === 0) allDone();
  const drained = await Promise.race([finished.then(() => true), sleep(15_000).then(() => false)]);
  loopDelay.disable();
  const lost = outstanding;
  const flowLatencies = latencies.splice(0).sort((a, b) => a - b); // the revoke phase's flows are not counted
  const flowFailed = failed;
  if (process.env.BENCH_DEBUG) {
    // Per second of the run: how many flows were sent, and their p50/p99.
    const bySecond = new Map();
    for (const [at, ms] of timeline) {
      const sec = Math.floor((at - start) / 1000);
      if (!bySecond.has(sec)) bySecond.set(sec, []);
      bySecond.get(sec).push(ms);
    }
    for (const [sec, list] of [...bySecond].sort((a, b) => a[0] - b[0])) {
      list.sort((a, b) => a - b);
      progress(`second ${sec}: ${list.length} flows, p50 ${fmt(percentile(list, 50))} ms, p99 ${fmt(percentile(list, 99))} ms`);
    }
  }

  // Revocation: one live flow per revocable resource, then its policy deleted, one at a time.
  progress(`revoking ${cfg.revokes} policies...`);
  await Promise.all(
    revocable.map(
      (r, k) =>
        new Promise((resolve, reject) => {
          const key = `${peers[k].id} ${r.id}`;
          const timer = setTimeout(() => reject(new Error(`no flow_created for revocable resource ${k}`)), 15_000);
          flowWaiters.set(key, () => {
            clearTimeout(timer);
            resolve();
          });
          createFlow(peers[k], r.id);
        }),
    ),
  );
  const revokeLatencies = [];
  const httpLatencies = [];
  let missing = 0;
  for (let k = 0; k < cfg.revokes; k++) {
    const key = `${peers[k].id} ${revocable[k].id}`;
    const arrived = new Promise((resolve) => rejectWaiters.set(key, resolve));
    const before = nowMs();
    const answer = await api("DELETE", `/v1/policies/${revokePolicies[k].id}`);
    httpLatencies.push(nowMs() - before);
    if (!answer.flows_revoked) progress(`policy ${k}: the portal revoked no flow (${JSON.stringify(answer)})`);
    const got = await Promise.race([arrived.then(() => true), sleep(2_000).then(() => false)]);
    if (got) revokeLatencies.push(rejects.get(key) - before);
    else missing++;
    await sleep(20);
  }
  revokeLatencies.sort((a, b) => a - b);
  httpLatencies.sort((a, b) => a - b);

  for (const p of [...peers, gw]) p.socket.disconnect();
  agent.destroy();

  const p50 = percentile(flowLatencies, 50);
  const p99 = percentile(flowLatencies, 99);
  const r99 = percentile(revokeLatencies, 99);
  const why = [...failures].map(([k, v]) => `${v}x ${k}`).join(", ");
  console.log(
    `portal bench: ${cfg.clients} client sockets (joined in ${connectS.toFixed(1)} s; admin setup ${setupS.toFixed(1)} s); ` +
      `${total} create_flow at ${cfg.rate}/s: ${flowLatencies.length} flow_created, ${flowFailed} failed${why ? ` (${why})` : ""}` +
      `${lost ? `, ${lost} unanswered` : ""}; the gateway authorized ${authorizations} (with the ${cfg.revokes} to revoke)`,
  );
  console.log(`create_flow→flow_created p50 ${fmt(p50)} ms, p99 ${fmt(p99)} ms (bar: p99 < 20 ms)` +
              `  [max ${fmt(flowLatencies.at(-1))} ms; Node's own event-loop delay p99 ${fmt(loopDelay.percentile(99) / 1e6)} ms]`);
  console.log(`revoke→reject_access p99 ${fmt(r99)} ms (bar: < 100 ms)` +
              `  [p50 ${fmt(percentile(revokeLatencies, 50))} ms over ${revokeLatencies.length} revokes` +
              `${missing ? `, ${missing} never arrived` : ""}; the DELETE itself p50 ${fmt(percentile(httpLatencies, 50))} ms]`);
  if (!drained || failed || missing || !flowLatencies.length || !revokeLatencies.length) {
    console.error("portal_bench: the run is incomplete (see the counts above); the figures are not trustworthy");
    process.exit(1);
  }
  process.exit(0);
}

main().catch((e) => die(e.stack || String(e)));
