/**
 * Desired state → Kubernetes objects (and the Helm values DCM installs), from the YAML files in
 * templates/. Pure: no database, no network, no clock. Templates are parsed with `yaml` and filled as
 * objects, so a value can never break out of its field; the serialiser sorts keys and never emits
 * anchors, so the same input gives byte-identical YAML.
 */
import YAML from 'yaml'
import type { Config } from '../config'
import { type FieldError, invalid } from '../lib/errors'
import { chartImage, chartInputProblems, chartProblems, chartValues, DCM_CHART, MLFLOW_PASSWORD_ENV, type ChartInput } from './dcm-values'
import { type TemplatePath, template } from './templates'

export { DCM_CHART, DCM_REFUSALS, MLFLOW_PASSWORD_ENV } from './dcm-values'

/** A Kubernetes object as plain data (what client-node's KubernetesObject describes, made concrete). */
export interface KubernetesObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace: string; labels: Record<string, string>; annotations?: Record<string, string> }
  [field: string]: unknown
}

export type NodeCapacityType = 'spot' | 'ondemand'

export interface RenderInput {
  serve: { name: string; type: 'api' | 'workflow'; description: string }
  environment: {
    name: string
    domain_suffix: string
    namespace: string
    cluster_name: string
    /** Comma-separated AWS security groups / subnets (as stored on the environment). */
    security_group: string
    subnets: string
    workflow_url: string
    /** How the objects reach the cluster; `dcm` also refuses what DCM's chart cannot install. Default kubernetes. */
    cluster_driver?: 'kubernetes' | 'dcm'
  }
  infra: {
    backend_type: 'fastapi' | 'ray'
    cores: number
    /** GiB. */
    memory: number
    min_replicas: number
    max_replicas: number
    node_capacity_type: NodeCapacityType
    /** Average CPU utilisation (%) the autoscaler aims for; default 70. */
    target_cpu_utilization?: number
    additional_hosts?: string[]
  }
  artifact: { version: string; image: string }
  deployment: {
    strategy: 'rolling' | 'recreate'
    max_surge?: string | number
    max_unavailable?: string | number
    environment_variables: Record<string, string>
    /** The deployment revision; put on the pod template so every redeploy rolls the pods. */
    revision?: number
  }
  mlflow?: {
    tracking_uri: string
    username?: string
    /**
     * Where the password is. Omitted: a Secret `{serve}-{env}-mlflow` that the cluster driver writes
     * from the value it is given at apply time (see `managedSecrets`). Never a literal in a manifest.
     */
    existing_password_secret?: { name: string; key: string }
  }
  /** Workflow serves only: the cron schedule of the workflow's runs. */
  workflow?: {
    schedule: string
    /** The job cluster's worker groups (the infra config's worker_node_config), each its own group in JOB_CLUSTER_SPEC. */
    worker_groups?: { cores_per_pods: number; memory_per_pods: number; min_pods: number; max_pods: number; node_capacity_type: NodeCapacityType }[]
  }
}

/** The settings rendering depends on: a slice of the service's Config. */
export type RenderSettings = Pick<Config, 'templatesDir' | 'env' | 'isLocal' | 'ingressBaseUrl' | 'kubeIngressClass' | 'istio' | 'albLogs' | 'deployedService' | 'jobClusterRuntime'>

/** A Secret the driver must write (from a value it holds) before the objects that reference it. */
export interface ManagedSecret {
  name: string
  namespace: string
  key: string
  labels: Record<string, string>
}

/** What DCM installs: the chart (`darwin_resource`), the artifact version and the values the chart reads (src/render/dcm-values.ts). */
export interface DcmRelease {
  darwinResource: string
  version: string
  values: Record<string, unknown>
  /** The env var the driver sets to the MLflow password at apply time (the chart has no Secret reference for the app container). */
  passwordEnv?: string
}

export interface RenderedServe {
  /** Sorted by kind (dependencies first), then name. */
  manifests: KubernetesObject[]
  managedSecrets: ManagedSecret[]
  /** FastAPI serves only: DCM has no chart for ray or workflow serves. */
  dcm?: DcmRelease
}

/**
 * The replica bounds a render sets (what the cluster has once it is applied): the HPA's, or a ray
 * serve's worker group's; undefined for a workflow.
 */
