/**
 * The values sent to DCM against what its chart reads. DCM (darwin-cluster-manager in the original's
 * public repository) deep-merges our values over charts/darwin-fastapi-serve/values.yaml — maps merge
 * key by key, anything else (null, lists) replaces — and installs the chart with the result. A key no
 * template reads is therefore silently dropped, and a default we do not override leaks into the serve.
 *
 * Facts, written down from the chart (not the chart itself):
 * - CHART_READS: every `.Values` path the templates read, with the template it is read in;
 * - WHOLE: paths whose content the templates pass through whole (toYaml, range), so any key below them is read;
 * - DEFAULTS_THAT_LEAK: defaults in values.yaml that would reach a serve unless we override them;
 * - the hpa rules of values.schema.json.
 */
import { describe, expect, test } from 'bun:test'
import { loadConfig } from '../../src/config'
import { type RenderInput, renderServe } from '../../src/render'
import { chartFullname, chartImage } from '../../src/render/dcm-values'

const T = 'charts/darwin-fastapi-serve/templates/'
const CHART_READS: Record<string, string> = {
  name: `${T}_helpers.tpl (fullname, labels), deployment.yaml (DD_SERVICE_MAPPING)`,
  nameOverride: `${T}_helpers.tpl`,
  fullnameOverride: `${T}_helpers.tpl`,
  serviceName: `${T}_helpers.tpl (serviceName, ingressServiceName: the Service and the Ingress backend)`,
  'envs.ENV': `${T}_helpers.tpl (label tags.datadoghq.com/env)`,
  'envs.TEAM_SUFFIX': `${T}_helpers.tpl, deployment.yaml (DD_TAGS)`,
  'envs.VPC_SUFFIX': `${T}_helpers.tpl, deployment.yaml (DD_TAGS)`,
  org: `${T}_helpers.tpl (label key com.dreamsports.{org}/service)`,
  labels: `${T}_helpers.tpl`,
  'serviceAccount.enabled': `${T}_helpers.tpl, service-account.yaml`,
  'serviceAccount.name': `${T}_helpers.tpl`,
  'serviceAccount.annotations': `${T}service-account.yaml`,
  'tls.secretName': `${T}_helpers.tpl`,
  'tls.enabled': `${T}service.yaml`,
  'tls.port': `${T}service.yaml`,
  'ingressInt.healthcheckPath': `${T}_helpers.tpl (ALB annotations)`,
  'ingressInt.tags': `${T}_helpers.tpl (alb.ingress.kubernetes.io/tags)`,
  'ingressInt.inboundCIDRs': `${T}_helpers.tpl`,
  'ingressInt.albLogs.enabled': `${T}_helpers.tpl`,
  'ingressInt.albLogs.bucket': `${T}_helpers.tpl`,
  'ingressInt.ingressClass': `${T}_helpers.tpl, ingress-int.yaml (spec.ingressClassName; alb or nginx annotations)`,
  'ingressInt.enabled': `${T}ingress-int.yaml`,
  'ingressInt.path': `${T}ingress-int.yaml`,
  'ingressInt.pathType': `${T}ingress-int.yaml`,
  'ingressInt.namespace': `${T}ingress-int.yaml`,
  'ingressInt.annotations': `${T}ingress-int.yaml`,
  'ingressInt.tls': `${T}ingress-int.yaml`,
  'ingressInt.hosts': `${T}ingress-int.yaml, flagger.yaml`,
  'ingressExt.enabled': `${T}ingress-ext.yaml`,
  'ingressExt.tags': `${T}_helpers.tpl`,
  'ingressExt.inboundCIDRs': `${T}_helpers.tpl`,
  'ingressExt.ingressClass': `${T}_helpers.tpl, ingress-ext.yaml`,
  'ingressExt.path': `${T}ingress-ext.yaml`,
  'ingressExt.pathType': `${T}ingress-ext.yaml`,
  'ingressExt.namespace': `${T}ingress-ext.yaml`,
  'ingressExt.annotations': `${T}ingress-ext.yaml`,
  'ingressExt.tls': `${T}ingress-ext.yaml`,
  'ingressExt.hosts': `${T}ingress-ext.yaml, flagger.yaml`,
  podAnnotations: `${T}deployment.yaml (Deployment and pod template annotations)`,
  'hpa.enabled': `${T}deployment.yaml (replicas only without it), hpa.yaml`,
  replicaCount: `${T}deployment.yaml, hpa.yaml (minReplicas)`,
  'flagger.maxSurge': `${T}deployment.yaml (strategy.rollingUpdate: the only strategy it renders)`,
  'flagger.maxUnavailable': `${T}deployment.yaml`,
  topologySpreadConstraints: `${T}deployment.yaml`,
  'modelCache.enabled': `${T}deployment.yaml, mlflow-secret.yaml, model-cache.yaml (read unguarded: it must exist)`,
  'modelCache.strategy': `${T}deployment.yaml, model-cache.yaml`,
  'modelCache.downloaderImage': `${T}deployment.yaml, model-cache.yaml`,
  'modelCache.modelUri': `${T}deployment.yaml, mlflow-secret.yaml, model-cache.yaml`,
  'modelCache.cachePath': `${T}deployment.yaml, model-cache.yaml`,
  'modelCache.maxRetries': `${T}deployment.yaml, model-cache.yaml`,
  'modelCache.backoffSeconds': `${T}deployment.yaml, model-cache.yaml`,
  'modelCache.trackingUri': `${T}deployment.yaml (init container), mlflow-secret.yaml, model-cache.yaml`,
  'modelCache.trackingUsername': `${T}deployment.yaml, mlflow-secret.yaml, model-cache.yaml`,
  'modelCache.trackingPassword': `${T}deployment.yaml, mlflow-secret.yaml (Secret {fullname}-mlflow-creds, key password), model-cache.yaml`,
  'modelCache.resources': `${T}deployment.yaml, model-cache.yaml`,
  'modelCache.pvcName': `${T}deployment.yaml, model-cache.yaml`,
  'modelCache.storageClassName': `${T}model-cache.yaml`,
  'modelCache.size': `${T}model-cache.yaml`,
  global: `${T}model-cache.yaml (global.local-k8s)`,
  envs: `${T}deployment.yaml (one env var per key, value quoted)`,
  'configServer.enabled': `${T}deployment.yaml, sealed-secret.yaml`,
  'configServer.consulToken': `${T}sealed-secret.yaml`,
  'configServer.vaultToken': `${T}sealed-secret.yaml`,
  'image.repository': `${T}deployment.yaml ("{{ repository }}:{{ tag }}")`,
  'image.tag': `${T}deployment.yaml, _helpers.tpl (label tags.datadoghq.com/version)`,
  'image.pullPolicy': `${T}deployment.yaml`,
  livenessProbe: `${T}deployment.yaml (toYaml)`,
  readinessProbe: `${T}deployment.yaml (toYaml)`,
  'service.httpPort': `${T}deployment.yaml (containerPort app-port)`,
  'service.enabled': `${T}service.yaml`,
  'service.type': `${T}service.yaml`,
  'service.externalPort': `${T}service.yaml`,
  'service.nodePort': `${T}service.yaml`,
  'service.grpcPort': `${T}service.yaml`,
  command: `${T}deployment.yaml`,
  resources: `${T}deployment.yaml (toYaml)`,
  nodeSelector: `${T}deployment.yaml (with … toYaml)`,
  affinity: `${T}deployment.yaml`,
  tolerations: `${T}deployment.yaml`,
  namespace: `${T}hpa.yaml (metadata.namespace)`,
  'hpa.maxReplicas': `${T}hpa.yaml`,
  'hpa.cpu': `${T}hpa.yaml (averageUtilization of the cpu metric)`,
  'hpa.memory.target': `${T}hpa.yaml (Utilization → autoscaling/v2, else v2beta2)`,
  'hpa.memory.value': `${T}hpa.yaml`,
  'hpa.memory.unit': `${T}hpa.yaml`,
  'hpa.requests': `${T}hpa.yaml`,
  'pdb.enabled': `${T}pdb.yaml`,
  'pdb.minAvailable': `${T}pdb.yaml`,
  'flagger.enabled': `${T}flagger.yaml`,
  'flagger.progressDeadlineSeconds': `${T}flagger.yaml`,
  'flagger.interval': `${T}flagger.yaml`,
  'flagger.threshold': `${T}flagger.yaml`,
  'flagger.type': `${T}flagger.yaml`,
  'flagger.maxWeight': `${T}flagger.yaml`,
  'flagger.stepWeight': `${T}flagger.yaml`,
  'flagger.iterations': `${T}flagger.yaml`,
  'flagger.metrics': `${T}flagger.yaml`,
  cluster_name: `${T}flagger.yaml (MetricTemplate query)`,
  'serviceMonitor.enabled': `${T}service-monitor.yaml`,
  'serviceMonitor.interval': `${T}service-monitor.yaml`,
}
/** Read whole (toYaml or range): any key below is read. */
const WHOLE = ['envs', 'podAnnotations', 'livenessProbe', 'readinessProbe', 'resources', 'nodeSelector', 'affinity', 'tolerations', 'ingressInt.annotations', 'ingressInt.hosts', 'ingressInt.tls', 'labels', 'topologySpreadConstraints', 'modelCache.resources', 'flagger.metrics', 'global']

