import { describe, expect, test } from 'bun:test'
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js'
import YAML from 'yaml'
import { loadConfig } from '../../src/config'
import { AppError } from '../../src/lib/errors'
import { type KubernetesObject, type RenderInput, renderServe, sortKeys, splitImage, toYaml } from '../../src/render'

const settings = (env: Record<string, string> = {}) => loadConfig({ ENV: 'prod', ENABLE_OTEL: 'false', ...env })

const input = (overrides: { infra?: Partial<RenderInput['infra']>; deployment?: Partial<RenderInput['deployment']>; serve?: Partial<RenderInput['serve']> } & Partial<Omit<RenderInput, 'infra' | 'deployment' | 'serve'>> = {}): RenderInput => {
  const { infra, deployment, serve, ...rest } = overrides
  return {
    serve: { name: 'fraud', type: 'api', description: 'Fraud model', ...serve },
    environment: { name: 'prod', domain_suffix: '.example.com', namespace: 'ml-serve', cluster_name: 'prod-k8s', security_group: 'sg-1, sg-2', subnets: 'subnet-a, subnet-b', workflow_url: 'http://workflow:8080' },
    infra: { backend_type: 'fastapi', cores: 2, memory: 4, min_replicas: 2, max_replicas: 5, node_capacity_type: 'spot', additional_hosts: ['fraud.internal.example.com'], ...infra },
    artifact: { version: 'v1.2.0', image: 'registry.example.com:5000/darwin:fraud_v1.2.0' },
    deployment: { strategy: 'rolling', max_surge: 1, max_unavailable: 0, environment_variables: { model_name: 'fraud', Threshold: '0.5' }, revision: 7, ...deployment },
    ...rest,
  }
}

const find = (objects: KubernetesObject[], kind: string) => {
  const found = objects.find((o) => o.kind === kind)
  if (!found) throw new Error(`no ${kind} in ${objects.map((o) => o.kind).join(', ')}`)
  return found as any // reading nested fields of a rendered object in assertions
}

/** Built-in kinds must survive client-node's model round trip unchanged: no unknown or misplaced field. */
const MODEL_OF: Record<string, string> = {
  'v1/Service': 'V1Service',
  'v1/Secret': 'V1Secret',
  'apps/v1/Deployment': 'V1Deployment',
  'autoscaling/v2/HorizontalPodAutoscaler': 'V2HorizontalPodAutoscaler',
  'networking.k8s.io/v1/Ingress': 'V1Ingress',
  'batch/v1/CronJob': 'V1CronJob',
}