export function renderedReplicaBounds(rendered: RenderedServe): { min: number; max: number } | undefined {
  for (const object of rendered.manifests ?? []) {
    const spec = object.spec as { minReplicas?: number; maxReplicas?: number; rayClusterConfig?: { workerGroupSpecs?: { minReplicas?: number; maxReplicas?: number }[] } } | undefined
    const bounds = object.kind === 'HorizontalPodAutoscaler' ? spec : object.kind === 'RayService' ? spec?.rayClusterConfig?.workerGroupSpecs?.[0] : undefined
    if (bounds?.minReplicas !== undefined && bounds.maxReplicas !== undefined) return { min: bounds.minReplicas, max: bounds.maxReplicas }
  }
  return undefined
}

export const MANAGED_BY = 'darwin-ml-serve'
export const LABELS = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  version: 'app.kubernetes.io/version',
  managedBy: 'app.kubernetes.io/managed-by',
  serve: 'darwin.ml-serve/serve',
  environment: 'darwin.ml-serve/environment',
  org: 'darwin.ml-serve/org',
} as const
export const ANNOTATIONS = {
  artifactVersion: 'darwin.ml-serve/artifact-version',
  description: 'darwin.ml-serve/description',
  revision: 'darwin.ml-serve/revision',
  workflowUrl: 'darwin.ml-serve/workflow-url',
} as const
/** Node label set by Karpenter (and EKS managed node groups use the same values). */
export const CAPACITY_TYPE_LABEL = 'karpenter.sh/capacity-type'
const MLFLOW_PASSWORD_KEY = 'password'
const DEFAULT_TARGET_CPU = 70

/** Apply order: what others reference comes first. */
const KIND_ORDER = ['Secret', 'Service', 'Deployment', 'RayService', 'CronJob', 'HorizontalPodAutoscaler', 'Ingress', 'VirtualService']

const SERVE_NAME = /^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$/
const ENV_NAME = /^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$/
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/
const ENV_VAR_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/
/** A CronJob's name: its Jobs are named `{name}-{11 characters}`, within 63. */
export const CRONJOB_NAME_MAX = 52
/** KubeRay's limit on a RayService's name (it derives its RayCluster's and Services' names from it). */
export const RAYSERVICE_NAME_MAX = 47
/** The deployment's environment variables: how many, and their names and values in all (UTF-8 bytes). */
export const ENV_VARS_MAX = 200
export const ENV_BYTES_MAX = 256 * 1024

// --- templates ---

/**
 * A parsed template being filled in. Untyped on purpose: templates are data files, and every filled
 * object is checked against client-node's models (or the CRD's required fields) in the render tests.
 */
type TemplateDocument = any

/** A fresh copy of a template (embedded, or from TEMPLATES_DIR) to fill in. */
const fromTemplate = (ctx: Context, path: TemplatePath): TemplateDocument => template<TemplateDocument>(ctx.settings.templatesDir, path)

// --- helpers ---

/** `{serve}-{env}`: every object of a serve in an environment is named from it. */
export const baseName = (serve: string, environment: string) => `${serve}-${environment}`

/** A label value (≤ 63 chars of [A-Za-z0-9-_.], alphanumeric at both ends); the raw value goes in an annotation. */
function labelValue(raw: string): string {
  return raw
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '')
}

/** The labels every object of (serve, env) carries; pruning selects on the managed-by/serve/environment ones. */
export function ownershipSelector(serve: string, environment: string): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY, [LABELS.serve]: serve, [LABELS.environment]: environment }
}

const commaList = (raw: string) =>
  raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')

/** The serve's own host in an environment: `<serve>` + the environment's `domain_suffix`. */
export function primaryHost(serve: string, domainSuffix: string): string {
  return `${serve}${domainSuffix.startsWith('.') || domainSuffix === '' ? '' : '.'}${domainSuffix}`.toLowerCase()
}

function hostsOf(input: RenderInput): string[] {
  const primary = primaryHost(input.serve.name, input.environment.domain_suffix)
  const hosts = [primary, ...(input.infra.additional_hosts ?? []).map((h) => h.trim().toLowerCase())]
  return [...new Set(hosts.filter((h) => h !== ''))]
}

/** Splits an image reference as DCM's chart joins it back (`repository:tag`; see chartImage). */
export const splitImage = chartImage

