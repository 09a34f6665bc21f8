/**
 * What can be checked of the container and cluster files without a Docker engine or a cluster:
 * the Dockerfile's start command is the one the tests run, everything the Dockerfiles copy and the
 * compose file references exists, and the config each replica or pod would boot with validates.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';
import { ROOT } from './harness.ts';

const read = (f: string) => readFileSync(path.join(ROOT, f), 'utf8');
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; dependencies: Record<string, string> };
const START = pkg.scripts.start.split(/\s+/);

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** A small Dockerfile reader: joins continuation lines, drops comments, numbers the stages. */
function dockerfile(file: string): Instruction[] {
  const lines = read(file).split('\n').filter((l) => !/^\s*#/.test(l));
  const joined = lines.join('\n').replace(/\\\n/g, ' ');
  let stage = -1;
  const out: Instruction[] = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') stage += 1;
    out.push({ op, args: m[2]!.trim(), stage });
  }
  return out;
}

function dockerignore(): string[] {
  return read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** COPY sources from the build context (not from another stage) exist and are not dockerignored. */
function checkCopySources(file: string) {
  const ignored = dockerignore();
  for (const ins of dockerfile(file).filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
    const parts = ins.args.split(/\s+/).filter((p) => !p.startsWith('--'));
    for (const src of parts.slice(0, -1)) {
      expect(existsSync(path.join(ROOT, src)), `${file}: COPY ${src}`).toBe(true);
      expect(ignored.includes(src) || ignored.includes(src.split('/')[0]!), `${file}: COPY ${src} is excluded by .dockerignore`).toBe(false);
    }
  }
}

describe('Dockerfile', () => {
  const ins = dockerfile('Dockerfile');
  const last = Math.max(...ins.map((i) => i.stage));
  const final = ins.filter((i) => i.stage === last);

  it('starts the gateway with the command of `npm start` and of the test harness', () => {
    const cmd = final.filter((i) => i.op === 'CMD').at(-1);
    expect(cmd, 'CMD in the final stage').toBeDefined();
    expect(JSON.parse(cmd!.args)).toEqual(START);
    expect(START).toEqual(['node', '--import', 'tsx', 'src/server.ts']);
    // test/helpers/gateway-process.ts (used by test/e2e) spawns exactly this.
    expect(read('test/helpers/gateway-process.ts')).toContain("['--import', 'tsx', 'src/server.ts']");
    expect(final.some((i) => i.op === 'ENTRYPOINT')).toBe(false);
  });

  it('is multi-stage on a slim Node 20 base, installs production dependencies only, runs as non-root', () => {
    const froms = ins.filter((i) => i.op === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const arg = ins.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_IMAGE='));
    expect(arg?.args).toMatch(/^NODE_IMAGE=node:20[-.\w]*-slim$/);
    expect(ins.some((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args))).toBe(true);
    expect(read('.npmrc')).toContain('onnxruntime-node-install=skip');
    expect(pkg.dependencies.tsx, 'tsx must be a production dependency').toBeDefined();
    const user = final.filter((i) => i.op === 'USER').at(-1);
    expect(user?.args).toBeDefined();
    expect(user!.args).not.toMatch(/^(root|0)(:|$)/);
  });

  it('has a HEALTHCHECK on /health/live and bakes in the demo models and the web form', () => {
    const hc = final.find((i) => i.op === 'HEALTHCHECK');
    expect(hc?.args).toContain('/health/live');
    const copied = final.filter((i) => i.op === 'COPY').map((i) => i.args);
    for (const dir of ['src', 'config', 'models', 'web']) expect(copied.some((c) => c.startsWith(`${dir} `)), `COPY ${dir}`).toBe(true);
    // The embedded default config lists its models by local path: each must be in models/.
    const defaults = JSON.parse(read('config/default.json')) as { models: { source: string }[] };
    for (const m of defaults.models) expect(m.source.startsWith('models/'), m.source).toBe(true);
  });

  it('everything the image runs imports only production dependencies (npm ci --omit=dev)', () => {
    const files = (dir: string): string[] =>
      readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? files(`${dir}/${e.name}`) : /\.(ts|mjs|js)$/.test(e.name) ? [`${dir}/${e.name}`] : [],
      );
    const prod = new Set(Object.keys(pkg.dependencies));
    const missing = new Set<string>();
    for (const f of [...files('src'), 'scripts/publish-model.ts', 'scripts/triton-repository.ts']) {
      for (const m of read(f).matchAll(/(?:from\s+|import\s*\(\s*)'([^'.][^']*)'/g)) {
        const spec = m[1]!;
        if (spec.startsWith('node:')) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!prod.has(name)) missing.add(`${name} (${f})`);
      }
    }
    expect([...missing]).toEqual([]);
  });

  it('copies only files that exist and are not dockerignored (gateway and nginx images)', () => {
    checkCopySources('Dockerfile');
    checkCopySources('nginx/Dockerfile');
    for (const must of ['node_modules', '.git', 'var', 'test']) expect(dockerignore()).toContain(must);
  });
});

type Service = {
  profiles?: string[];
  image?: string;
  build?: { context: string; dockerfile?: string };
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  volumes?: (string | { type: string; source?: string; target: string })[];
  command?: string[];
  ports?: string[];
};

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
  const services = compose.services;
  const gateways = Object.keys(services).filter((n) => /^gateway-\d+$/.test(n));
  /** What a plain `docker compose up` starts: the services of no profile. */
  const defaultServices = Object.keys(services).filter((n) => !services[n]!.profiles?.length);
  const s3json = JSON.parse(read('config/s3.json')) as { models: { name: string; source: string }[] };

  it('has MinIO, the publishing job, PostgreSQL with pgvector, two gateway replicas and nginx (the triton profile adds more: test/deploy/triton.test.ts)', () => {
    expect(defaultServices.sort()).toEqual(['gateway-1', 'gateway-2', 'minio', 'nginx', 'postgres', 'publish-models']);
    expect(services.postgres!.image).toMatch(/^pgvector\/pgvector:/);
    expect(services.minio!.image).toMatch(/minio\/minio:RELEASE\./);
  });

  it('references only build contexts, Dockerfiles and bind mounts that exist', () => {
    for (const [name, s] of Object.entries(services)) {
      expect(s.image ?? s.build, `${name}: image or build`).toBeDefined();
      if (s.build) {
        expect(statSync(path.join(ROOT, s.build.context)).isDirectory(), `${name}: build context`).toBe(true);
        expect(existsSync(path.join(ROOT, s.build.context, s.build.dockerfile ?? 'Dockerfile')), `${name}: dockerfile`).toBe(true);
      }
      for (const v of s.volumes ?? []) {
        const source = typeof v === 'string' ? v.split(':')[0]! : v.source;
        if (source && (source.startsWith('.') || source.startsWith('/'))) expect(existsSync(path.join(ROOT, source)), `${name}: volume ${source}`).toBe(true);
        else if (source) expect(compose.volumes, `${name}: named volume ${source}`).toHaveProperty(source);
      }
      for (const dep of Object.keys(s.depends_on ?? {})) expect(services, `${name} depends on ${dep}`).toHaveProperty(dep);
    }
  });

  it('publishes exactly the models that config/s3.json boots, from files in models/', () => {
    const script = services['publish-models']!.command!.join('\n');
    const published = /for m in ([^;]+);/.exec(script)![1]!.trim().split(/\s+/);
    expect(script).toContain('scripts/publish-model.ts');
    expect(existsSync(path.join(ROOT, 'scripts/publish-model.ts'))).toBe(true);
    expect(script).toMatch(/--endpoint http:\/\/minio:9000 --bucket models --create-bucket/);
    expect(s3json.models.map((m) => m.source).sort()).toEqual(published.map((m) => `s3://models/${m}.zip`).sort());
    for (const m of published) expect(existsSync(path.join(ROOT, 'models', `${m}.zip`)), `models/${m}.zip`).toBe(true);
  });

  it('starts in order: MinIO healthy → models published → replicas ready → nginx', () => {
    expect(services['publish-models']!.depends_on).toEqual({ minio: { condition: 'service_healthy' } });
    for (const g of gateways) expect(services[g]!.depends_on).toEqual({ 'publish-models': { condition: 'service_completed_successfully' }, postgres: { condition: 'service_healthy' } });
    expect(services.nginx!.depends_on).toEqual(Object.fromEntries(gateways.map((g) => [g, { condition: 'service_healthy' }])));
    for (const n of ['minio', 'nginx', 'postgres', ...gateways]) expect(services[n]!.healthcheck?.test, `${n} healthcheck`).toBeDefined();
    for (const g of gateways) expect(services[g]!.healthcheck!.test.join(' ')).toContain('/health/ready');
  });

  it('gives every replica the one PostgreSQL for its collections, through the config schema\'s own variables', () => {
    for (const g of gateways) {
      const env = services[g]!.environment!;
      expect(env.GATEWAY_COLLECTIONS__STORE).toBe('postgres');
      expect(env.GATEWAY_COLLECTIONS__POSTGRES__URL).toMatch(/^postgres:\/\/gateway:\$\{POSTGRES_PASSWORD:-[^}]+\}@postgres:5432\/gateway$/);
    }
    const cfg = loadConfig({ env: { GATEWAY_COLLECTIONS__STORE: 'postgres', GATEWAY_COLLECTIONS__POSTGRES__URL: 'postgres://u@h:5432/d' } });
    expect(cfg.collections).toMatchObject({ store: 'postgres', postgres: { url: 'postgres://u@h:5432/d' } });
  });

  it('nginx balances over every replica', () => {
    const ups = services.nginx!.environment!.NGINX_UPSTREAMS!.split(/[\s,]+/);
    expect(ups.sort()).toEqual(gateways.map((g) => `${g}:8080`).sort());
  });

  it('each replica boots from S3 with a config that validates (Dockerfile env + compose env + config/s3.json)', () => {
    for (const g of gateways) {
      const env = services[g]!.environment!;
      expect(env.GATEWAY_CONFIG).toBe('/app/config/s3.json');
      expect(env.GATEWAY_STORE__S3__ENDPOINT).toBe('http://minio:9000');
      expect(env.AWS_ACCESS_KEY_ID).toBeDefined();
      const gatewayEnv = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('GATEWAY_') || k === 'PORT' || k === 'HOST'));
      const config = loadConfig({
        env: { ...gatewayEnv, GATEWAY_CONFIG: path.join(ROOT, 'config/s3.json'), GATEWAY_STORE__DIR: '/var/cache/gateway', PORT: '8080', HOST: '0.0.0.0' },
      });
      expect(config.store.s3.endpoint).toBe('http://minio:9000');
      expect(config.store.s3.forcePathStyle).toBe(true);
      expect(config.models.map((m) => m.source)).toEqual(s3json.models.map((m) => m.source));
      expect(config.models.every((m) => m.source.startsWith('s3://models/'))).toBe(true);
    }
  });
});