function expectValidObject(object: KubernetesObject) {
  expect(object.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
  expect(object.metadata.name.length).toBeLessThanOrEqual(63)
  for (const [key, value] of Object.entries(object.metadata.labels)) {
    expect(value).toMatch(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/)
    expect(value.length).toBeLessThanOrEqual(63)
    expect(key.length).toBeLessThanOrEqual(253)
  }
  const model = MODEL_OF[`${object.apiVersion}/${object.kind}`]
  if (model) {
    const plain = JSON.parse(JSON.stringify(object))
    const typed = ObjectSerializer.deserialize(plain, model)
    expect(JSON.parse(JSON.stringify(ObjectSerializer.serialize(typed, model)))).toEqual(plain)
    return
  }
  const spec = (object as any).spec
  if (object.kind === 'RayService') {
    const cluster = spec.rayClusterConfig
    expect(typeof spec.serveConfigV2).toBe('string')
    expect(cluster.headGroupSpec.rayStartParams).toBeObject()
    expect(cluster.headGroupSpec.template.spec.containers[0].image).toBeString()
    for (const group of cluster.workerGroupSpecs) {
      expect(group.groupName).toBeString()
      expect(group.rayStartParams).toBeObject()
      expect(group.minReplicas).toBeLessThanOrEqual(group.maxReplicas)
      // The pod templates are core PodTemplateSpecs: check them against the model too.
      const template = JSON.parse(JSON.stringify(group.template))
      expect(JSON.parse(JSON.stringify(ObjectSerializer.serialize(ObjectSerializer.deserialize(template, 'V1PodTemplateSpec'), 'V1PodTemplateSpec')))).toEqual(template)
    }
    return
  }
  if (object.kind === 'VirtualService') {
    expect(spec.hosts.length).toBeGreaterThan(0)
    expect(spec.http[0].route[0].destination.host).toBeString()
    return
  }
  throw new Error(`no validation for ${object.apiVersion} ${object.kind}`)
}

describe('fastapi serve', () => {
  const rendered = renderServe(input(), settings())

  test('renders Service, Deployment, HPA and Ingress in apply order, all valid objects of their kind', () => {
    expect(rendered.manifests.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Service/fraud-prod', 'Deployment/fraud-prod', 'HorizontalPodAutoscaler/fraud-prod', 'Ingress/fraud-prod'])
    for (const object of rendered.manifests) {
      expect(object.metadata.namespace).toBe('ml-serve')
      expectValidObject(object)
    }
  })

  test('labels name the serve, environment, artifact version, org and manager', () => {
    expect(find(rendered.manifests, 'Deployment').metadata.labels).toEqual({
      'app.kubernetes.io/instance': 'fraud-prod',
      'app.kubernetes.io/managed-by': 'darwin-ml-serve',
      'app.kubernetes.io/name': 'fraud',
      'app.kubernetes.io/version': 'v1.2.0',
      'darwin.ml-serve/environment': 'prod',
      'darwin.ml-serve/org': 'my-org',
      'darwin.ml-serve/serve': 'fraud',
    })
  })

  test('Deployment: image, port, probes, resources, spot scheduling, rolling strategy, env', () => {
    const deployment = find(rendered.manifests, 'Deployment')
    expect(deployment.spec.replicas).toBeUndefined() // owned by the HPA
    expect(deployment.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/instance': 'fraud-prod', 'darwin.ml-serve/environment': 'prod', 'darwin.ml-serve/serve': 'fraud' })
    expect(deployment.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } })
    const pod = deployment.spec.template
    expect(pod.metadata.annotations).toEqual({ 'darwin.ml-serve/revision': '7' })
    expect(pod.spec.nodeSelector).toEqual({ 'karpenter.sh/capacity-type': 'spot', serve: 'true' })
    expect(pod.spec.tolerations).toEqual([
      { key: 'serve', operator: 'Equal', value: 'true', effect: 'NoSchedule' },
      { key: 'karpenter.sh/capacity-type', operator: 'Equal', value: 'spot', effect: 'NoSchedule' },
    ])
    const container = pod.spec.containers[0]
    expect(container.image).toBe('registry.example.com:5000/darwin:fraud_v1.2.0')
    expect(container.ports).toEqual([{ name: 'http', containerPort: 8000, protocol: 'TCP' }])
    expect(container.readinessProbe.httpGet).toEqual({ path: '/healthcheck', port: 'http' })
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthcheck', port: 'http' })
    expect(container.resources).toEqual({ requests: { cpu: '2', memory: '4Gi' }, limits: { cpu: '2', memory: '4Gi' } })
    expect(container.env).toEqual([
      { name: 'ENV', value: 'prod' },
      { name: 'SERVICE_NAME', value: 'fraud' },
      { name: 'MODEL_NAME', value: 'fraud' },
      { name: 'THRESHOLD', value: '0.5' },
    ])
  })

  test('HPA and Service', () => {
    const hpa = find(rendered.manifests, 'HorizontalPodAutoscaler')
    expect(hpa.spec).toEqual({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'fraud-prod' },
      minReplicas: 2,
      maxReplicas: 5,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
    })
    expect(find(rendered.manifests, 'Service').spec).toEqual({
      type: 'ClusterIP',
      selector: { 'app.kubernetes.io/instance': 'fraud-prod', 'darwin.ml-serve/environment': 'prod', 'darwin.ml-serve/serve': 'fraud' },
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' }],
    })
  })

  test('ALB Ingress: class, hosts, subnets, security groups, tags; no access logs unless enabled', () => {
    const ingress = find(rendered.manifests, 'Ingress')
    expect(ingress.spec.ingressClassName).toBe('alb')
    expect(ingress.spec.rules.map((r: any) => r.host)).toEqual(['fraud.example.com', 'fraud.internal.example.com'])
    expect(ingress.spec.rules[0].http.paths[0]).toEqual({ path: '/', pathType: 'Prefix', backend: { service: { name: 'fraud-prod', port: { name: 'http' } } } })
    expect(ingress.metadata.annotations).toEqual({
      'external-dns.alpha.kubernetes.io/hostname': 'fraud.example.com,fraud.internal.example.com',
      'alb.ingress.kubernetes.io/scheme': 'internal',
      'alb.ingress.kubernetes.io/target-type': 'ip',
      'alb.ingress.kubernetes.io/healthcheck-path': '/healthcheck',
      'alb.ingress.kubernetes.io/security-groups': 'sg-1,sg-2',
      'alb.ingress.kubernetes.io/subnets': 'subnet-a,subnet-b',
      'alb.ingress.kubernetes.io/tags': 'environment=prod,service=fraud,org=my-org,provisioned-by=darwin-ml-serve',
    })
  })

  test('ALB with access logs', () => {
    const withLogs = renderServe(input(), settings({ ALB_LOGS_ENABLED: 'true', ALB_LOGS_BUCKET: 'logs-bucket', ALB_LOGS_PREFIX: 'serves' }))
    expect(find(withLogs.manifests, 'Ingress').metadata.annotations['alb.ingress.kubernetes.io/load-balancer-attributes']).toBe(
      'access_logs.s3.enabled=true,access_logs.s3.bucket=logs-bucket,access_logs.s3.prefix=serves',
    )
  })

  test('another ingress class gets no AWS annotations', () => {
    const nginx = renderServe(input(), settings({ KUBE_INGRESS_CLASS: 'nginx' }))
    const ingress = find(nginx.manifests, 'Ingress')
    expect(ingress.spec.ingressClassName).toBe('nginx')
    expect(Object.keys(ingress.metadata.annotations)).toEqual(['external-dns.alpha.kubernetes.io/hostname'])
  })

  test('on-demand: capacity type on-demand, no spot toleration; recreate strategy', () => {
    const ondemand = renderServe(input({ infra: { node_capacity_type: 'ondemand' }, deployment: { strategy: 'recreate' } }), settings())
    const deployment = find(ondemand.manifests, 'Deployment')
    expect(deployment.spec.template.spec.nodeSelector).toEqual({ 'karpenter.sh/capacity-type': 'on-demand', serve: 'true' })
    expect(deployment.spec.template.spec.tolerations).toEqual([{ key: 'serve', operator: 'Equal', value: 'true', effect: 'NoSchedule' }])
    expect(deployment.spec.strategy).toEqual({ type: 'Recreate' })
    for (const object of ondemand.manifests) expectValidObject(object)
  })

  test('with Istio and no domain_suffix: the gateway routes /<serve> on any host, as the Ingress would', () => {
    const rendered = renderServe(input({ environment: { ...input().environment, domain_suffix: '' } }), settings({ ENABLE_ISTIO: 'true' }))
    const vs = find(rendered.manifests, 'VirtualService')
    expect(vs.spec.hosts).toEqual(['*'])
    expect(vs.spec.http[0].match).toEqual([{ uri: { prefix: '/fraud' } }])
    const env = find(rendered.manifests, 'Deployment').spec.template.spec.containers[0].env
    expect(env).toContainEqual({ name: 'ROOT_PATH', value: '/fraud' })
  })

  test('with Istio: a VirtualService through the gateway instead of the Ingress', () => {
    const istio = renderServe(input(), settings({ ENABLE_ISTIO: 'true', ISTIO_SERVICE_NAME: 'mesh-gw', ISTIO_NAMESPACE: 'mesh' }))
    expect(istio.manifests.map((o) => o.kind)).toEqual(['Service', 'Deployment', 'HorizontalPodAutoscaler', 'VirtualService'])
    const vs = find(istio.manifests, 'VirtualService')
    expect(vs.apiVersion).toBe('networking.istio.io/v1beta1')
    expect(vs.spec).toEqual({
      hosts: ['fraud.example.com', 'fraud.internal.example.com'],
      gateways: ['mesh/mesh-gw'],
      http: [{ route: [{ destination: { host: 'fraud-prod.ml-serve.svc.cluster.local', port: { number: 80 } } }] }],
    })
    for (const object of istio.manifests) expectValidObject(object)
  })

  test('MLflow: URI and user as values, the password only as a secretKeyRef to a Secret the driver writes', () => {
    const withMlflow = renderServe(input({ mlflow: { tracking_uri: 'https://mlflow.example.com', username: 'svc' } }), settings())
    const env = find(withMlflow.manifests, 'Deployment').spec.template.spec.containers[0].env
    expect(env).toContainEqual({ name: 'MLFLOW_TRACKING_URI', value: 'https://mlflow.example.com' })
    expect(env).toContainEqual({ name: 'MLFLOW_TRACKING_USERNAME', value: 'svc' })
    expect(env).toContainEqual({ name: 'MLFLOW_TRACKING_PASSWORD', valueFrom: { secretKeyRef: { name: 'fraud-prod-mlflow', key: 'password' } } })
    expect(withMlflow.managedSecrets).toEqual([{ name: 'fraud-prod-mlflow', namespace: 'ml-serve', key: 'password', labels: find(withMlflow.manifests, 'Deployment').metadata.labels }])
    expect(withMlflow.manifests.some((o) => o.kind === 'Secret')).toBe(false)

    const existing = renderServe(input({ mlflow: { tracking_uri: 'https://m', existing_password_secret: { name: 'shared-mlflow', key: 'pw' } } }), settings())
    expect(find(existing.manifests, 'Deployment').spec.template.spec.containers[0].env).toContainEqual({ name: 'MLFLOW_TRACKING_PASSWORD', valueFrom: { secretKeyRef: { name: 'shared-mlflow', key: 'pw' } } })
    expect(existing.managedSecrets).toEqual([])
  })

  test('DCM values: what the chart darwin-fastapi-serve reads (test/unit/dcm-chart.test.ts checks every path)', () => {
    expect(rendered.dcm?.darwinResource).toBe('darwin-fastapi-serve')
    expect(rendered.dcm?.version).toBe('v1.2.0')
    const values = rendered.dcm?.values as any
    expect(values.name).toBe('fraud-prod')
    expect(values.serviceName).toBe('fraud-prod')
    expect(values.cluster_name).toBe('prod-k8s')
    expect(values.org).toBe('my-org')
    expect(values.replicaCount).toBe(2)
    expect(values.hpa).toEqual({ enabled: true, maxReplicas: 5, cpu: 70, memory: { target: 'Utilization', value: 100, unit: 'Mi' } })
    expect(values.image).toEqual({ repository: 'registry.example.com:5000/darwin', tag: 'fraud_v1.2.0', pullPolicy: 'Always' })
    expect(values.envs).toEqual({ ENV: 'prod', SERVICE_NAME: 'fraud', MODEL_NAME: 'fraud', THRESHOLD: '0.5' })
    expect(values.service).toEqual({ enabled: true, type: 'ClusterIP', httpPort: 8000, externalPort: 80 })
    expect(values.livenessProbe.httpGet).toEqual({ path: '/healthcheck', port: 8000 })
    expect(values.resources).toEqual({ limits: { cpu: '2', memory: '4Gi' }, requests: { cpu: '2', memory: '4Gi' } })
    expect(values.nodeSelector).toEqual({ 'karpenter.sh/capacity-type': 'spot', serve: 'true' })
    expect(values.podAnnotations).toEqual({ 'darwin.ml-serve/revision': '7' })
    expect(values.flagger).toEqual({ enabled: false, maxSurge: 1, maxUnavailable: 0 })
    expect(values.modelCache).toEqual({ enabled: false })
    expect(values.ingressInt).toMatchObject({
      enabled: true,
      ingressClass: 'alb',
      namespace: 'ml-serve',
      hosts: ['fraud.example.com', 'fraud.internal.example.com'],
      path: '/',
      pathType: 'Prefix',
      healthcheckPath: '/healthcheck',
      tags: 'environment=prod,service=fraud,org=my-org,provisioned-by=darwin-ml-serve',
      albLogs: { enabled: false },
    })
    expect(values.ingressInt.annotations).toEqual({
      'external-dns.alpha.kubernetes.io/hostname': 'fraud.example.com,fraud.internal.example.com',
      'alb.ingress.kubernetes.io/security-groups': 'sg-1,sg-2',
      'alb.ingress.kubernetes.io/subnets': 'subnet-a,subnet-b',
    })
    const recreate = renderServe(input({ deployment: { strategy: 'recreate' } }), settings()).dcm?.values as any
    expect(recreate.flagger).toEqual({ enabled: false, maxSurge: 0, maxUnavailable: '100%' })
  })

  test('locally: no node selection, path routing at /<serve>, ROOT_PATH for the app', () => {
    const local = renderServe(input(), loadConfig({ ENV: 'local', ENABLE_OTEL: 'false' }))
    const pod = find(local.manifests, 'Deployment').spec.template.spec
    expect(pod.nodeSelector).toBeUndefined()
    expect(pod.containers[0].env).toContainEqual({ name: 'ROOT_PATH', value: '/fraud' })
    expect(find(local.manifests, 'Ingress').spec.rules).toEqual([{ http: { paths: [{ path: '/fraud', pathType: 'Prefix', backend: { service: { name: 'fraud-prod', port: { name: 'http' } } } } ] } }])
    const values = local.dcm?.values as any
    // null, as the original sends: DCM's merge would keep the chart's default selector under {}.
    expect(values.nodeSelector).toBeNull()
    expect(values.tolerations).toEqual([])
    expect(values.envs.ROOT_PATH).toBe('/fraud')
    expect(values.ingressInt).toMatchObject({ hosts: ['localhost'], tags: '', annotations: { 'external-dns.alpha.kubernetes.io/hostname': '' } })
    const nginx = renderServe(input(), loadConfig({ ENV: 'local', ENABLE_OTEL: 'false', KUBE_INGRESS_CLASS: 'nginx' })).dcm?.values as any
    // The chart's nginx annotations rewrite to /$2: the path's second group is the rest of the request path.
    expect(nginx.ingressInt).toMatchObject({ ingressClass: 'nginx', path: '/fraud(/|$)(.*)', pathType: 'ImplementationSpecific' })
    const nginxProd = renderServe(input(), settings({ KUBE_INGRESS_CLASS: 'nginx' })).dcm?.values as any
    expect(nginxProd.ingressInt).toMatchObject({ path: '/()(.*)', pathType: 'ImplementationSpecific', tags: '' })
  })
})