function validate(input: RenderInput): void {
  const errors: FieldError[] = []
  const check = (ok: boolean, path: string, message: string) => ok || errors.push({ path, message })
  check(SERVE_NAME.test(input.serve.name), '/serve/name', 'must be a DNS-1035 label of 1-32 characters')
  check(ENV_NAME.test(input.environment.name), '/environment/name', 'must be a DNS label of 1-20 characters')
  check(DNS_LABEL.test(input.environment.namespace), '/environment/namespace', 'must be a DNS label')
  check(input.infra.cores > 0 && Number.isFinite(input.infra.cores), '/infra/cores', 'must be a positive number')
  check(input.infra.memory > 0 && Number.isFinite(input.infra.memory), '/infra/memory', 'must be a positive number of GiB')
  // Ray workers may rest at 0 (the head serves); an HPA's minReplicas cannot be 0 without an alpha feature gate.
  const minimum = input.serve.type === 'api' && input.infra.backend_type === 'ray' ? 0 : 1
  check(Number.isInteger(input.infra.min_replicas) && input.infra.min_replicas >= minimum, '/infra/min_replicas', `must be a whole number ≥ ${minimum}`)
  check(Number.isInteger(input.infra.max_replicas) && input.infra.max_replicas >= input.infra.min_replicas, '/infra/max_replicas', 'must be a whole number ≥ min_replicas')
  check(input.artifact.image.trim() !== '' && !/\s/.test(input.artifact.image), '/artifact/image', 'must be an image reference without spaces')
  for (const [index, host] of hostsOf(input).entries()) check(HOSTNAME.test(host), `/hosts/${index}`, `"${host}" is not a valid host name`)
  for (const name of Object.keys(input.deployment.environment_variables)) {
    check(ENV_VAR_NAME.test(name), `/deployment/environment_variables/${name}`, 'is not a valid environment variable name')
  }
  if (input.serve.type === 'workflow') check((input.workflow?.schedule ?? '').trim() !== '', '/workflow/schedule', 'is required for a workflow serve')
  // Derived names past their limits: a CronJob's Job name adds 11 characters to its 63; KubeRay names a RayService's children after it.
  const name = baseName(input.serve.name, input.environment.name)
  if (input.serve.type === 'workflow') check(name.length <= CRONJOB_NAME_MAX, '/serve/name', `the CronJob name ${name} has ${name.length} characters; Kubernetes allows ${CRONJOB_NAME_MAX}`)
  else if (input.infra.backend_type === 'ray') check(name.length <= RAYSERVICE_NAME_MAX, '/serve/name', `the RayService name ${name} has ${name.length} characters; KubeRay allows ${RAYSERVICE_NAME_MAX}`)
  const variables = Object.entries(input.deployment.environment_variables)
  for (const [key, value] of variables) check(!value.includes('\u0000') && !key.includes('\u0000'), `/deployment/environment_variables/${key}`, 'must not hold a NUL character')
  const bytes = variables.reduce((sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(value), 0)
  check(variables.length <= ENV_VARS_MAX, '/deployment/environment_variables', `at most ${ENV_VARS_MAX} variables (${variables.length} given)`)
  check(bytes <= ENV_BYTES_MAX, '/deployment/environment_variables', `at most ${ENV_BYTES_MAX / 1024} KiB of names and values in all (${Math.ceil(bytes / 1024)} KiB given): they are repeated in every manifest`)
  const zero = (value: string | number | undefined) => value === 0 || value === '0%'
  if (input.deployment.strategy === 'rolling') {
    check(!(zero(input.deployment.max_surge ?? '25%') && zero(input.deployment.max_unavailable ?? 0)), '/deployment/max_unavailable', 'max_surge and max_unavailable cannot both be 0: the rollout could never replace a pod')
  }
  if (errors.length > 0) throw invalid(errors, 'The serve cannot be rendered')
}

// --- rendering ---

interface Context {
  input: RenderInput
  settings: RenderSettings
  name: string
  namespace: string
  labels: Record<string, string>
  /** Pod selector: only what never changes between revisions (Deployment selectors are immutable). */
  selector: Record<string, string>
  hosts: string[]
  mlflowSecret?: { name: string; key: string }
}

function metadata(ctx: Context, name = ctx.name, annotations?: Record<string, string>): KubernetesObject['metadata'] {
  return {
    name,
    namespace: ctx.namespace,
    labels: { ...ctx.labels },
    ...(annotations === undefined ? {} : { annotations }),
  }
}

function workloadAnnotations(ctx: Context): Record<string, string> {
  return { [ANNOTATIONS.artifactVersion]: ctx.input.artifact.version, [ANNOTATIONS.description]: ctx.input.serve.description }
}

function podMetadata(ctx: Context, extraLabels: Record<string, string> = {}) {
  const revision = ctx.input.deployment.revision
  return {
    labels: { ...ctx.labels, ...extraLabels },
    ...(revision === undefined ? {} : { annotations: { [ANNOTATIONS.revision]: String(revision) } }),
  }
}

type EnvVar = { name: string; value: string } | { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } }

/**
 * Reached by path (`/{serve}` on the ingress, any host) rather than by host: where there is no DNS
 * for it — ENV=local, or an environment without a domain_suffix (the original's local setup).
 */
export const routedByPath = (settings: Pick<RenderSettings, 'isLocal'>, domainSuffix: string) => settings.isLocal || domainSuffix === ''

/** ENV and SERVICE_NAME, the deployment's variables (keys upper-cased, as the original does), then MLflow's. */
function environmentVariables(ctx: Context, extra: Record<string, string> = {}): EnvVar[] {
  const { input, settings } = ctx
  const reserved: Record<string, string> = { ENV: settings.env, SERVICE_NAME: input.serve.name, ...extra }
  if (routedByPath(settings, input.environment.domain_suffix)) reserved.ROOT_PATH = `/${input.serve.name}`
  if (input.mlflow) {
    reserved.MLFLOW_TRACKING_URI = input.mlflow.tracking_uri
    if (input.mlflow.username !== undefined) reserved.MLFLOW_TRACKING_USERNAME = input.mlflow.username
  }
  const user = Object.entries(input.deployment.environment_variables)
    .map(([name, value]) => [name.toUpperCase(), value] as const)
    .filter(([name]) => !(name in reserved) && name !== 'MLFLOW_TRACKING_PASSWORD')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  // A Map keeps one value per upper-cased name (the last in sorted order) and the sorted order itself.
  const deduplicated = Array.from(new Map(user), ([name, value]) => ({ name, value }))
  const vars: EnvVar[] = [...Object.entries(reserved).map(([name, value]) => ({ name, value })), ...deduplicated]
  if (ctx.mlflowSecret) vars.push({ name: 'MLFLOW_TRACKING_PASSWORD', valueFrom: { secretKeyRef: { ...ctx.mlflowSecret } } })
  return vars
}

function resources(cores: number, memoryGiB: number) {
  const amounts = { cpu: String(cores), memory: `${memoryGiB}Gi` }
  // Limits equal requests (Guaranteed QoS), as in the original's chart.
  return { requests: { ...amounts }, limits: { ...amounts } }
}

/** Node selection: Karpenter's capacity type plus the original's `serve: "true"` pool label; none locally. */
function scheduling(ctx: Context, capacity: NodeCapacityType) {
  if (ctx.settings.isLocal) return {}
  const capacityType = capacity === 'spot' ? 'spot' : 'on-demand'
  return {
    nodeSelector: { [CAPACITY_TYPE_LABEL]: capacityType, serve: 'true' },
    tolerations: [
      { key: 'serve', operator: 'Equal', value: 'true', effect: 'NoSchedule' },
      ...(capacity === 'spot' ? [{ key: CAPACITY_TYPE_LABEL, operator: 'Equal', value: 'spot', effect: 'NoSchedule' }] : []),
    ],
  }
}

function probe(base: Record<string, unknown>, path: string) {
  return { ...base, httpGet: { ...(base.httpGet as Record<string, unknown>), path } }
}

