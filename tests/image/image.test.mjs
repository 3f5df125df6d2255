// The production image, localhost/baton:dev (scripts/image.sh builds it from the Dockerfile), run
// with podman as an operator would: non-root, read-only root filesystem with /data its only
// writable place, the image's own health check, kill -9 and a restart on the same volume, SIGTERM,
// configuration from a mounted file and from BATON_* variables, `baton check-config` inside it.
// Also what the Dockerfile's build stage did: its app step compiled baton alone (the
// dependency-cache layer held every dependency).
//
// Fails, never skips, when podman or the image is missing. Every container and volume it makes is
// named with this run's suffix and removed at the end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const IMAGE = process.env.BATON_IMAGE || 'localhost/baton:dev';
const SHOP = 'http://shop.localhost:8080';
const OTHER = 'http://other.localhost:8080';
const run = `baton-image-test-${process.pid}`;
const created = { containers: new Set(), volumes: new Set() };

// Debian's crun fails on these hosts ("cgroups in hybrid mode not supported"); runc works.
const RUNTIME = process.env.BATON_PODMAN_RUNTIME || '/usr/sbin/runc';
// The sandbox refuses to raise limits, so each container gets limits below the hard ones.
const LIMITS = ['--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=2000:2000'];

function podman(args, { allowFail = false, timeout = 120_000 } = {}) {
  const res = spawnSync('podman', ['--runtime', RUNTIME, ...args], { encoding: 'utf8', timeout });
  if (res.error) throw res.error;
  if (!allowFail && res.status !== 0) {
    throw new Error(`podman ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
  }
  return res;
}

let dir;
let configPath;

before(() => {
  const which = spawnSync('podman', ['--version'], { encoding: 'utf8' });
  assert.equal(which.status, 0, 'podman is missing: scripts/setup.sh installs it (apt-get install podman runc)');
  assert.equal(podman(['image', 'exists', IMAGE], { allowFail: true }).status, 0,
    `${IMAGE} is missing: build it with scripts/image.sh`);
  dir = mkdtempSync(join(tmpdir(), 'baton-image-'));
  // The key comes from the image itself, as an operator gets one.
  const keygen = podman(['run', '--rm', ...LIMITS, IMAGE, 'keygen']).stdout;
  configPath = join(dir, 'baton.toml');
  writeFileSync(configPath, `[server]
listen = "0.0.0.0:8080"
public_origin = "http://broker.localhost:8080"
admin_listen = "0.0.0.0:9090"
shutdown_grace_secs = 5

[trust]
origins = ["${SHOP}"]

[store]
backend = "sqlite"
sqlite_path = "/data/baton.db"

[handoff]
${keygen}
`);
  // Read by the container's non-root user.
  chmodSync(dir, 0o755);
  chmodSync(configPath, 0o644);
});

after(() => {
  for (const name of created.containers) podman(['rm', '-f', '-t', '0', name], { allowFail: true });
  for (const name of created.volumes) podman(['volume', 'rm', '-f', name], { allowFail: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Starts the image detached as an operator would; its public port published on loopback. */
function start(name, { volume, env = {}, config = configPath } = {}) {
  const full = `${run}-${name}`;
  created.containers.add(full);
  const args = ['run', '-d', '--name', full, ...LIMITS,
    // Only /data (the volume) is writable: no tmpfs on /tmp or /run either.
    '--read-only', '--read-only-tmpfs=false',
    '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
    '-p', '127.0.0.1::8080',
    '-v', `${config}:/etc/baton/baton.toml:ro`];
  if (volume) {
    created.volumes.add(volume);
    args.push('-v', `${volume}:/data`);
  }
  for (const [k, v] of Object.entries(env)) args.push('-e', `${k}=${v}`);
  args.push(IMAGE);
  podman(args);
  const port = podman(['port', full, '8080/tcp']).stdout.trim().split(':').pop();
  return { name: full, base: `http://127.0.0.1:${port}` };
}

function request(url, { method = 'GET', headers = {}, body, agent } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`${method} ${url}: no answer in 5 s`)));
    if (body !== undefined) req.end(body); else req.end();
  });
}