describe('ray serve', () => {
  const rendered = renderServe(input({ infra: { backend_type: 'ray', min_replicas: 1, max_replicas: 4 } }), settings())

  test('a RayService with autoscaled workers, its Service on the head and the Ingress', () => {
    expect(rendered.manifests.map((o) => o.kind)).toEqual(['Service', 'RayService', 'Ingress'])
    for (const object of rendered.manifests) expectValidObject(object)
    const ray = find(rendered.manifests, 'RayService')
    expect(ray.apiVersion).toBe('ray.io/v1')
    const cluster = ray.spec.rayClusterConfig
    expect(cluster.enableInTreeAutoscaling).toBe(true)
    const head = cluster.headGroupSpec.template.spec.containers[0]
    expect(head.resources).toEqual({ requests: { cpu: '2', memory: '4Gi' }, limits: { cpu: '2', memory: '4Gi' } })
    expect(head.ports).toContainEqual({ name: 'http', containerPort: 8000 })
    const workers = cluster.workerGroupSpecs[0]
    expect([workers.replicas, workers.minReplicas, workers.maxReplicas]).toEqual([1, 1, 4])
    expect(workers.template.spec.nodeSelector).toEqual({ 'karpenter.sh/capacity-type': 'spot', serve: 'true' })
    expect(YAML.parse(ray.spec.serveConfigV2)).toEqual({ http_options: { host: '0.0.0.0', port: 8000 }, applications: [{ name: 'fraud', route_prefix: '/', import_path: 'main:app' }] })
    expect(find(rendered.manifests, 'Service').spec.selector['darwin.ml-serve/ray-node']).toBe('head')
    expect(rendered.dcm).toBeUndefined()
  })
})