/** Defaults of values.yaml that reach every serve unless overridden: the leaf, or the keys of a map default. */
const DEFAULTS_THAT_LEAK: Record<string, string> = {
  'ingressInt.tags': 'AWS tags naming a person (provisioned-by-user=…) and an org',
  'ingressInt.annotations.external-dns.alpha.kubernetes.io/hostname': 'a demo host name',
  'ingressInt.healthcheckPath': '/healthcheck',
  'ingressInt.albLogs.enabled': 'false, with another org\'s bucket',
  'ingressInt.path': '/* (an ALB wildcard)',
  'ingressInt.pathType': 'ImplementationSpecific',
  'ingressInt.ingressClass': 'alb',
  'ingressInt.namespace': 'darwin',
  'ingressInt.hosts': '[localhost]',
  'nodeSelector.karpenter.sh/capacity-type': 'spot',
  'nodeSelector.serve': 'true (a boolean)',
  'flagger.maxSurge': '10%',
  'flagger.maxUnavailable': '1',
  'hpa.cpu': '60',
  'hpa.memory.value': '80 (a memory metric)',
  'pdb.enabled': 'true, minAvailable 1',
  'livenessProbe.initialDelaySeconds': '20',
  'livenessProbe.timeoutSeconds': '1',
  'livenessProbe.httpGet.path': 'healthcheck (no slash)',
  'readinessProbe.initialDelaySeconds': '20',
  'readinessProbe.httpGet.path': 'healthcheck',
  'envs.ENV': 'darwin-prod',
  'envs.SERVICE_NAME': 'ml-serve-demo',
  'resources.limits.memory': '4G',
  'resources.requests.cpu': '2',
  name: 'ml-serve-demo',
  cluster_name: 'darwin-prod-eks-cluster',
  org: 'dream11',
  'hpa.maxReplicas': '3',
  'service.httpPort': '8000',
  'modelCache.enabled': 'absent in one version of values.yaml (the templates then fail on .Values.modelCache.enabled)',
}
/** What our features need the chart to read (the list), each sent on every install. */
const FEATURE_PATHS = [
  'hpa.cpu',
  'hpa.maxReplicas',
  'replicaCount',
  'ingressInt.ingressClass',
  'ingressInt.tags',
  'ingressInt.healthcheckPath',
  'ingressInt.albLogs.enabled',
  'ingressInt.path',
  'ingressInt.pathType',
  'serviceName',
  'flagger.maxSurge',
  'flagger.maxUnavailable',
  'image.repository',
  'image.tag',
  'nodeSelector',
  'modelCache.enabled',
  'envs.ENV',
  'envs.SERVICE_NAME',
]
/** Sent by this service before, read by no template. */
const NOT_READ = ['hpa.targetCPUUtilizationPercentage', 'ingressInt.className', 'secretEnvs', 'istio', 'ingressInt.serviceName', 'ingressInt.additionalHosts']

function leafPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || (WHOLE.includes(prefix) && prefix !== '')) return [prefix]
  const entries = Object.entries(value as Record<string, unknown>)
  if (entries.length === 0) return [prefix]
  return entries.flatMap(([key, child]) => leafPaths(child, prefix === '' ? key : `${prefix}.${key}`))
}

function valueAt(values: Record<string, unknown>, path: string): unknown {
  // Map keys may hold dots (annotation and label names): match the longest known key at each level.
  let current: unknown = values
  let rest = path
  while (rest !== '') {
    if (current === null || typeof current !== 'object') return undefined
    const object = current as Record<string, unknown>
    const key = Object.keys(object)
      .filter((k) => rest === k || rest.startsWith(`${k}.`))
      .sort((a, b) => b.length - a.length)[0]
    if (key === undefined) return undefined
    current = object[key]
    rest = rest.slice(key.length + 1)
  }
  return current
}

const read = (path: string) => CHART_READS[path] !== undefined || WHOLE.some((whole) => path === whole || path.startsWith(`${whole}.`))

const baseInput: RenderInput = {
  serve: { name: 'fraud', type: 'api', description: '' },
  environment: { name: 'prod', domain_suffix: '.example.com', namespace: 'ml', cluster_name: 'prod-k8s', security_group: 'sg-1', subnets: 'subnet-a', workflow_url: '', cluster_driver: 'dcm' },
  infra: { backend_type: 'fastapi', cores: 0.5, memory: 1.5, min_replicas: 2, max_replicas: 6, node_capacity_type: 'spot', target_cpu_utilization: 55, additional_hosts: ['fraud.internal.example.com'] },
  artifact: { version: 'v1', image: 'registry.example.com:5000/darwin:fraud_v1' },
  deployment: { strategy: 'rolling', max_surge: '50%', max_unavailable: 1, environment_variables: { MODEL: 'x' }, revision: 3 },
  mlflow: { tracking_uri: 'https://mlflow.example.com', username: 'svc' },
}
const cases: [string, RenderInput, Record<string, string>][] = [
  ['prod, ALB', baseInput, { ENV: 'prod' }],
  ['prod, ALB logs', baseInput, { ENV: 'prod', ALB_LOGS_ENABLED: 'true', ALB_LOGS_BUCKET: 'logs' }],
  ['prod, nginx', baseInput, { ENV: 'prod', KUBE_INGRESS_CLASS: 'nginx' }],
  ['local', baseInput, { ENV: 'local' }],
  ['recreate, no mlflow', { ...baseInput, mlflow: undefined, deployment: { ...baseInput.deployment, strategy: 'recreate' } }, { ENV: 'prod' }],
]