/** Until the broker answers /readyz 200 (the port refuses connections before it listens). */
async function ready(c) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await request(`${c.base}/readyz`)).status === 200) return;
    } catch { /* not listening yet */ }
    const state = podman(['inspect', '--format', '{{.State.Status}}', c.name]).stdout.trim();
    if (state !== 'running' || Date.now() > deadline) {
      throw new Error(`${c.name} not ready (${state}):\n${podman(['logs', c.name], { allowFail: true }).stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function pidOf(c) {
  return Number(podman(['inspect', '--format', '{{.State.Pid}}', c.name]).stdout.trim());
}

async function putValue(c, key, value, cookie) {
  const headers = { origin: SHOP, 'content-type': 'application/json' };
  if (cookie) headers.cookie = cookie;
  const res = await request(`${c.base}/v1/session/${key}`, { method: 'PUT', headers, body: JSON.stringify({ value }) });
  assert.equal(res.status, 200, res.body);
  return cookie || [].concat(res.headers['set-cookie']).map((s) => s.split(';')[0]).join('; ');
}

test('the image runs as uid 65532 with a read-only root filesystem and only /data writable', async () => {
  const config = JSON.parse(podman(['image', 'inspect', IMAGE]).stdout)[0].Config;
  assert.equal(config.User, '65532:65532');
  assert.ok(config.Volumes && '/data' in config.Volumes, 'VOLUME /data');
  const c = start('nonroot', { volume: `${run}-nonroot` });
  await ready(c);
  const pid = pidOf(c);
  // The broker's process as the host sees it (rootful podman, no user namespace).
  const uids = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(.*)$/m)[1].split(/\s+/);
  const gids = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Gid:\s+(.*)$/m)[1].split(/\s+/);
  assert.deepEqual(uids, ['65532', '65532', '65532', '65532']);
  assert.deepEqual(gids, ['65532', '65532', '65532', '65532']);
  // Its mounts: / read-only; writable only /data and the kernel's own (/proc, /sys, /dev) and the
  // files podman writes for the container (/etc/hosts, /etc/resolv.conf, ...).
  const mounts = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').trim().split('\n').map((l) => {
    const f = l.split(' ');
    return { at: f[4], rw: f[5].split(',').includes('rw') };
  });
  assert.equal(mounts.find((m) => m.at === '/').rw, false, 'the root filesystem is read-only');
  const writable = mounts.filter((m) => m.rw && !/^\/(proc|sys|dev)(\/|$)/.test(m.at)).map((m) => m.at).sort();
  const podmanFiles = ['/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/run/.containerenv'];
  assert.deepEqual(writable.filter((m) => !podmanFiles.includes(m)), ['/data'],
    `writable mounts: ${writable.join(', ')}`);
  // And the broker writes its database there, as the non-root user.
  await putValue(c, 'chat', 'hello');
});

test('podman healthcheck run: healthy when the broker serves on 8080, unhealthy when it does not', async () => {
  const c = start('health', { volume: `${run}-health` });
  await ready(c);
  const res = podman(['healthcheck', 'run', c.name], { allowFail: true });
  assert.equal(res.status, 0, `healthy: ${res.stdout}${res.stderr}`);
  // The same image listening elsewhere: its health check (GET 127.0.0.1:8080/readyz) fails.
  const off = start('health-off', { volume: `${run}-health-off`, env: { BATON_SERVER__LISTEN: '0.0.0.0:8081' } });
  await waitForLog(off, 'baton is listening');
  const bad = podman(['healthcheck', 'run', off.name], { allowFail: true });
  assert.notEqual(bad.status, 0, 'a broker not on 8080 must be unhealthy');
});

async function waitForLog(c, text) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const logs = podman(['logs', c.name], { allowFail: true });
    if ((logs.stdout + logs.stderr).includes(text)) return;
    if (Date.now() > deadline) throw new Error(`${c.name}: no "${text}" in its log:\n${logs.stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a session written, then kill -s KILL, is there after a restart on the same volume', async () => {
  const volume = `${run}-durable`;
  const first = start('durable-1', { volume });
  await ready(first);
  const cookie = await putValue(first, 'chat', 'survives kill -9');
  assert.match(cookie, /__Host-baton=/);
  podman(['kill', '--signal', 'KILL', first.name]);
  podman(['wait', first.name]);
  assert.equal(podman(['inspect', '--format', '{{.State.ExitCode}}', first.name]).stdout.trim(), '137');
  const second = start('durable-2', { volume });
  await ready(second);
  const res = await request(`${second.base}/v1/session`, { headers: { origin: SHOP, cookie } });
  assert.equal(res.status, 200, res.body);
  assert.equal(JSON.parse(res.body).values.chat, 'survives kill -9');
});

test('SIGTERM (podman stop) drains an open connection and exits 0 within the grace', async () => {
  const c = start('sigterm', { volume: `${run}-sigterm` });
  await ready(c);
  // A kept-alive client connection the drain has to close.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  assert.equal((await request(`${c.base}/healthz`, { agent })).status, 200);
  const started = Date.now();
  // podman's stop timeout is far above server.shutdown_grace_secs (5): a broker that ignored
  // SIGTERM would be killed at 30 s with SIGKILL (exit 137).
  podman(['stop', '-t', '30', c.name]);
  const took = (Date.now() - started) / 1000;
  agent.destroy();
  const code = podman(['inspect', '--format', '{{.State.ExitCode}}', c.name]).stdout.trim();
  assert.equal(code, '0', podman(['logs', c.name]).stderr);
  assert.ok(took < 5 + 3, `stopped in ${took} s, over the 5 s grace`);
  const config = JSON.parse(podman(['image', 'inspect', IMAGE]).stdout)[0].Config;
  assert.equal(config.StopSignal, 'SIGTERM');
});

test('config from the mounted file, and BATON_* variables over it', async () => {
  // The file's trusted origin: the iframe page may be framed by it.
  const file = start('config-file', { volume: `${run}-config-file` });
  await ready(file);
  const fromFile = (await request(`${file.base}/iframe.html`)).headers['content-security-policy'];
  assert.match(fromFile, new RegExp(`frame-ancestors[^;]*${SHOP.replace(/[.]/g, '\\.')}`));
  assert.doesNotMatch(fromFile, /other\.localhost/);
  // The environment wins over the file.
  const env = start('config-env', { volume: `${run}-config-env`, env: { BATON_TRUST__ORIGINS: `["${OTHER}"]` } });
  await ready(env);
  const fromEnv = (await request(`${env.base}/iframe.html`)).headers['content-security-policy'];
  assert.match(fromEnv, /frame-ancestors[^;]*http:\/\/other\.localhost:8080/);
  assert.doesNotMatch(fromEnv, /shop\.localhost/);
  const denied = await request(`${env.base}/v1/session`, { headers: { origin: SHOP } });
  assert.equal(denied.status, 403);
});

test('baton check-config runs inside the image: valid file, the shipped template refused', () => {
  const ok = podman(['run', '--rm', ...LIMITS, '--read-only', '-v', `${configPath}:/etc/baton/baton.toml:ro`, IMAGE, 'check-config'], { allowFail: true });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /\/etc\/baton\/baton\.toml: valid/);
  // The template the image carries refuses to start until filled in (exit 2, naming the key).
  const template = podman(['run', '--rm', ...LIMITS, '--read-only', IMAGE, 'check-config', '--config', '/usr/share/doc/baton/production.toml'], { allowFail: true });
  assert.equal(template.status, 2, template.stdout + template.stderr);
  assert.match(template.stdout + template.stderr, /trust\.origins/);
});