function deployment(ctx: Context): KubernetesObject {
  const { input, settings } = ctx
  const obj = fromTemplate(ctx, 'fastapi/deployment.yaml')
  obj.metadata = metadata(ctx, ctx.name, workloadAnnotations(ctx))
  obj.spec.selector = { matchLabels: { ...ctx.selector } }
  obj.spec.strategy =
    input.deployment.strategy === 'recreate'
      ? { type: 'Recreate' }
      : { type: 'RollingUpdate', rollingUpdate: { maxSurge: input.deployment.max_surge ?? '25%', maxUnavailable: input.deployment.max_unavailable ?? 0 } }
  obj.spec.template.metadata = podMetadata(ctx)
  Object.assign(obj.spec.template.spec, scheduling(ctx, input.infra.node_capacity_type))
  const container = obj.spec.template.spec.containers[0]
  container.image = input.artifact.image
  container.ports[0].containerPort = settings.deployedService.applicationPort
  container.env = environmentVariables(ctx)
  container.resources = resources(input.infra.cores, input.infra.memory)
  container.readinessProbe = probe(container.readinessProbe, settings.deployedService.healthcheckPath)
  container.livenessProbe = probe(container.livenessProbe, settings.deployedService.healthcheckPath)
  return obj
}

function service(ctx: Context, selector: Record<string, string>): KubernetesObject {
  const obj = fromTemplate(ctx, 'fastapi/service.yaml')
  obj.metadata = metadata(ctx)
  obj.spec.selector = selector
  obj.spec.ports[0].targetPort = 'http'
  return obj
}

function autoscaler(ctx: Context): KubernetesObject {
  const obj = fromTemplate(ctx, 'fastapi/hpa.yaml')
  obj.metadata = metadata(ctx)
  obj.spec.scaleTargetRef.name = ctx.name
  obj.spec.minReplicas = ctx.input.infra.min_replicas
  obj.spec.maxReplicas = ctx.input.infra.max_replicas
  obj.spec.metrics[0].resource.target.averageUtilization = ctx.input.infra.target_cpu_utilization ?? DEFAULT_TARGET_CPU
  return obj
}

/** The ALB's AWS tags: environment, service, org, provisioned-by. */
function albTags(ctx: Context): string {
  const { input, settings } = ctx
  return [`environment=${input.environment.name}`, `service=${input.serve.name}`, `org=${settings.deployedService.organizationName}`, `provisioned-by=${MANAGED_BY}`].join(',')
}

function ingressAnnotations(ctx: Context): Record<string, string> {
  const { input, settings } = ctx
  const annotations: Record<string, string> = {}
  if (!routedByPath(settings, input.environment.domain_suffix)) annotations['external-dns.alpha.kubernetes.io/hostname'] = ctx.hosts.join(',')
  if (settings.kubeIngressClass !== 'alb') return annotations
  const alb = 'alb.ingress.kubernetes.io'
  annotations[`${alb}/scheme`] = 'internal'
  annotations[`${alb}/target-type`] = 'ip'
  annotations[`${alb}/healthcheck-path`] = settings.deployedService.healthcheckPath
  const securityGroups = commaList(input.environment.security_group)
  if (securityGroups.length > 0) annotations[`${alb}/security-groups`] = securityGroups.join(',')
  const subnets = commaList(input.environment.subnets)
  if (subnets.length > 0) annotations[`${alb}/subnets`] = subnets.join(',')
  annotations[`${alb}/tags`] = albTags(ctx)
  if (settings.albLogs.enabled) {
    annotations[`${alb}/load-balancer-attributes`] = [
      'access_logs.s3.enabled=true',
      `access_logs.s3.bucket=${settings.albLogs.bucket}`,
      `access_logs.s3.prefix=${settings.albLogs.prefix}`,
    ].join(',')
  }
  return annotations
}

function ingress(ctx: Context): KubernetesObject {
  const obj = fromTemplate(ctx, 'fastapi/ingress.yaml')
  obj.metadata = metadata(ctx, ctx.name, ingressAnnotations(ctx))
  obj.spec.ingressClassName = ctx.settings.kubeIngressClass
  const backend = { service: { name: ctx.name, port: { name: 'http' } } }
  // Without DNS (locally, or no domain_suffix): one host-less rule routes /<serve> (the app gets ROOT_PATH to match).
  obj.spec.rules = routedByPath(ctx.settings, ctx.input.environment.domain_suffix)
    ? [{ http: { paths: [{ path: `/${ctx.input.serve.name}`, pathType: 'Prefix', backend }] } }]
    : ctx.hosts.map((host) => ({ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend }] } }))
  return obj
}

