/**
 * `serve build examples/cluster.ts:app --out DIR`: the Kubernetes manifests, parsed back with `yaml`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
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
      'configmap.yaml',
      'gpu-agent-hpa.yaml',
      'gpu-agent-service.yaml',
      'gpu-agent-statefulset.yaml',
      'head-deployment.yaml',
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
    expect(parse(readFileSync(path.join(out, 'kustomization.yaml'), 'utf8')).resources).toHaveLength(6);
  });

  it('an app without GPU deployments gets only the head, its service and the config', async () => {
    const dir = path.join(out, 'cpu');
    await buildCommand('examples/pipeline.ts:app', [], { out: dir }, repoRoot);
    expect(readdirSync(dir).sort()).toEqual([
      'configmap.yaml',
      'head-deployment.yaml',
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
