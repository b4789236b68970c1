/**
 * Render benchmark: `renderServe` of one serve in one environment (what a deploy, dry run or preview
 * does before touching any cluster), then `toYaml` of its manifests (what a revision stores), for a
 * FastAPI serve, a Ray serve and a workflow serve. In-process, no I/O; µs per call after a warm-up.
 */
import { loadConfig } from '../src/config'
import { type RenderInput, renderServe, toYaml } from '../src/render'
import { fixed, markdownTable, percentile } from './support'

const base: RenderInput = {
  serve: { name: 'fraud', type: 'api', description: 'Fraud model' },
  environment: { name: 'prod', domain_suffix: '.example.com', namespace: 'ml-serve', cluster_name: 'prod-k8s', security_group: 'sg-1, sg-2', subnets: 'subnet-a, subnet-b', workflow_url: 'http://workflow:8080' },
  infra: { backend_type: 'fastapi', cores: 2, memory: 4, min_replicas: 2, max_replicas: 5, node_capacity_type: 'spot', additional_hosts: ['fraud.internal.example.com'] },
  artifact: { version: 'v1.2.0', image: 'registry.example.com:5000/darwin:fraud_v1.2.0' },
  deployment: { strategy: 'rolling', max_surge: 1, max_unavailable: 0, environment_variables: { model_name: 'fraud', Threshold: '0.5' }, revision: 7 },
  mlflow: { tracking_uri: 'http://mlflow.example.com', username: 'serve' },
}

const CASES: { label: string; input: RenderInput }[] = [
  { label: 'api, fastapi (+ MLflow secret)', input: base },
  { label: 'api, ray', input: { ...base, infra: { ...base.infra, backend_type: 'ray', min_replicas: 1, max_replicas: 4 } } },
  { label: 'workflow', input: { ...base, serve: { ...base.serve, type: 'workflow' }, workflow: { schedule: '0 3 * * *' } } },
]

export interface RenderResult {
  label: string
  objects: number
  yamlBytes: number
  render: { p50: number; p99: number }
  yaml: { p50: number; p99: number }
}

/** p50/p99 in µs of `iterations` timed calls, after `iterations / 10` untimed ones. */
function time(operation: () => void, iterations: number) {
  for (let i = 0; i < iterations / 10; i++) operation()
  const samples = new Float64Array(iterations)
  for (let i = 0; i < iterations; i++) {
    const started = performance.now()
    operation()
    samples[i] = (performance.now() - started) * 1000
  }
  samples.sort()
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) }
}

export function benchRender(iterations = 2_000): RenderResult[] {
  const settings = loadConfig({ ENV: 'prod', ENABLE_OTEL: 'false', JOB_CLUSTER_RUNTIME: 'ray-2.37-py310' })
  return CASES.map(({ label, input }) => {
    const { manifests } = renderServe(input, settings)
    return {
      label,
      objects: manifests.length,
      yamlBytes: toYaml(manifests).length,
      render: time(() => renderServe(input, settings), iterations),
      yaml: time(() => toYaml(manifests), iterations),
    }
  })
}

export function renderTable(results: RenderResult[]) {
  return markdownTable(
    ['serve', 'objects', 'YAML bytes', 'renderServe p50 µs', 'p99 µs', 'toYaml p50 µs', 'p99 µs'],
    results.map((r) => [r.label, r.objects, r.yamlBytes, fixed(r.render.p50, 0), fixed(r.render.p99, 0), fixed(r.yaml.p50, 0), fixed(r.yaml.p99, 0)]),
  )
}

if (import.meta.main) console.log(renderTable(benchRender(Number(process.argv[2] ?? 2_000))))