function virtualService(ctx: Context): KubernetesObject {
  const { istio } = ctx.settings
  const obj = fromTemplate(ctx, 'fastapi/virtualservice.yaml')
  obj.metadata = metadata(ctx)
  obj.spec.hosts = [...ctx.hosts]
  obj.spec.gateways = [`${istio.namespace}/${istio.serviceName}`]
  obj.spec.http = [{ route: [{ destination: { host: `${ctx.name}.${ctx.namespace}.svc.cluster.local`, port: { number: 80 } } }] }]
  return obj
}

function routing(ctx: Context): KubernetesObject[] {
  return ctx.settings.istio.enabled ? [virtualService(ctx)] : [ingress(ctx)]
}

function rayContainer(ctx: Context, base: TemplateDocument, extraEnv: Record<string, string>): TemplateDocument {
  return {
    ...base,
    image: ctx.input.artifact.image,
    env: environmentVariables(ctx, extraEnv),
    resources: resources(ctx.input.infra.cores, ctx.input.infra.memory),
  }
}

function rayService(ctx: Context): KubernetesObject {
  const { input, settings } = ctx
  const obj = fromTemplate(ctx, 'ray/rayservice.yaml')
  obj.metadata = metadata(ctx, ctx.name, workloadAnnotations(ctx))
  const port = settings.deployedService.applicationPort
  // Ray Serve's config is a YAML string in the CRD; built as an object, then serialised.
  obj.spec.serveConfigV2 = YAML.stringify({
    http_options: { host: '0.0.0.0', port },
    applications: [{ name: input.serve.name, route_prefix: '/', import_path: input.deployment.environment_variables.RAY_SERVE_IMPORT_PATH ?? 'main:app' }],
  })
  const cluster = obj.spec.rayClusterConfig
  const head = cluster.headGroupSpec
  head.template.metadata = podMetadata(ctx, { [RAY_COMPONENT_LABEL]: 'head' })
  Object.assign(head.template.spec, scheduling(ctx, input.infra.node_capacity_type))
  const headContainer = rayContainer(ctx, head.template.spec.containers[0], {})
  headContainer.ports.find((p: { name: string }) => p.name === 'http').containerPort = port
  head.template.spec.containers = [headContainer]
  const workers = cluster.workerGroupSpecs[0]
  workers.replicas = input.infra.min_replicas
  workers.minReplicas = input.infra.min_replicas
  workers.maxReplicas = input.infra.max_replicas
  workers.template.metadata = podMetadata(ctx, { [RAY_COMPONENT_LABEL]: 'worker' })
  Object.assign(workers.template.spec, scheduling(ctx, input.infra.node_capacity_type))
  workers.template.spec.containers = [rayContainer(ctx, workers.template.spec.containers[0], {})]
  return obj
}

const RAY_COMPONENT_LABEL = 'darwin.ml-serve/ray-node'

function workflowCronJob(ctx: Context): KubernetesObject {
  const { input, settings } = ctx
  const obj = fromTemplate(ctx, 'workflow/cronjob.yaml')
  obj.metadata = metadata(ctx, ctx.name, { ...workloadAnnotations(ctx), [ANNOTATIONS.workflowUrl]: input.environment.workflow_url })
  obj.spec.schedule = input.workflow?.schedule
  obj.spec.jobTemplate.metadata = { labels: { ...ctx.labels } }
  const pod = obj.spec.jobTemplate.spec.template
  pod.metadata = podMetadata(ctx)
  Object.assign(pod.spec, scheduling(ctx, input.infra.node_capacity_type))
  const jobCluster = {
    runtime: settings.jobClusterRuntime,
    head: { cores: input.infra.cores, memory_gib: input.infra.memory, node_capacity_type: input.infra.node_capacity_type },
    // One entry per worker group of the infra config's worker_node_config, as the original hands them to the workflow service.
    worker_groups: (input.workflow?.worker_groups ?? [{ cores_per_pods: input.infra.cores, memory_per_pods: input.infra.memory, min_pods: input.infra.min_replicas, max_pods: input.infra.max_replicas, node_capacity_type: input.infra.node_capacity_type }]).map((group) => ({
      cores_per_pod: group.cores_per_pods,
      memory_gib_per_pod: group.memory_per_pods,
      min_pods: group.min_pods,
      max_pods: group.max_pods,
      node_capacity_type: group.node_capacity_type,
    })),
  }
  const container = pod.spec.containers[0]
  container.image = input.artifact.image
  container.env = environmentVariables(ctx, {
    WORKFLOW_URL: input.environment.workflow_url,
    JOB_CLUSTER_RUNTIME: settings.jobClusterRuntime,
    JOB_CLUSTER_SPEC: JSON.stringify(jobCluster),
  })
  container.resources = resources(input.infra.cores, input.infra.memory)
  return obj
}

