// The Nomad jobs in deploy/nomad: each file parsed by HashiCorp's own HCL parser (the npm package
// @cdktf/hcl2json, Go compiled to WebAssembly; pinned in package-lock.json), then the values that make
// a rolling upgrade safe, keep secrets out of the job, and give the daemons what they need, asserted one
// by one. A broken file, a broken job and broken HCL are shown to fail too.
//
//   node nomad_jobs_test.mjs        (run_nomad_test.sh first runs `npm ci` when node_modules is missing)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { webcrypto } from 'node:crypto';

// Go's WebAssembly runtime needs globalThis.crypto, global only from Node 19 on (Debian 12 has 18).
if (!globalThis.crypto) globalThis.crypto = webcrypto;
const { parse } = await import('@cdktf/hcl2json');

const nomadDir = new URL('../../deploy/nomad/', import.meta.url);

async function load(name) {
  const text = await readFile(new URL(name, nomadDir), 'utf8');
  return { text, json: await parse(name, text) };
}

// ---- reading hcl2json's shape: every block is a list, labelled blocks are objects of lists ----------

/** The one element of a block list (a block given twice where once is meant is an error too). */
function only(list, what) {
  assert.ok(Array.isArray(list), `${what}: missing`);
  assert.equal(list.length, 1, `${what}: expected exactly one, found ${list.length}`);
  return list[0];
}

function job(json, name) {
  assert.ok(json.job && json.job[name], `no job "${name}" (jobs: ${Object.keys(json.job ?? {}).join(', ')})`);
  return only(json.job[name], `job "${name}"`);
}

function group(j, name) {
  assert.ok(j.group && j.group[name], `no group "${name}"`);
  return only(j.group[name], `group "${name}"`);
}

function task(g, name) {
  assert.ok(g.task && g.task[name], `no task "${name}"`);
  return only(g.task[name], `task "${name}"`);
}