describe('workflow serve', () => {
  test('a CronJob on the schedule, told the workflow service and the job cluster runtime', () => {
    const rendered = renderServe(input({ serve: { type: 'workflow' }, workflow: { schedule: '0 3 * * *' } }), settings({ JOB_CLUSTER_RUNTIME: 'ray-2.37-py310' }))
    expect(rendered.manifests.map((o) => o.kind)).toEqual(['CronJob'])
    const cronJob = find(rendered.manifests, 'CronJob')
    expectValidObject(cronJob)
    expect(cronJob.spec.schedule).toBe('0 3 * * *')
    expect(cronJob.metadata.annotations['darwin.ml-serve/workflow-url']).toBe('http://workflow:8080')
    const env = cronJob.spec.jobTemplate.spec.template.spec.containers[0].env
    expect(env).toContainEqual({ name: 'WORKFLOW_URL', value: 'http://workflow:8080' })
    expect(env).toContainEqual({ name: 'JOB_CLUSTER_RUNTIME', value: 'ray-2.37-py310' })
    const spec = JSON.parse(env.find((v: { name: string }) => v.name === 'JOB_CLUSTER_SPEC').value)
    expect(spec).toEqual({ runtime: 'ray-2.37-py310', head: { cores: 2, memory_gib: 4, node_capacity_type: 'spot' }, worker_groups: [{ cores_per_pod: 2, memory_gib_per_pod: 4, min_pods: 2, max_pods: 5, node_capacity_type: 'spot' }] })
  })
})