/** What DCM's chart is given for this serve (src/render/dcm-values.ts decides the values). */
function chartInput(ctx: Context): ChartInput {
  const { input, settings } = ctx
  const envs: Record<string, string> = {}
  for (const variable of environmentVariables(ctx)) if ('value' in variable) envs[variable.name] = variable.value
  const deployment = fromTemplate(ctx, 'fastapi/deployment.yaml').spec.template.spec.containers[0]
  const timings = ({ httpGet: _, ...rest }: Record<string, unknown>) => rest as unknown as ChartInput['livenessProbe']
  return {
    name: ctx.name,
    serve: input.serve.name,
    releaseName: `${input.environment.name}-${input.serve.name}`,
    namespace: ctx.namespace,
    clusterName: input.environment.cluster_name,
    org: settings.deployedService.organizationName,
    env: settings.env,
    isLocal: settings.isLocal,
    byPath: routedByPath(settings, input.environment.domain_suffix),
    pathHost: (settings.ingressBaseUrl ? new URL(settings.ingressBaseUrl).hostname : '') || 'localhost',
    ingressClass: settings.kubeIngressClass,
    hosts: ctx.hosts,
    securityGroups: commaList(input.environment.security_group),
    subnets: commaList(input.environment.subnets),
    albLogs: settings.albLogs,
    tags: albTags(ctx),
    healthcheckPath: settings.deployedService.healthcheckPath,
    applicationPort: settings.deployedService.applicationPort,
    image: input.artifact.image,
    envs,
    cores: input.infra.cores,
    memoryGiB: input.infra.memory,
    minReplicas: input.infra.min_replicas,
    maxReplicas: input.infra.max_replicas,
    targetCpuUtilization: input.infra.target_cpu_utilization ?? DEFAULT_TARGET_CPU,
    capacityType: input.infra.node_capacity_type === 'spot' ? 'spot' : 'on-demand',
    tolerations: (scheduling(ctx, input.infra.node_capacity_type).tolerations ?? []) as Record<string, string>[],
    strategy: input.deployment.strategy,
    maxSurge: input.deployment.max_surge ?? '25%',
    maxUnavailable: input.deployment.max_unavailable ?? 0,
    revision: input.deployment.revision,
    livenessProbe: timings(deployment.livenessProbe),
    readinessProbe: timings(deployment.readinessProbe),
    revisionAnnotation: ANNOTATIONS.revision,
  }
}

/** Why DCM cannot install this serve at all, or this render of it (empty: it can). */
function dcmProblems(ctx: Context, chart: ChartInput | undefined): FieldError[] {
  const { input, settings } = ctx
  const problems = chartInputProblems({
    serveType: input.serve.type,
    backendType: input.infra.backend_type,
    istio: settings.istio.enabled,
    existingPasswordSecret: input.mlflow?.existing_password_secret !== undefined,
  })
  return chart ? [...problems, ...chartProblems(chart)] : problems
}

function byApplyOrder(a: KubernetesObject, b: KubernetesObject): number {
  const rank = (o: KubernetesObject) => {
    const index = KIND_ORDER.indexOf(o.kind)
    return index === -1 ? KIND_ORDER.length : index
  }
  return rank(a) - rank(b) || (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0) || (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0)
}

