// Interop: the official `phoenix` JavaScript client (ws as its Node transport) against a running portal.
//   1. a valid client token joins "client" (reply ok) and receives "init" with the tunnel interface;
//      a heartbeat on "phoenix" is answered; joining "gateway" with a client token is refused.
//   2. a bad token is refused at connect (onError, no open, no join).
// It starts nothing: tests/interop/phoenix_js_interop.sh starts the portal and makes the token.
//
//   node interop.mjs --url wss://127.0.0.1:PORT/socket/websocket (or .../socket: phoenix adds /websocket) --ca CA.pem --token fbc_... [--resource ID]
//   or the environment: PORTAL_URL, PORTAL_CA_FILE, CLIENT_TOKEN, RESOURCE_ID
// Exit 0 when every check passes; 1 with the failed check on stderr.
import { Socket } from "phoenix";
import { caWebSocket, randomPublicKey } from "./ca_websocket.mjs";

function options() {
  const o = {
    url: process.env.PORTAL_URL,
    ca: process.env.PORTAL_CA_FILE,
    token: process.env.CLIENT_TOKEN,
    resource: process.env.RESOURCE_ID,
  };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in o) || argv[i + 1] === undefined) usage(`unknown or incomplete argument ${argv[i]}`);
    o[key] = argv[i + 1];
  }
  for (const k of ["url", "ca", "token"]) if (!o[k]) usage(`missing --${k}`);
  return o;
}

function usage(why) {
  console.error(`interop: ${why}\nusage: node interop.mjs --url wss://HOST:PORT/socket/websocket --ca CA.pem --token TOKEN [--resource ID]`);
  process.exit(2);
}

class CheckFailed extends Error {}
const errorText = (e) => (e && (e.message || (e.error && e.error.message))) || String(e);
const check = (ok, what) => {
  if (!ok) throw new CheckFailed(what);
};

/// Resolves with `fn(resolve, reject)`'s result or rejects after `ms` with `what`.
function within(ms, what, fn) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new CheckFailed(`timed out after ${ms} ms: ${what}`)), ms);
    fn(
      (v) => { clearTimeout(timer); resolve(v); },
      (e) => { clearTimeout(timer); reject(e); },
    );
  });
}

/// phoenix's Socket takes the endpoint without the transport's suffix and appends "/websocket" itself.
function phoenixEndpoint(url) {
  return url.replace(/\/websocket\/?$/, "");
}

function newSocket(o, token) {
  return new Socket(phoenixEndpoint(o.url), {
    transport: caWebSocket(o.ca),
    params: { token, public_key: randomPublicKey() },
    heartbeatIntervalMs: 500,
    reconnectAfterMs: () => 60_000, // one attempt per test: no reconnect storm on a refusal
    logger: process.env.PHOENIX_DEBUG ? (kind, msg, data) => console.error(`phoenix ${kind}: ${msg}`, data) : undefined,
  });
}