/** A variable's default; hcl2json keeps `var.x` references as "${var.x}" strings. */
function resolve(value, json) {
  const m = typeof value === 'string' && /^\$\{var\.([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(value);
  if (!m) return value;
  const v = json.variable?.[m[1]];
  assert.ok(v, `variable "${m[1]}" is used but not declared`);
  const decl = only(v, `variable "${m[1]}"`);
  assert.ok('default' in decl, `variable "${m[1]}" has no default to check`);
  return decl.default;
}

/** A Go duration ("5s", "1m30s", "500ms") in seconds. */
function seconds(text) {
  assert.equal(typeof text, 'string', `duration ${JSON.stringify(text)} is not a string`);
  const unit = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  assert.ok(parts.length > 0 && parts.map((p) => p[0]).join('') === text, `"${text}" is not a duration`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2]], 0);
}

function env(t) {
  return Object.assign({}, ...(t.env ?? []));
}

/** Every check of the group's and the task's services, with the service it belongs to. */
function checks(g, t) {
  const services = [...(g.service ?? []), ...(t.service ?? [])];
  return services.flatMap((s) => (s.check ?? []).map((c) => ({ service: s, check: c })));
}

function ports(g) {
  return only(g.network, 'network').port ?? {};
}

function assertUpdate(g, { maxParallel = 1 } = {}) {
  const u = only(g.update, 'update');
  assert.equal(u.max_parallel, maxParallel, 'update.max_parallel');
  assert.equal(u.health_check, 'checks', 'update.health_check gates on the service checks');
  assert.equal(u.auto_revert, true, 'update.auto_revert');
  const minHealthy = seconds(u.min_healthy_time);
  const healthy = seconds(u.healthy_deadline);
  assert.ok(minHealthy >= 5, `min_healthy_time ${u.min_healthy_time}: too short to catch a crash after start`);
  assert.ok(healthy > minHealthy, 'healthy_deadline must exceed min_healthy_time');
  if (u.progress_deadline !== undefined)
    assert.ok(seconds(u.progress_deadline) > healthy, 'Nomad requires progress_deadline > healthy_deadline');
  return u;
}

/** kill_signal SIGTERM, and a kill_timeout above the daemons' 1 s goodbye flush, within Nomad's 30 s cap. */
function assertGracefulStop(t, { atLeast = 3 } = {}) {
  assert.equal(t.kill_signal, 'SIGTERM', 'kill_signal');
  const s = seconds(t.kill_timeout);
  assert.ok(s >= atLeast, `kill_timeout ${t.kill_timeout}: must leave the 1 s goodbye flush and teardown room`);
  assert.ok(s <= 30, `kill_timeout ${t.kill_timeout}: above the Nomad client's default max_kill_timeout (30s)`);
}

function assertHealthzCheck(g, t) {
  const found = checks(g, t).filter(({ check }) => check.path === '/healthz');
  assert.ok(found.length >= 1, 'a check on /healthz');
  for (const { service, check } of found) {
    assert.equal(check.type, 'http', '/healthz check type');
    const label = check.port ?? service.port;
    assert.ok(label in ports(g), `the /healthz check's port "${label}" is a port of the group's network`);
    assert.ok(seconds(check.timeout) < seconds(check.interval), 'check timeout below its interval');
  }
  return found;
}

/** The task's template whose destination is `path`. */
function templateAt(t, path) {
  const found = (t.template ?? []).filter((tpl) => tpl.destination === path);
  return only(found, `template rendering ${path}`);
}

// ---- the jobs ------------------------------------------------------------------------------------------

function checkGateway(json) {
  const j = job(json, 'firebreak-gateway');
  assert.equal(j.type, 'service');
  const g = group(j, 'gateway');
  const t = task(g, 'gateway');

  const count = resolve(g.count, json);
  assert.ok(Number.isInteger(count) && count >= 2, `count ${count}: a site needs 2+ gateways to roll one at a time`);
  assert.equal(only(g.meta, 'meta').site, '${var.site}', 'meta site from the site variable');

  const u = assertUpdate(g);
  assert.ok(u.canary === undefined || u.canary === 0, 'no canary: it would share the token of a running gateway');
  assertGracefulStop(t);
  assertHealthzCheck(g, t);

  // Its own network namespace (TUN names, routes and nftables tables never collide), the TUN device.
  assert.equal(only(g.network, 'network').mode, 'bridge', 'network mode');
  assert.ok(['exec', 'raw_exec'].includes(t.driver), `driver ${t.driver}`);
  const cfg = only(t.config, 'config');
  assert.match(cfg.command, /(^|\/)firebreak$/, 'runs the firebreak binary');
  assert.equal(cfg.args?.[0], 'gateway', 'as `firebreak gateway`');
  assert.ok(cfg.cap_add?.includes('net_admin'), 'cap_add has net_admin');
  assert.deepEqual(cfg.cap_drop, ['all'], 'every other capability dropped');
  assert.deepEqual(cfg.cap_add, ['net_admin'], 'net_admin and nothing else added');
  assert.ok(t.user && t.user !== 'root', 'not root (the exec driver ignores cap_add for root)');
  const tun = only(t.volume_mount, 'volume_mount');
  assert.equal(tun.destination, '/dev/net/tun', 'the TUN device mounted');
  assert.equal(only(g.volume?.[tun.volume], `volume "${tun.volume}"`).type, 'host');

  const e = env(t);
  assert.equal(e.FIREBREAK_PORTAL_URL, '${var.portal_url}', 'FIREBREAK_PORTAL_URL from a variable');
  assert.ok(e.FIREBREAK_HEALTH_LISTEN, 'FIREBREAK_HEALTH_LISTEN set');
  assert.match(e.FIREBREAK_HEALTH_LISTEN, /\$\{NOMAD_PORT_health\}$/, 'health listener on the "health" port');
  assert.ok(!('FIREBREAK_TOKEN' in e), 'no FIREBREAK_TOKEN in env: the token comes from a file');
  assert.match(e.FIREBREAK_TOKEN_FILE ?? '', /^\$\{NOMAD_SECRETS_DIR\}\//, 'token file in secrets/');
  const token = templateAt(t, e.FIREBREAK_TOKEN_FILE);
  assert.match(token.data, /\{\{.*nomadVar/, 'the token is rendered from a Nomad Variable');
  assert.match(token.data, /NOMAD_ALLOC_INDEX/, 'one token per allocation index');
  assert.equal(token.change_mode, 'noop', 'a token change does not restart every gateway at once');
}

function checkPortal(json) {
  const j = job(json, 'firebreak-portal');
  assert.equal(j.type, 'service');
  const g = group(j, 'portal');
  const t = task(g, 'portal');

  assert.equal(g.count, 1, 'exactly one portal: SQLite has a single writer');
  const u = assertUpdate(g);
  assert.ok(u.canary === undefined || u.canary === 0, 'no canary: one database, one static port');
  assertGracefulStop(t);
  assertHealthzCheck(g, t);

  const mount = only(t.volume_mount, 'volume_mount');
  const volume = only(g.volume?.[mount.volume], `volume "${mount.volume}"`);
  assert.equal(volume.type, 'host', 'the database on a host volume');
  assert.equal(volume.source, 'firebreak-portal');
  assert.notEqual(volume.read_only, true, 'the volume is writable');
  assert.notEqual(mount.read_only, true, 'the mount is writable');
  const e = env(t);
  assert.equal(e.FIREBREAK_PORTAL_DATA_DIR, mount.destination, 'the data dir is the volume mount');
  assert.ok(e.FIREBREAK_PORTAL_HEALTH_LISTEN, 'FIREBREAK_PORTAL_HEALTH_LISTEN set');
  assert.match(e.FIREBREAK_PORTAL_LISTEN ?? '', /\$\{NOMAD_PORT_wss\}$/, 'clients and gateways on the "wss" port');
  assert.match(e.FIREBREAK_PORTAL_ADMIN_LISTEN ?? '', /^127\.0\.0\.1:/, 'the admin API on loopback only');
  const p = ports(g);
  assert.ok('wss' in p && 'admin' in p && 'health' in p, 'ports wss, admin and health');
  const secret = templateAt(t, e.FIREBREAK_PORTAL_RELAY_SECRET_FILE);
  assert.match(e.FIREBREAK_PORTAL_RELAY_SECRET_FILE, /^\$\{NOMAD_SECRETS_DIR\}\//, 'relay secret in secrets/');
  assert.match(secret.data, /\{\{.*nomadVar/, 'the relay secret is rendered from a Nomad Variable');
}

function checkCoturn(json) {
  const j = job(json, 'firebreak-coturn');
  assert.equal(j.type, 'service');
  const g = group(j, 'coturn');
  const t = task(g, 'turnserver');

  const cfg = only(t.config, 'config');
  assert.match(cfg.command, /(^|\/)turnserver$/, 'runs Debian\'s turnserver');
  assert.ok(!cfg.args.some((a) => /auth-secret=/.test(a)), 'no secret on the command line');
  const at = cfg.args.indexOf('-c');
  assert.ok(at >= 0 && cfg.args[at + 1], 'a configuration file with -c');
  const conf = templateAt(t, cfg.args[at + 1]);
  assert.match(cfg.args[at + 1], /^\$\{NOMAD_SECRETS_DIR\}\//, 'the configuration (it holds the secret) in secrets/');
  assert.match(conf.data, /^use-auth-secret$/m, 'use-auth-secret (the portal mints REST credentials)');
  assert.match(conf.data, /^static-auth-secret=\{\{[^\n]*nomadVar[^\n]*\}\}$/m, 'the secret rendered from a Nomad Variable');

  // Host networking for the relay range, which must stay clear of Nomad's dynamic ports (20000-32000).
  assert.equal(only(g.network, 'network').mode, 'host', 'network mode');
  const listening = Number(/^listening-port=(\d+)$/m.exec(conf.data)?.[1]);
  const p = ports(g);
  const turnPort = Object.entries(p).find(([, [spec]]) => spec.static === listening);
  assert.ok(turnPort, `a static port ${listening} for coturn's listening-port`);
  const min = Number(/^min-port=(\d+)$/m.exec(conf.data)?.[1]);
  const max = Number(/^max-port=(\d+)$/m.exec(conf.data)?.[1]);
  assert.ok(min > 0 && max >= min, 'a relay port range');
  assert.ok(min > 32000 || max < 20000, `relay ports ${min}-${max} overlap Nomad's dynamic port range`);
  const turnChecks = checks(g, t).filter(({ service, check }) => (check.port ?? service.port) === turnPort[0]);
  assert.ok(turnChecks.some(({ check }) => ['tcp', 'udp'].includes(check.type)), 'a tcp or udp check on the TURN port');
  assertGracefulStop(t, { atLeast: 1 });
}

// ---- the tests -----------------------------------------------------------------------------------------

test('every job file in deploy/nomad parses, and holds no token or secret inline', async () => {
  const names = (await readdir(nomadDir)).filter((n) => n.endsWith('.nomad.hcl')).sort();
  assert.deepEqual(names, ['coturn.nomad.hcl', 'gateway.nomad.hcl', 'portal.nomad.hcl']);
  for (const name of names) {
    const { text, json } = await load(name);
    assert.ok(json.job, `${name}: no job block`);
    assert.doesNotMatch(text, /FIREBREAK_TOKEN\s*=/, `${name}: FIREBREAK_TOKEN given inline`);
    assert.doesNotMatch(text, /--token(?![-\w])/, `${name}: a token flag`);
    assert.doesNotMatch(text, /auth-secret=(?!\{\{)/, `${name}: a relay secret given inline`);
  }
});

test('gateway: rolling, health-gated, auto-reverting; SIGTERM with time for the goodbye; TUN and net_admin', async () => {
  checkGateway((await load('gateway.nomad.hcl')).json);
});

test('portal: one allocation, its SQLite data dir on a host volume, /healthz', async () => {
  checkPortal((await load('portal.nomad.hcl')).json);
});

test('coturn: turnserver with its secret rendered from a template, host networking, a TURN port check', async () => {
  checkCoturn((await load('coturn.nomad.hcl')).json);
});

test('the checks fail on a job that breaks them', async () => {
  const { json } = await load('gateway.nomad.hcl');
  const broken = (edit) => {
    const copy = structuredClone(json);
    edit(task(group(job(copy, 'firebreak-gateway'), 'gateway'), 'gateway'), group(job(copy, 'firebreak-gateway'), 'gateway'));
    return copy;
  };
  assert.throws(() => checkGateway(broken((t) => { t.kill_timeout = '500ms'; })), /kill_timeout/);
  assert.throws(() => checkGateway(broken((t, g) => { g.update[0].max_parallel = 3; })), /max_parallel/);
  assert.throws(() => checkGateway(broken((t) => { t.env[0].FIREBREAK_TOKEN = 'tok'; })), /FIREBREAK_TOKEN/);
  assert.throws(() => checkGateway(broken((t) => { t.config[0].cap_add = []; })), /net_admin/);
  assert.throws(() => checkGateway(broken((t, g) => { g.service[0].check[0].path = '/'; })), /healthz/);
  assert.throws(() => checkGateway(broken((t, g) => { g.count = 1; })), /count/);
});

test('broken HCL is rejected by the parser', async () => {
  await assert.rejects(parse('broken.nomad.hcl', 'job "x" {\n  group "g" {\n    count = \n'));
  await assert.rejects(parse('broken.nomad.hcl', 'job "x" { type = "service" }}\n'));
});