/** Renders every object of a serve in an environment. Throws a 422 AppError for input that cannot become valid objects. */
export function renderServe(input: RenderInput, settings: RenderSettings): RenderedServe {
  validate(input)
  const name = baseName(input.serve.name, input.environment.name)
  const selector = { [LABELS.instance]: name, [LABELS.serve]: input.serve.name, [LABELS.environment]: input.environment.name }
  const labels = {
    ...ownershipSelector(input.serve.name, input.environment.name),
    [LABELS.name]: input.serve.name,
    [LABELS.instance]: name,
    [LABELS.version]: labelValue(input.artifact.version),
    [LABELS.org]: labelValue(settings.deployedService.organizationName),
  }
  const managedSecrets: ManagedSecret[] = []
  let mlflowSecret: Context['mlflowSecret']
  if (input.mlflow) {
    mlflowSecret = input.mlflow.existing_password_secret ?? { name: `${name}-mlflow`, key: MLFLOW_PASSWORD_KEY }
    if (!input.mlflow.existing_password_secret) {
      managedSecrets.push({ name: mlflowSecret.name, namespace: input.environment.namespace, key: MLFLOW_PASSWORD_KEY, labels: { ...labels } })
    }
  }
  const ctx: Context = { input, settings, name, namespace: input.environment.namespace, labels, selector, hosts: hostsOf(input), mlflowSecret }

  let manifests: KubernetesObject[]
  let dcm: DcmRelease | undefined
  let chart: ChartInput | undefined
  if (input.serve.type === 'workflow') {
    manifests = [workflowCronJob(ctx)]
  } else if (input.infra.backend_type === 'ray') {
    manifests = [rayService(ctx), service(ctx, { ...selector, [RAY_COMPONENT_LABEL]: 'head' }), ...routing(ctx)]
  } else {
    manifests = [deployment(ctx), service(ctx, { ...selector }), autoscaler(ctx), ...routing(ctx)]
    chart = chartInput(ctx)
    dcm = { darwinResource: DCM_CHART, version: input.artifact.version, values: chartValues(chart), ...(mlflowSecret ? { passwordEnv: MLFLOW_PASSWORD_ENV } : {}) }
  }
  if (input.environment.cluster_driver === 'dcm') {
    const problems = dcmProblems(ctx, chart)
    if (problems.length > 0) throw invalid(problems, `DCM cannot install this serve in environment ${input.environment.name}`)
  }
  return { manifests: manifests.sort(byApplyOrder), managedSecrets, ...(dcm ? { dcm } : {}) }
}

/** The Secret object for a managed secret: built only by a driver, at apply time, never stored or previewed. */
export function secretObject(secret: ManagedSecret, value: string): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: secret.name, namespace: secret.namespace, labels: { ...secret.labels } },
    type: 'Opaque',
    stringData: { [secret.key]: value },
  }
}

/**
 * Whether a string would not read back as itself as a plain scalar, by a YAML 1.1 reader (kubectl and
 * Helm use go-yaml: `yes`, `on`, `1_000`, `1:20`, `2001-12-14`…) or a YAML 1.2 one (`0o17`…).
 */
function readsAsSomethingElse(value: string): boolean {
  if (value.includes('\n')) return false // written as a block scalar: always a string
  const known = misreadCache.get(value)
  if (known !== undefined) return known
  let misread = false
  for (const version of ['1.1', '1.2'] as const) {
    try {
      if (YAML.parse(value, { version }) !== value) misread = true
    } catch {
      misread = true
    }
  }
  // Label keys, images and names repeat across objects and renders: parse each string once.
  if (misreadCache.size >= 10_000) misreadCache.clear()
  misreadCache.set(value, misread)
  return misread
}

const misreadCache = new Map<string, boolean>()

/**
 * Multi-document YAML with keys sorted at every level and no anchors/aliases: the same objects give
 * byte-identical text, so revisions can be diffed. Every string that a YAML 1.1 or 1.2 reader would
 * take for something else (a boolean, a number, a null, a date) is double-quoted.
 */
export function toYaml(objects: readonly object[]): string {
  return objects
    .map((object) => {
      const doc = new YAML.Document(object, { sortMapEntries: true, aliasDuplicateObjects: false })
      YAML.visit(doc, {
        Scalar(_, node) {
          if (typeof node.value === 'string' && readsAsSomethingElse(node.value)) node.type = 'QUOTE_DOUBLE'
        },
      })
      return doc.toString({ lineWidth: 0 })
    })
    .join('---\n')
}

/**
 * For the preview route (`GET /api/v1/serve/{serve}/manifests/{env}`): rendered objects as YAML, or
 * as JSON with keys sorted the same way.
 */
export function formatManifests(manifests: readonly KubernetesObject[], format: 'yaml' | 'json'): string {
  if (format === 'yaml') return toYaml(manifests)
  return JSON.stringify(sortKeys(manifests), null, 2)
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
  )
}
