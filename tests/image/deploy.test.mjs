// deploy/: the Kubernetes manifests against the Kubernetes API's schemas (kubernetes-validate,
// strict: an unknown field fails), compose.yaml against the compose specification's schema
// (check-jsonschema) and through `podman-compose config`, the NetworkPolicy keeping the metrics
// port inside the cluster, and each example's baton.toml through `baton check-config` in the image.
// The validators come from tests/image/requirements.txt (scripts/setup.sh installs them); they
// fail the run when missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const venv = process.env.BATON_DEPLOY_VENV || join(homedir(), '.cache', 'baton', 'deploy-validate');
const IMAGE = process.env.BATON_IMAGE || 'localhost/baton:dev';
const RUNTIME = process.env.BATON_PODMAN_RUNTIME || '/usr/sbin/runc';
const k8s = join(repo, 'deploy', 'kubernetes');
const manifests = readdirSync(k8s).filter((f) => f.endsWith('.yaml')).map((f) => join(k8s, f));
const LABELS = { 'app.kubernetes.io/name': 'baton', 'app.kubernetes.io/component': 'broker' };

function tool(name, args, opts = {}) {
  const res = spawnSync(join(venv, 'bin', name), args, { encoding: 'utf8', ...opts });
  if (res.error) throw res.error;
  return res;
}

/** Every document of a YAML file, as JSON (PyYAML from the validators' venv). */
function yamlDocs(file) {
  const res = tool('python', ['-c',
    'import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))', file]);
  assert.equal(res.status, 0, res.stderr);
  return JSON.parse(res.stdout).filter(Boolean);
}

let dir;
before(() => {
  for (const t of ['kubernetes-validate', 'check-jsonschema', 'podman-compose', 'python']) {
    assert.ok(existsSync(join(venv, 'bin', t)), `${t} is missing from ${venv}: run scripts/setup.sh`);
  }
  dir = mkdtempSync(join(tmpdir(), 'baton-deploy-'));
  chmodSync(dir, 0o755);
});
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

test('deploy/kubernetes: every manifest passes the Kubernetes schemas, strictly', () => {
  assert.ok(manifests.length >= 7, manifests.join(', '));
  const res = tool('kubernetes-validate', ['--strict', ...manifests]);
  assert.equal(res.status, 0, res.stdout + res.stderr);
  for (const m of manifests) assert.match(res.stdout + res.stderr, new RegExp(`${m}.* passed`));
  // The validator does fail: a field the schema does not know.
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: x\nspec:\n  minAvailble: 1\n');
  assert.notEqual(tool('kubernetes-validate', ['--strict', bad]).status, 0);
});

test('deploy/compose.yaml: the compose schema, and podman-compose config', () => {
  const compose = join(repo, 'deploy', 'compose.yaml');
  const res = tool('check-jsonschema', ['--builtin-schema', 'vendor.compose-spec', compose]);
  assert.equal(res.status, 0, res.stdout + res.stderr);
  const bad = join(dir, 'bad-compose.yaml');
  writeFileSync(bad, 'services:\n  a:\n    image: x\n    restartt: always\n');
  assert.notEqual(tool('check-jsonschema', ['--builtin-schema', 'vendor.compose-spec', bad]).status, 0);
  // The file's own interpolation: refused without the handoff keys, resolved with them.
  const env = { ...process.env, BATON_HANDOFF_KEYS: '[{kid = "k", secret = "s"}]' };
  const cfg = tool('podman-compose', ['-f', compose, 'config'], { env, cwd: join(repo, 'deploy') });
  assert.equal(cfg.status, 0, cfg.stdout + cfg.stderr);
  assert.match(cfg.stdout, /BATON_HANDOFF__KEYS: '?\[\{kid = "k", secret = "s"\}\]/);
  assert.match(cfg.stdout, /read_only: true/);
});

test('deploy/kubernetes: the NetworkPolicy admits the metrics port from pods of the cluster only', () => {
  const [deployment] = yamlDocs(join(k8s, 'deployment.yaml'));
  const [policy] = yamlDocs(join(k8s, 'networkpolicy.yaml'));
  assert.equal(policy.kind, 'NetworkPolicy');
  assert.deepEqual(policy.spec.podSelector.matchLabels, deployment.spec.template.metadata.labels);
  assert.ok(policy.spec.policyTypes.includes('Ingress'));
  const ports = Object.fromEntries(deployment.spec.template.spec.containers[0].ports.map((p) => [p.name, p.containerPort]));
  assert.equal(ports.admin, 9090);
  const admits = (rule, name) => (rule.ports || []).some((p) => p.port === name || p.port === ports[name]);
  const adminRules = policy.spec.ingress.filter((r) => !r.ports || admits(r, 'admin'));
  assert.ok(adminRules.length > 0, 'some rule must admit Prometheus');
  for (const rule of adminRules) {
    // A rule without `from` (or with an ipBlock) admits addresses outside the cluster.
    assert.ok(Array.isArray(rule.from) && rule.from.length > 0, JSON.stringify(rule));
    for (const peer of rule.from) assert.ok(!('ipBlock' in peer), JSON.stringify(peer));
  }
});

test('deploy/kubernetes: a PodDisruptionBudget keeps one of the replicas through drains', () => {
  const [deployment] = yamlDocs(join(k8s, 'deployment.yaml'));
  const [pdb] = yamlDocs(join(k8s, 'pdb.yaml'));
  assert.equal(pdb.kind, 'PodDisruptionBudget');
  assert.deepEqual(pdb.spec.selector.matchLabels, LABELS);
  assert.deepEqual(deployment.spec.selector.matchLabels, LABELS);
  assert.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < deployment.spec.replicas,
    'minAvailable below replicas, or no node could ever be drained');
});

test("deploy/: each example's baton.toml passes baton check-config in the image, secrets from the environment", () => {
  const [configmap] = yamlDocs(join(k8s, 'configmap.yaml'));
  const k8sToml = join(dir, 'k8s.toml');
  writeFileSync(k8sToml, configmap.data['baton.toml']);
  chmodSync(k8sToml, 0o644);
  const key = '[{kid = "k2026-12", secret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]';
  const cases = [
    [k8sToml, { BATON_HANDOFF__KEYS: key, BATON_STORE__REDIS_URL: 'redis://:pw@redis.baton.svc:6379/0' }],
    [join(repo, 'deploy', 'compose', 'baton.toml'), { BATON_HANDOFF__KEYS: key, BATON_SERVER__TRUSTED_PROXIES: '["172.30.80.0/24"]' }],
  ];
  for (const [file, env] of cases) {
    const args = ['--runtime', RUNTIME, 'run', '--rm', '--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=2000:2000',
      '--read-only', '-v', `${file}:/etc/baton/baton.toml:ro`];
    for (const [k, v] of Object.entries(env)) args.push('-e', `${k}=${v}`);
    const res = spawnSync('podman', [...args, IMAGE, 'check-config'], { encoding: 'utf8' });
    assert.equal(res.status, 0, `${file}: ${res.stdout}${res.stderr}`);
    assert.match(res.stdout, /valid/);
  }
});