describe('deploy/k8s', () => {
  const dir = path.join(ROOT, 'deploy/k8s');
  const docs = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(path.join(dir, f), 'utf8')).map((d) => {
        expect(d.errors, f).toEqual([]);
        // eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML, checked field by field below
        return { file: f, obj: d.toJS() as Record<string, any> };
      }),
    );
  const byKind = (kind: string) => docs.filter((d) => d.obj.kind === kind).map((d) => d.obj);

  it('parses, and the kustomization lists every manifest', () => {
    const kust = docs.find((d) => d.file === 'kustomization.yaml')!.obj;
    const listed = (kust.resources as string[]).sort();
    expect(listed).toEqual(docs.filter((d) => d.file !== 'kustomization.yaml').map((d) => d.file).sort());
    for (const d of docs) if (d.file !== 'kustomization.yaml') expect(d.obj.apiVersion && d.obj.kind && d.obj.metadata?.name, d.file).toBeTruthy();
    expect(existsSync(path.join(dir, 'README.md'))).toBe(true);
  });

  it('Deployment: probes, resources, command, config and secret wiring', () => {
    const [dep] = byKind('Deployment');
    const pod = dep!.spec.template.spec;
    const c = pod.containers[0];
    expect(c.command).toEqual(START);
    expect(c.readinessProbe.httpGet.path).toBe('/health/ready');
    expect(c.livenessProbe.httpGet.path).toBe('/health/live');
    expect(c.startupProbe.httpGet.path).toBeDefined();
    expect(c.resources.requests.cpu).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    // labels line up: selector ↔ pod ↔ Service ↔ HPA target
    expect(dep!.spec.selector.matchLabels).toEqual(dep!.spec.template.metadata.labels);
    const [svc] = byKind('Service');
    expect(svc!.spec.selector).toEqual(dep!.spec.selector.matchLabels);
    const [hpa] = byKind('HorizontalPodAutoscaler');
    expect(hpa!.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: dep!.metadata.name });
    // secret and config map are the ones that exist here
    const [secret] = byKind('Secret');
    const [cm] = byKind('ConfigMap');
    expect(c.envFrom.map((e: { secretRef: { name: string } }) => e.secretRef.name)).toContain(secret!.metadata.name);
    expect(Object.keys(secret!.stringData)).toEqual(expect.arrayContaining(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']));
    const configVolume = pod.volumes.find((v: { configMap?: { name: string } }) => v.configMap?.name === cm!.metadata.name);
    const mount = c.volumeMounts.find((m: { name: string }) => m.name === configVolume.name);
    const envValue = (n: string) => c.env.find((e: { name: string }) => e.name === n)?.value as string;
    expect(envValue('GATEWAY_CONFIG')).toBe(`${mount.mountPath}/gateway.json`);
    // The config a pod boots with validates.
    const tmp = path.join(mkdtempSync(path.join(os.tmpdir(), 'k8s-config-')), 'gateway.json');
    writeFileSync(tmp, cm!.data['gateway.json']);
    const env = Object.fromEntries(c.env.filter((e: { name: string }) => e.name.startsWith('GATEWAY_')).map((e: { name: string; value: string }) => [e.name, e.value]));
    const config = loadConfig({ env: { ...env, GATEWAY_CONFIG: tmp } });
    expect(config.models.length).toBeGreaterThan(0);
    expect(config.models.every((m) => m.source.startsWith('s3://'))).toBe(true);
  });
});