describe('determinism and hostile values', () => {
  const hostile = 'a: "b"\n- {{ .Values.secret }}\n&anchor *anchor !!python/object ---\n\'q\''
  const hostileInput = () =>
    input({ serve: { description: hostile }, artifact: { version: '1.0 &x', image: 'img:1' }, deployment: { environment_variables: { evil: hostile, 'x.y': '*anchor' } } })

  test('rendering twice gives byte-identical YAML and JSON', () => {
    expect(toYaml(renderServe(hostileInput(), settings()).manifests)).toBe(toYaml(renderServe(hostileInput(), settings()).manifests))
    expect(JSON.stringify(sortKeys(renderServe(input(), settings()).manifests))).toBe(JSON.stringify(sortKeys(renderServe(input(), settings()).manifests)))
  })

  test('quotes, newlines, {{, anchors and tags come back as the same strings', () => {
    const rendered = renderServe(hostileInput(), settings())
    const text = toYaml(rendered.manifests)
    const parsed = YAML.parseAllDocuments(text).map((doc) => doc.toJS())
    expect(parsed).toEqual(JSON.parse(JSON.stringify(rendered.manifests)))
    const deployment = parsed.find((o) => o.kind === 'Deployment')
    expect(deployment.metadata.annotations['darwin.ml-serve/description']).toBe(hostile)
    expect(deployment.spec.template.spec.containers[0].env).toContainEqual({ name: 'EVIL', value: hostile })
    expect(deployment.spec.template.spec.containers[0].env).toContainEqual({ name: 'X.Y', value: '*anchor' })
    expect(deployment.metadata.labels['app.kubernetes.io/version']).toBe('1.0--x')
    expect(deployment.metadata.annotations['darwin.ml-serve/artifact-version']).toBe('1.0 &x')
    for (const object of rendered.manifests) expectValidObject(object)
  })

  test('input that cannot become valid objects is refused with the failing fields', () => {
    let error: unknown
    try {
      renderServe(input({ serve: { name: 'Bad_Name' }, infra: { min_replicas: 3, max_replicas: 2 }, deployment: { environment_variables: { 'A=B': 'x' } } }), settings())
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(AppError)
    expect((error as AppError).errors?.map((e) => e.path)).toEqual(['/serve/name', '/infra/max_replicas', '/hosts/0', '/deployment/environment_variables/A=B'])
  })

  test('splitImage splits at the tag, not at a registry port', () => {
    expect(splitImage('docker.io/darwin:fraud_v1')).toEqual({ repository: 'docker.io/darwin', tag: 'fraud_v1' })
    expect(splitImage('registry:5000/darwin')).toEqual({ repository: 'registry:5000/darwin', tag: 'latest' })
    // The chart renders "{repository}:{tag}": a digest splits at its own ':' and is joined back unchanged.
    const digest = `registry:5000/darwin@sha256:${'a'.repeat(64)}`
    const { repository, tag } = splitImage(digest)
    expect(`${repository}:${tag}`).toBe(digest)
    const tagged = `registry:5000/darwin:v1@sha256:${'b'.repeat(64)}`
    expect(`${splitImage(tagged).repository}:${splitImage(tagged).tag}`).toBe(tagged)
  })
})

describe('what a cluster would refuse is refused at render (422 naming the field)', () => {
  const refused = (over: Parameters<typeof input>[0], path: string) => {
    const error = (() => {
      try {
        renderServe(input(over), settings())
      } catch (e) {
        return e
      }
    })() as AppError
    expect(error).toBeInstanceOf(AppError)
    expect(error.status).toBe(422)
    expect(error.errors?.map((e) => e.path)).toContain(path)
  }

  test('a workflow in several worker groups: each group is one entry of JOB_CLUSTER_SPEC', () => {
    const groups = [
      { cores_per_pods: 4, memory_per_pods: 16, min_pods: 2, max_pods: 8, node_capacity_type: 'spot' as const },
      { cores_per_pods: 8, memory_per_pods: 32, min_pods: 0, max_pods: 4, node_capacity_type: 'ondemand' as const },
    ]
    const rendered = renderServe(input({ serve: { type: 'workflow' }, workflow: { schedule: '0 3 * * *', worker_groups: groups } }), settings())
    const env = find(rendered.manifests, 'CronJob').spec.jobTemplate.spec.template.spec.containers[0].env
    const spec = JSON.parse(env.find((v: { name: string }) => v.name === 'JOB_CLUSTER_SPEC').value)
    expect(spec.worker_groups).toEqual([
      { cores_per_pod: 4, memory_gib_per_pod: 16, min_pods: 2, max_pods: 8, node_capacity_type: 'spot' },
      { cores_per_pod: 8, memory_gib_per_pod: 32, min_pods: 0, max_pods: 4, node_capacity_type: 'ondemand' },
    ])
  })

  test('derived names past their limits: a CronJob over 52 characters, a RayService over 47', () => {
    const env20 = { ...input().environment, name: 'e'.repeat(20) }
    refused({ serve: { name: 's'.repeat(32), type: 'workflow' }, environment: env20, workflow: { schedule: '0 3 * * *' } }, '/serve/name')
    expect(() => renderServe(input({ serve: { name: 's'.repeat(31), type: 'workflow' }, environment: env20, workflow: { schedule: '0 3 * * *' } }), settings())).not.toThrow()
    refused({ serve: { name: 's'.repeat(27) }, environment: env20, infra: { backend_type: 'ray' } }, '/serve/name')
    expect(() => renderServe(input({ serve: { name: 's'.repeat(26) }, environment: env20, infra: { backend_type: 'ray' } }), settings())).not.toThrow()
  })

  test('max_surge 0 with max_unavailable 0; NUL in a variable; too many or too large variables', () => {
    refused({ deployment: { max_surge: 0, max_unavailable: '0%' } }, '/deployment/max_unavailable')
    refused({ deployment: { environment_variables: { A: 'x\u0000y' } } }, '/deployment/environment_variables/A')
    const big = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`V${i}`, 'x'.repeat(32 * 1024)]))
    refused({ deployment: { environment_variables: big } }, '/deployment/environment_variables')
    const many = Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`V${i}`, 'x']))
    refused({ deployment: { environment_variables: many } }, '/deployment/environment_variables')
  })

  test('in a DCM environment: a digest image, a tag over 63 characters, an env name YAML 1.1 reads as a boolean', () => {
    const dcm = { ...input().environment, cluster_driver: 'dcm' as const }
    refused({ environment: dcm, artifact: { version: 'v', image: `r/a@sha256:${'a'.repeat(64)}` } }, '/artifact/image')
    refused({ environment: dcm, artifact: { version: 'v', image: `r/a:${'t'.repeat(64)}` } }, '/artifact/image')
    refused({ environment: dcm, deployment: { environment_variables: { on: '1' } } }, '/deployment/environment_variables/ON')
    refused({ environment: dcm, infra: { backend_type: 'ray' } }, '/infra/backend_type')
    refused({ environment: dcm, serve: { type: 'workflow' }, workflow: { schedule: '0 3 * * *' } }, '/serve/type')
  })
})