async function validToken(o) {
  const socket = newSocket(o, o.token);
  try {
    const channel = socket.channel("client", {});
    const init = within(10_000, 'the "init" push after joining "client"', (resolve) => channel.on("init", resolve));
    init.catch(() => {}); // awaited below, after the join; a timeout here must not end the process first
    socket.connect();
    const joined = await within(10_000, 'the reply to phx_join on "client"', (resolve, reject) => {
      // A transport error (TLS, refused connect) says more than a join timeout would.
      socket.onError((e) => reject(new CheckFailed(`the socket failed with a valid token: ${errorText(e)}`)));
      channel
        .join()
        .receive("ok", resolve)
        .receive("error", (r) => reject(new CheckFailed(`join "client" refused: ${JSON.stringify(r)}`)))
        .receive("timeout", () => reject(new CheckFailed('join "client" timed out')));
    });
    console.log(`ok   joined "client" (reply ${JSON.stringify(joined)})`);

    const payload = await init;
    const iface = payload && payload.interface;
    check(iface && typeof iface === "object", `"init" has no "interface" object: ${JSON.stringify(payload)}`);
    check(/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+$/.test(iface.ipv4 || ""),
          `"init".interface.ipv4 is not in 100.64.0.0/10: ${JSON.stringify(iface.ipv4)}`);
    check(typeof iface.ipv6 === "string" && iface.ipv6.includes(":"),
          `"init".interface.ipv6 is not an IPv6 address: ${JSON.stringify(iface.ipv6)}`);
    check(Array.isArray(payload.resources), `"init".resources is not an array: ${JSON.stringify(payload.resources)}`);
    check(Array.isArray(payload.relays), `"init".relays is not an array: ${JSON.stringify(payload.relays)}`);
    if (o.resource)
      check(payload.resources.some((r) => r.id === o.resource),
            `"init".resources lacks the policy-covered resource ${o.resource}: ${JSON.stringify(payload.resources)}`);
    console.log(`ok   received "init": interface ${iface.ipv4} ${iface.ipv6}, ${payload.resources.length} resource(s)`);

    // A heartbeat on "phoenix" gets its phx_reply (phoenix itself would drop the socket otherwise).
    await within(5_000, 'a phx_reply to a heartbeat on "phoenix"', (resolve) =>
      socket.onMessage((m) => { if (m.topic === "phoenix" && m.event === "phx_reply" && m.payload.status === "ok") resolve(); }),
    );
    console.log('ok   heartbeat on "phoenix" answered');

    // A client token cannot join the gateway topic: an error reply, and the socket stays up.
    const wrong = socket.channel("gateway", {});
    const refusal = await within(10_000, 'the reply to phx_join on "gateway"', (resolve, reject) => {
      wrong
        .join()
        .receive("ok", () => reject(new CheckFailed('a client token joined "gateway"')))
        .receive("error", resolve)
        .receive("timeout", () => reject(new CheckFailed('join "gateway" got no reply')));
    });
    wrong.leave();
    await new Promise((r) => setTimeout(r, 200));
    check(socket.isConnected(), 'the socket closed after the refused "gateway" join');
    console.log(`ok   joining "gateway" with a client token refused (${JSON.stringify(refusal)})`);
    channel.leave();
  } finally {
    await new Promise((resolve) => socket.disconnect(resolve, 1000, "interop test done"));
  }
}

async function refusedToken(o, token, label) {
  const socket = newSocket(o, token);
  let opened = false;
  let joined = false;
  try {
    socket.onOpen(() => { opened = true; });
    const channel = socket.channel("client", {});
    channel.join().receive("ok", () => { joined = true; });
    const error = await within(10_000, `an error for the ${label} at connect`, (resolve) => {
      socket.onError((e) => resolve(e));
      socket.connect();
    });
    // Give a wrongly accepted socket the chance to open and join before judging.
    await new Promise((r) => setTimeout(r, 300));
    check(!opened, `the socket opened with the ${label}`);
    check(!joined, `joined "client" with the ${label}`);
    const why = errorText(error);
    check(/40[13]/.test(why), `the refusal of the ${label} is not an HTTP 401/403: ${why}`);
    console.log(`ok   ${label} refused at connect: ${why}`);
  } finally {
    await new Promise((resolve) => socket.disconnect(resolve, 1000, "interop test done"));
  }
}

async function main() {
  const o = options();
  try {
    await validToken(o);
    // Well-formed but unknown (right prefix, wrong secret), a token of no kind, and an empty one.
    const unknown = o.token.slice(0, 4) + "A".repeat(Math.max(8, o.token.length - 4));
    await refusedToken(o, unknown, "unknown client token");
    await refusedToken(o, "not-a-token", "malformed token");
    await refusedToken(o, "", "empty token");
  } catch (e) {
    console.error(`FAIL ${e instanceof CheckFailed ? e.message : e.stack || e}`);
    process.exit(1);
  }
  console.log("phoenix interop: all checks passed");
  process.exit(0);
}

main();