describe('DCM values against the chart darwin-fastapi-serve', () => {
  for (const [name, input, env] of cases) {
    const values = renderServe(input, loadConfig({ ENABLE_OTEL: 'false', ...env })).dcm!.values

    test(`${name}: every path sent is one the chart reads`, () => {
      const unread = leafPaths(values).filter((path) => !read(path))
      expect(unread).toEqual([])
      for (const path of NOT_READ) expect(valueAt(values, path)).toBeUndefined()
    })

    test(`${name}: every feature path is sent, and no default leaks`, () => {
      for (const path of FEATURE_PATHS) expect({ path, sent: valueAt(values, path) !== undefined }).toEqual({ path, sent: true })
      for (const path of Object.keys(DEFAULTS_THAT_LEAK)) {
        // A map default's key is overridden by the key, or removed with its whole map (null replaces, as in DCM's merge).
        const parentNulled = path.startsWith('nodeSelector.') && valueAt(values, 'nodeSelector') === null
        expect({ path, overridden: parentNulled || valueAt(values, path) !== undefined }).toEqual({ path, overridden: true })
      }
    })

    test(`${name}: values.schema.json's hpa rules hold`, () => {
      const hpa = values.hpa as { enabled: unknown; maxReplicas: unknown; cpu: unknown; memory: { target: unknown; value: unknown; unit?: unknown } }
      expect(typeof hpa.enabled).toBe('boolean')
      expect(Number.isInteger(hpa.maxReplicas)).toBe(true)
      expect(Number.isInteger(hpa.cpu)).toBe(true)
      expect(['Utilization', 'Value']).toContain(hpa.memory.target as string)
      expect(Number.isInteger(hpa.memory.value)).toBe(true)
      // autoscaling/v2 only for a Utilization memory target (v2beta2 is gone from current clusters).
      expect(hpa.memory.target).toBe('Utilization')
    })

    test(`${name}: the chart's joins give back our image, and its names are valid`, () => {
      const image = values.image as { repository: string; tag: string }
      expect(`${image.repository}:${image.tag}`).toBe(input.artifact.image)
      const fullname = chartFullname('prod-fraud', values.name as string)
      expect(fullname).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/)
      expect(values.serviceName).toBe('fraud-prod')
      const annotations = (values.ingressInt as { annotations: Record<string, string> }).annotations
      // The chart opens `annotations:` only for a non-empty map, and appends its own under it.
      expect(Object.keys(annotations).length).toBeGreaterThan(0)
      expect((values.ingressInt as { hosts: string[] }).hosts.length).toBeGreaterThan(0)
    })
  }

  test('chartImage: a tag, a registry port without a tag, a digest', () => {
    expect(chartImage('r:5000/a/b:v1')).toEqual({ repository: 'r:5000/a/b', tag: 'v1' })
    expect(chartImage('r:5000/a/b')).toEqual({ repository: 'r:5000/a/b', tag: 'latest' })
    expect(chartImage('a@sha256:abc')).toEqual({ repository: 'a@sha256', tag: 'abc' })
  })

  test('the data above names a template for every path', () => {
    for (const [path, source] of Object.entries(CHART_READS)) expect({ path, source: source.startsWith(T) }).toEqual({ path, source: true })
  })
})
