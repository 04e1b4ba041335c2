/**
 * What `serve build` writes, run as users run it (bin/serve.js in a child process), validated against the
 * Kubernetes API schemas (kubernetes-models: types, required fields, enums, int-or-string) and checked
 * for what a cluster needs beyond the schemas (issue #23 item 5): every selector matches its pods,
 * every named port exists, probes, `nvidia.com/gpu` requests equal to limits, the Secret's mounted keys,
 * a grace period longer than the head's drain, a PodDisruptionBudget for the agents, the HPA's metric
 * served by deploy/prometheus-adapter/rules.yaml, and the image and layout the Dockerfile builds.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { instructionsOf, parseDockerfile } from '../helpers/dockerfile.js';
import { repoRoot } from '../helpers/models.js';

type Obj = Record<string, any>;

const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

const tmp = mkdtempSync(path.join(os.tmpdir(), 'flotilla-k8s-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `serve build` through the CLI; the objects it wrote, by file name. */
function serveBuild(out: string, extra: string[] = []): Record<string, Obj> {
  execFileSync(
    process.execPath,
    ['bin/serve.js', 'build', 'examples/cluster.ts:app', '--out', out, '--namespace', 'llm', ...extra],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return Object.fromEntries(readdirSync(out).map((f) => [f, parse(readFileSync(path.join(out, f), 'utf8')) as Obj]));
}

function validate(obj: Obj): void {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}: add it to MODELS`);
  new Model(obj).validate();
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v) && Object.keys(selector).length > 0;

function fakePem(name: string): string {
  const file = path.join(tmp, `${name}.pem`);
  writeFileSync(
    file,
    `-----BEGIN ${name.includes('key') ? 'PRIVATE KEY' : 'CERTIFICATE'}-----\nAAAA\n-----END X-----\n`,
  );
  return file;
}

describe('serve build: manifests against the Kubernetes schemas', () => {
  const plain = serveBuild(path.join(tmp, 'plain'));
  const mtls = serveBuild(path.join(tmp, 'mtls'), [
    '--cluster-tls-ca',
    fakePem('ca'),
    '--cluster-tls-cert',
    fakePem('head-cert'),
    '--cluster-tls-key',
    fakePem('head-key'),
    '--cluster-tls-agent-cert',
    fakePem('agent-cert'),
    '--cluster-tls-agent-key',
    fakePem('agent-key'),
  ]);

  it('writes every kind a cluster needs, each valid against its schema (with and without mutual TLS)', () => {
    for (const docs of [plain, mtls]) {
      const { 'kustomization.yaml': kustomization, ...objects } = docs;
      expect(Object.keys(objects).sort()).toEqual([...kustomization!.resources].sort());
      expect(
        Object.values(objects)
          .map((o) => o.kind)
          .sort(),
      ).toEqual([
        'ConfigMap',
        'Deployment',
        'HorizontalPodAutoscaler',
        'NetworkPolicy',
        'PodDisruptionBudget',
        'Secret',
        'Service',
        'Service',
        'StatefulSet',
      ]);
      for (const [file, obj] of Object.entries(objects)) {
        expect(() => validate(obj), file).not.toThrow();
        expect(obj.metadata.namespace, file).toBe('llm');
      }
    }
  });

  it('is checked by a validator that refuses a wrong manifest', () => {
    const broken = structuredClone(plain['head-deployment.yaml']!);
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'eight thousand';
    expect(() => validate(broken)).toThrow(/containerPort/);
    const noSelector = structuredClone(plain['gpu-agent-pdb.yaml']!);
    noSelector.spec.maxUnavailable = { count: 1 };
    expect(() => validate(noSelector)).toThrow();
  });

  it('has selectors that match their pods and named ports that exist', () => {
    for (const docs of [plain, mtls]) {
      const head = docs['head-deployment.yaml']!;
      const agents = docs['gpu-agent-statefulset.yaml']!;
      const pods = [head, agents].map((w) => ({
        labels: w.spec.template.metadata.labels as Record<string, string>,
        ports: (w.spec.template.spec.containers as Obj[]).flatMap((c) => c.ports.map((p: Obj) => p.name)),
      }));
      for (const w of [head, agents])
        expect(matches(w.spec.selector.matchLabels, w.spec.template.metadata.labels)).toBe(true);
      for (const svc of [docs['head-service.yaml']!, docs['gpu-agent-service.yaml']!]) {
        const selected = pods.filter((p) => matches(svc.spec.selector, p.labels));
        expect(selected).toHaveLength(1);
        for (const port of svc.spec.ports as Obj[])
          if (typeof port.targetPort === 'string') expect(selected[0]!.ports).toContain(port.targetPort);
      }
      expect(docs['gpu-agent-service.yaml']!.metadata.name).toBe(agents.spec.serviceName);
      const pdb = docs['gpu-agent-pdb.yaml']!;
      expect(pods.filter((p) => matches(pdb.spec.selector.matchLabels, p.labels))).toEqual([pods[1]]);
      expect(pdb.spec.maxUnavailable).toBe(1);
      const policy = docs['head-networkpolicy.yaml']!;
      expect(matches(policy.spec.podSelector.matchLabels, pods[0]!.labels)).toBe(true);
      const clusterFrom = (policy.spec.ingress as Obj[]).find((r) => r.from)!.from[0].podSelector.matchLabels;
      expect(matches(clusterFrom, pods[1]!.labels)).toBe(true);
      const hpa = docs['gpu-agent-hpa.yaml']!;
      expect(hpa.spec.scaleTargetRef).toEqual({
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        name: agents.metadata.name,
      });
    }
  });

  it('probes the head, gives GPU agents nvidia.com/gpu, and outlasts the drain on SIGTERM', () => {
    const head = plain['head-deployment.yaml']!.spec.template.spec;
    const hc = head.containers[0];
    for (const probe of [hc.readinessProbe, hc.livenessProbe]) {
      expect(probe.httpGet).toEqual({ path: '/-/healthz', port: 'http' });
      expect(probe.periodSeconds).toBeGreaterThan(0);
    }
    const drainMs = Number(hc.command[hc.command.indexOf('--drain-timeout') + 1]);
    expect(drainMs).toBeGreaterThan(0);
    // The kubelet sends SIGTERM, waits the grace period, then SIGKILL: the drain must end before that.
    expect(head.terminationGracePeriodSeconds * 1000).toBeGreaterThan(drainMs);
    const agent = plain['gpu-agent-statefulset.yaml']!.spec.template.spec;
    const ac = agent.containers[0];
    const gpus = ac.resources.limits['nvidia.com/gpu'];
    expect(Number(gpus)).toBeGreaterThanOrEqual(1);
    // Extended resources cannot be overcommitted: a request must equal the limit.
    expect(ac.resources.requests['nvidia.com/gpu']).toBe(gpus);
    expect(ac.command[ac.command.indexOf('--gpus') + 1]).toBe(gpus);
    expect(agent.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
    expect(agent.terminationGracePeriodSeconds).toBeGreaterThan(0);
  });

  it('mounts only keys the Secret holds, at the paths the commands read', () => {
    for (const docs of [plain, mtls]) {
      const secret = docs['cluster-secret.yaml']!;
      for (const w of [docs['head-deployment.yaml']!, docs['gpu-agent-statefulset.yaml']!]) {
        const spec = w.spec.template.spec;
        const vol = (spec.volumes as Obj[]).find((v) => v.secret)!;
        expect(vol.secret.secretName).toBe(secret.metadata.name);
        const keys = (vol.secret.items as Obj[]).map((i) => i.key);
        for (const k of keys) expect(Object.keys(secret.stringData)).toContain(k);
        const mount = (spec.containers[0].volumeMounts as Obj[]).find((m) => m.name === vol.name)!;
        const files = (spec.containers[0].command as string[]).filter((a) => a.startsWith(`${mount.mountPath}/`));
        expect(files.length).toBeGreaterThan(0);
        for (const f of files) expect(keys).toContain(path.posix.basename(f));
      }
    }
    expect(Object.keys(mtls['cluster-secret.yaml']!.stringData).sort()).toEqual([
      'agent.crt',
      'agent.key',
      'ca.crt',
      'head.crt',
      'head.key',
      'token',
    ]);
  });

  it('runs the image the Dockerfile builds, the way it runs it', () => {
    const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    const run = parseDockerfile(dockerfile).stages.find((s) => s.name === 'run')!;
    const workdir = run.instructions.filter((i) => i.op === 'WORKDIR').pop()!.args;
    const entrypoint = JSON.parse(run.instructions.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
    // The tag the Dockerfile's instructions build is the one `serve build` names by default.
    const tag = /docker build -t (\S+) \.$/m.exec(dockerfile)![1]!;
    const version = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string })
      .version;
    expect(tag).toBe(`flotilla:${version}`);
    const ports = instructionsOf(dockerfile)
      .find((i) => i.op === 'EXPOSE')!
      .args.split(' ')
      .map(Number);
    for (const file of ['head-deployment.yaml', 'gpu-agent-statefulset.yaml']) {
      const c = plain[file]!.spec.template.spec.containers[0];
      expect(c.image, file).toBe(tag);
      expect(c.workingDir, file).toBe(workdir);
      // node itself, not npm: SIGTERM must reach the server so that it drains.
      expect(c.command.slice(0, entrypoint.length), file).toEqual(entrypoint);
      for (const p of c.ports as Obj[]) expect(ports, file).toContain(p.containerPort);
    }
  });

  it('scales on a metric that deploy/prometheus-adapter/rules.yaml serves', () => {
    const values = parse(readFileSync(path.join(repoRoot, 'deploy/prometheus-adapter/rules.yaml'), 'utf8')) as Obj;
    const served = (values.rules.external as Obj[]).map((r) => {
      expect(r.seriesQuery).toContain(r.name.matches.replace(/^\^|\$$/g, ''));
      expect(r.metricsQuery).toContain('<<.LabelMatchers>>');
      return r.name.as as string;
    });
    const hpa = plain['gpu-agent-hpa.yaml']!;
    for (const m of hpa.spec.metrics as Obj[]) {
      expect(m.type).toBe('External');
      expect(served).toContain(m.external.metric.name);
      expect(Object.keys(m.external.metric.selector.matchLabels).sort()).toEqual(['app', 'deployment']);
    }
  });
});