test('the image: its metadata, the real binary, and its size', (t) => {
  const [img] = JSON.parse(podman(['image', 'inspect', IMAGE]).stdout);
  const c = img.Config;
  assert.deepEqual(c.Entrypoint, ['/usr/local/bin/baton']);
  assert.deepEqual(c.Cmd, ['serve']);
  assert.ok(c.Env.includes('BATON_CONFIG=/etc/baton/baton.toml'));
  assert.deepEqual(Object.keys(c.ExposedPorts).sort(), ['8080/tcp', '9090/tcp']);
  assert.deepEqual(img.Healthcheck?.Test ?? c.Healthcheck?.Test, ['CMD', '/usr/local/bin/baton', 'healthcheck']);
  assert.equal(c.Labels['org.opencontainers.image.title'], 'baton');
  const version = readFileSync(join(repo, 'Cargo.toml'), 'utf8').match(/^version = "(.*)"$/m)[1];
  assert.equal(c.Labels['org.opencontainers.image.version'], version);
  const printed = podman(['run', '--rm', ...LIMITS, IMAGE, '--version']).stdout.trim();
  assert.equal(printed, `baton ${version}`);
  t.diagnostic(`image size: ${img.Size} bytes (${(img.Size / 1024 / 1024).toFixed(1)} MiB)`);
});

test("the build stage's app step compiled baton alone: the dependency layer held the rest", () => {
  // scripts/image.sh ran the Dockerfile's steps (scripts/build-stage.sh) and kept this log.
  const log = readFileSync(join(repo, 'target', 'image', 'app-step.log'), 'utf8');
  const compiled = [...log.matchAll(/^\s*Compiling (\S+) v/gm)].map((m) => m[1]);
  assert.deepEqual(compiled, ['baton'], log);
  assert.match(log, /^build-stage: baton \d/m);
});
