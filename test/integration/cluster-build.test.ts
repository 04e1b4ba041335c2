/**
 * `serve build examples/cluster.ts:app --out DIR`: the Kubernetes manifests, parsed back with `yaml`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { buildCommand } from '../../packages/core/src/cli/build-command.js';
import { parseServeConfig } from '../../packages/core/src/config.js';
import { repoRoot } from '../helpers/models.js';

const out = mkdtempSync(path.join(os.tmpdir(), 'flotilla-build-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

type Obj = Record<string, any>;

describe('serve build --target kubernetes', () => {
  it('writes a head, GPU agents, services, probes, an HPA on the queue metric and the config', async () => {
    const summary = await buildCommand(
      'examples/cluster.ts:app',
      [],
      { out, image: 'registry.example/flotilla:1', namespace: 'llm' },
      repoRoot,
    );
    expect(summary).toContain('GpuWorker (1 GPU × ≤4)');
    const files = readdirSync(out).sort();
    expect(files).toEqual([
      'cluster-secret.yaml',
      'configmap.yaml',
      'gpu-agent-hpa.yaml',
      'gpu-agent-pdb.yaml',
      'gpu-agent-service.yaml',
      'gpu-agent-statefulset.yaml',
      'head-deployment.yaml',
      'head-networkpolicy.yaml',
      'head-service.yaml',
      'kustomization.yaml',
    ]);
    const docs = Object.fromEntries(
      files.map((f) => {
        const all = parseAllDocuments(readFileSync(path.join(out, f), 'utf8'));
        expect(all).toHaveLength(1);
        return [f, all[0]!.toJS() as Obj];
      }),
    );
    expect(
      Object.values(docs)
        .map((d) => d.kind)
        .sort(),
    ).toEqual([
      'ConfigMap',
      'Deployment',
      'HorizontalPodAutoscaler',
      'Kustomization',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'Secret',
      'Service',
      'Service',
      'StatefulSet',
    ]);
    for (const [f, d] of Object.entries(docs)) if (f !== 'kustomization.yaml') expect(d.metadata.namespace).toBe('llm');

    const head = docs['head-deployment.yaml']!;
    const hc = head.spec.template.spec.containers[0];
    expect(head.spec.replicas).toBe(1);
    expect(hc.image).toBe('registry.example/flotilla:1');
    expect(hc.command).toEqual(
      expect.arrayContaining(['run', 'examples/cluster.ts:app', '--cluster-port', '9100', '--host', '0.0.0.0']),
    );
    expect(hc.ports.map((p: Obj) => [p.name, p.containerPort])).toEqual([
      ['http', 8000],
      ['grpc', 9000],
      ['cluster', 9100],
    ]);
    for (const probe of [hc.readinessProbe, hc.livenessProbe])
      expect(probe.httpGet).toEqual({ path: '/-/healthz', port: 'http' });
    expect(head.spec.selector.matchLabels).toEqual(head.spec.template.metadata.labels);

    const svc = docs['head-service.yaml']!;
    expect(svc.spec.ports.map((p: Obj) => p.port)).toEqual([8000, 9000, 9100]);
    expect(svc.spec.selector).toEqual(head.spec.template.metadata.labels);

    const agents = docs['gpu-agent-statefulset.yaml']!;
    const ac = agents.spec.template.spec.containers[0];
    expect(ac.resources.limits['nvidia.com/gpu']).toBe('1');
    expect(ac.command).toEqual(
      expect.arrayContaining([
        'agent',
        '--address',
        'flotilla-head:9100',
        '--gpus',
        '1',
        '--node-id',
        '$(POD_NAME)',
        '--http-host',
        '0.0.0.0',
      ]),
    );
    expect(ac.ports).toEqual([{ name: 'http', containerPort: 8000 }]);
    expect(agents.spec.replicas).toBe(1);
    expect(agents.spec.serviceName).toBe(docs['gpu-agent-service.yaml']!.metadata.name);

    const hpa = docs['gpu-agent-hpa.yaml']!;
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'StatefulSet', name: agents.metadata.name });
    expect([hpa.spec.minReplicas, hpa.spec.maxReplicas]).toEqual([1, 4]);
    expect(hpa.spec.metrics[0].external.metric).toEqual({
      name: 'flotilla_deployment_queued_requests',
      selector: { matchLabels: { app: 'default', deployment: 'GpuWorker' } },
    });

    const config = parseServeConfig(docs['configmap.yaml']!.data['serve.yaml']);
    expect(config.applications[0]).toMatchObject({ name: 'default', importPath: 'examples/cluster.ts:app' });
    expect(parse(readFileSync(path.join(out, 'kustomization.yaml'), 'utf8')).resources).toHaveLength(9);

    // The cluster token: generated (crypto random), in a Secret written owner-only, mounted read-only
    // (0400) by head and agents and referenced by their flags; no TLS material without --cluster-tls-*.
    const secret = docs['cluster-secret.yaml']!;
    expect(statSync(path.join(out, 'cluster-secret.yaml')).mode & 0o777).toBe(0o600);
    expect(Object.keys(secret.stringData)).toEqual(['token']);
    expect(secret.stringData.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(summary).toMatch(/Cluster port: token in cluster-secret\.yaml .*no TLS/);
    expect(summary).not.toContain(secret.stringData.token);
    for (const [pod, flag] of [
      [head, '--cluster-token-file'],
      [agents, '--token-file'],
    ] as const) {
      const spec = pod.spec.template.spec;
      const volume = spec.volumes.find((v: Obj) => v.secret);
      expect(volume.secret).toMatchObject({ secretName: secret.metadata.name, defaultMode: 0o400 });
      expect(volume.secret.items).toEqual([{ key: 'token', path: 'token' }]);
      const mount = spec.containers[0].volumeMounts.find((m: Obj) => m.name === volume.name);
      expect(mount.readOnly).toBe(true);
      const cmd: string[] = spec.containers[0].command;
      expect(cmd[cmd.indexOf(flag) + 1]).toBe(`${mount.mountPath}/token`);
      expect(cmd.join(' ')).not.toMatch(/tls/);
      expect(pod.spec.template.metadata.annotations['flotilla.dev/cluster-secret-sha256']).toMatch(/^[0-9a-f]{64}$/);
    }

    // The cluster port admits the agent pods only; HTTP and gRPC stay reachable.
    const policy = docs['head-networkpolicy.yaml']!;
    expect(policy.spec.podSelector.matchLabels).toEqual(head.spec.template.metadata.labels);
    expect(policy.spec.policyTypes).toEqual(['Ingress']);
    const clusterRules = policy.spec.ingress.filter((r: Obj) => r.ports.some((p: Obj) => p.port === 9100));
    expect(clusterRules).toEqual([
      {
        from: [{ podSelector: { matchLabels: agents.spec.template.metadata.labels } }],
        ports: [{ protocol: 'TCP', port: 9100 }],
      },
    ]);
    const open = policy.spec.ingress.filter((r: Obj) => !r.from);
    expect(open.flatMap((r: Obj) => r.ports.map((p: Obj) => p.port)).sort()).toEqual([8000, 9000]);

    // Building again into the same directory keeps the token (running agents are not locked out).
    await buildCommand('examples/cluster.ts:app', [], { out, namespace: 'llm' }, repoRoot);
    expect(parse(readFileSync(path.join(out, 'cluster-secret.yaml'), 'utf8')).stringData.token).toBe(
      secret.stringData.token,
    );
  });

  it('with --cluster-tls-* the Secret carries the TLS material and head and agents use mutual TLS', async () => {
    const dir = path.join(out, 'tls');
    const pems = path.join(out, 'pems');
    mkdirSync(pems, { recursive: true });
    const pem = (name: string) => {
      const file = path.join(pems, name);
      writeFileSync(file, `-----BEGIN ${name}-----\nAAAA\n-----END ${name}-----\n`);
      return file;
    };
    const summary = await buildCommand(
      'examples/cluster.ts:app',
      [],
      {
        out: dir,
        clusterTlsCa: pem('ca'),
        clusterTlsCert: pem('head-cert'),
        clusterTlsKey: pem('head-key'),
        clusterTlsAgentCert: pem('agent-cert'),
        clusterTlsAgentKey: pem('agent-key'),
      },
      repoRoot,
    );
    expect(summary).toMatch(/Cluster port: .*mutual TLS/);
    const read = (f: string) => parse(readFileSync(path.join(dir, f), 'utf8')) as Obj;
    const secret = read('cluster-secret.yaml');
    expect(Object.keys(secret.stringData).sort()).toEqual([
      'agent.crt',
      'agent.key',
      'ca.crt',
      'head.crt',
      'head.key',
      'token',
    ]);
    expect(secret.stringData['head.key']).toContain('BEGIN head-key');
    const podOf = (f: string) => read(f).spec.template.spec;
    const head = podOf('head-deployment.yaml');
    const agent = podOf('gpu-agent-statefulset.yaml');
    const keys = (pod: Obj) =>
      pod.volumes
        .find((v: Obj) => v.secret)
        .secret.items.map((i: Obj) => i.key)
        .sort();
    // Each pod gets only what it needs: the agents never see the head's key, nor the head the agents'.
    expect(keys(head)).toEqual(['ca.crt', 'head.crt', 'head.key', 'token']);
    expect(keys(agent)).toEqual(['agent.crt', 'agent.key', 'ca.crt', 'token']);
    expect(head.containers[0].command).toEqual(
      expect.arrayContaining([
        '--cluster-tls-cert',
        '/etc/flotilla-cluster/head.crt',
        '--cluster-tls-key',
        '/etc/flotilla-cluster/head.key',
        '--cluster-tls-ca',
        '/etc/flotilla-cluster/ca.crt',
        '--cluster-tls-require-client-cert',
      ]),
    );
    expect(agent.containers[0].command).toEqual(
      expect.arrayContaining([
        '--tls-ca',
        '/etc/flotilla-cluster/ca.crt',
        '--tls-cert',
        '/etc/flotilla-cluster/agent.crt',
        '--tls-key',
        '/etc/flotilla-cluster/agent.key',
      ]),
    );
    // Half the TLS files is an error, not a silently plaintext cluster.
    await expect(
      buildCommand('examples/cluster.ts:app', [], { out: path.join(out, 'half'), clusterTlsCert: pem('x') }, repoRoot),
    ).rejects.toThrow(/Cluster TLS needs all of --cluster-tls-ca, --cluster-tls-cert and --cluster-tls-key/);
  });

  it('an app without GPU deployments gets only the head, its service and the config', async () => {
    const dir = path.join(out, 'cpu');
    await buildCommand('examples/pipeline.ts:app', [], { out: dir }, repoRoot);
    expect(readdirSync(dir).sort()).toEqual([
      'cluster-secret.yaml',
      'configmap.yaml',
      'head-deployment.yaml',
      'head-networkpolicy.yaml',
      'head-service.yaml',
      'kustomization.yaml',
    ]);
  });

  it('refuses another target with a clear message', async () => {
    await expect(buildCommand('examples/cluster.ts:app', [], { out, target: 'nomad' }, repoRoot)).rejects.toThrow(
      /cannot target 'nomad'/,
    );
  });
});
