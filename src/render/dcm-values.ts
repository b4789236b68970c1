/**
 * The Helm values DCM installs the chart `darwin-fastapi-serve` with (the original's chart, in DCM's
 * repository under charts/darwin-fastapi-serve/). DCM deep-merges what we send over the chart's
 * values.yaml, so a key the templates do not read is silently replaced by its default: every value
 * here is one the chart's templates read (test/unit/dcm-chart.test.ts holds that list, with the
 * template each path comes from), and every default that would otherwise leak into a serve is set.
 *
 * What the chart cannot express is refused before anything is sent (`chartProblems`): Ray and
 * workflow serves, Istio routing, a Secret reference, image tags that are not label values (the chart
 * writes `image.tag` into a label), env var names a YAML 1.1 reader takes for booleans (the chart
 * writes them unquoted). (The organisation name, in a label key, is checked by config.ts.)
 */
import type { FieldError } from '../lib/errors'

/** The chart DCM installs for a serve (the original has this one only). */
export const DCM_CHART = 'darwin-fastapi-serve'

/** The env var whose value (the MLflow password) the DCM driver adds at apply time: never stored, never previewed. */
export const MLFLOW_PASSWORD_ENV = 'MLFLOW_TRACKING_PASSWORD'

export interface ChartProbe {
  initialDelaySeconds: number
  periodSeconds: number
  timeoutSeconds: number
  failureThreshold: number
}

/** Everything the values are made of, already decided by the renderer. */
export interface ChartInput {
  /** `{serve}-{env}`: the chart's `name`, and our Service's name (`serviceName`). */
  name: string
  serve: string
  /** DCM's release name: `{env}-{serve}`. */
  releaseName: string
  namespace: string
  clusterName: string
  org: string
  /** The service's ENV (the chart writes `envs.ENV` into a label). */
  env: string
  isLocal: boolean
  /** Reached by path (`/{serve}`) rather than by host: locally, or in an environment without a domain_suffix. */
  byPath: boolean
  /** The host of INGRESS_BASE_URL (`localhost` when unset): the chart needs a host on every rule. */
  pathHost: string
  ingressClass: string
  /** Public hosts (`{serve}{domain_suffix}` + additional hosts); unused locally. */
  hosts: string[]
  securityGroups: string[]
  subnets: string[]
  albLogs: { enabled: boolean; bucket: string; prefix: string }
  tags: string
  healthcheckPath: string
  applicationPort: number
  image: string
  /** Plain environment variables, in order (ENV, SERVICE_NAME, …, the deployment's). */
  envs: Record<string, string>
  cores: number
  memoryGiB: number
  minReplicas: number
  maxReplicas: number
  targetCpuUtilization: number
  capacityType: 'spot' | 'on-demand'
  tolerations: Record<string, string>[]
  strategy: 'rolling' | 'recreate'
  maxSurge: string | number
  maxUnavailable: string | number
  revision?: number
  /** Probe timings, from the fastapi Deployment template (the same as the kubernetes driver's). */
  livenessProbe: ChartProbe
  readinessProbe: ChartProbe
  revisionAnnotation: string
}

/**
 * How the chart splits an image: it renders `"{{ image.repository }}:{{ image.tag }}"`, so the tag
 * is what follows the last `:` after the last `/` — for a digest (`repo@sha256:…`) the hex digest,
 * which the template joins back to the same reference. No tag at all: Docker's default, `latest`.
 */
export function chartImage(image: string): { repository: string; tag: string } {
  const colon = image.lastIndexOf(':')
  if (colon <= image.lastIndexOf('/')) return { repository: image, tag: 'latest' }
  return { repository: image.slice(0, colon), tag: image.slice(colon + 1) }
}

/** The chart's `service-deployment.fullname` (_helpers.tpl): the Deployment, HPA and pod label are named so. */
export function chartFullname(releaseName: string, name: string): string {
  const full = releaseName.includes(name) ? releaseName : `${releaseName}-${name}`
  const cut = full.slice(0, 63)
  return cut.endsWith('-') ? cut.slice(0, -1) : cut
}

/** Why DCM's chart cannot install a kind of serve: the same words at write time (infra config, environment) and at render. */
export const DCM_REFUSALS = {
  workflow: `DCM installs the chart darwin-fastapi-serve, which has no template for a workflow serve (a CronJob): use an environment with cluster_driver kubernetes`,
  ray: `DCM installs the chart darwin-fastapi-serve, which has no template for a Ray serve (a RayService): use backend_type fastapi, or an environment with cluster_driver kubernetes`,
  istio: `ENABLE_ISTIO is on, and DCM's chart darwin-fastapi-serve has no Istio route (no VirtualService, it reads no istio.* value): a serve there would get no route at all; use cluster_driver kubernetes`,
  existingSecret: `DCM's chart has no Secret reference for the app container's environment; the MLflow password can only be handed to DCM by value`,
  canary:
    "DCM's chart expresses a canary only as a Flagger Canary (flagger.enabled): Flagger then moves the traffic itself in equal stepWeight steps, judged by a Datadog MetricTemplate and an Istio gateway the chart names, with an autoscaling/v2beta2 HPA reference that Kubernetes 1.26 removed; these steps, step_seconds, max_restarts, promote and abort cannot be given to it. Use deployment_strategy rolling (a failed rollout is still rolled back automatically), or an environment with cluster_driver kubernetes",
} as const

/** What a serve must not be for DCM to install it, before anything is rendered. */
export function chartInputProblems(fit: { serveType: 'api' | 'workflow'; backendType?: 'fastapi' | 'ray'; istio: boolean; existingPasswordSecret?: boolean }): FieldError[] {
  const problems: FieldError[] = []
  if (fit.serveType === 'workflow') problems.push({ path: '/serve/type', message: DCM_REFUSALS.workflow })
  else if (fit.backendType === 'ray') problems.push({ path: '/infra/backend_type', message: DCM_REFUSALS.ray })
  if (fit.istio) problems.push({ path: '/settings/ENABLE_ISTIO', message: DCM_REFUSALS.istio })
  if (fit.existingPasswordSecret) problems.push({ path: '/mlflow/existing_password_secret', message: DCM_REFUSALS.existingSecret })
  return problems
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/
const isLabelValue = (value: string) => value.length <= 63 && LABEL_VALUE.test(value)
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
/** Plain scalars a YAML 1.1 reader (Helm's) resolves to a boolean or null: the chart writes env var names unquoted. */
const YAML11_NON_STRINGS = new Set(['Y', 'N', 'YES', 'NO', 'TRUE', 'FALSE', 'ON', 'OFF', 'NULL'])

/** What the chart cannot install for this input, each with the field to blame. */
export function chartProblems(input: ChartInput): FieldError[] {
  const problems: FieldError[] = []
  const { tag } = chartImage(input.image)
  if (input.image.includes('@')) {
    problems.push({ path: '/artifact/image', message: `DCM's chart writes image.tag into the label tags.datadoghq.com/version; an image by digest (${tag.length} hex characters) is not a label value (at most 63): use a tagged image or an environment with cluster_driver kubernetes` })
  } else if (!isLabelValue(tag)) {
    problems.push({ path: '/artifact/image', message: `DCM's chart writes image.tag into the label tags.datadoghq.com/version; "${tag}" is not a label value (at most 63 letters, digits, "-", "_", ".", alphanumeric at both ends)` })
  }
  const fullname = chartFullname(input.releaseName, input.name)
  if (!DNS_LABEL.test(fullname)) problems.push({ path: '/serve/name', message: `DCM's chart would name the Deployment "${fullname}", which is not a DNS label` })
  // The organisation name is in the label key com.dreamsports.{org}/service: config.ts accepts only DNS subdomains.
  const datadogEnv = `k8s-${input.envs.ENV ?? ''}${input.envs.TEAM_SUFFIX ?? ''}${input.envs.VPC_SUFFIX ?? ''}`
  if (!isLabelValue(datadogEnv)) {
    problems.push({ path: '/deployment/environment_variables', message: `DCM's chart writes the label tags.datadoghq.com/env: "${datadogEnv}" (from ENV, TEAM_SUFFIX and VPC_SUFFIX) is not a label value` })
  }
  for (const name of Object.keys(input.envs)) {
    if (YAML11_NON_STRINGS.has(name)) {
      problems.push({ path: `/deployment/environment_variables/${name}`, message: `DCM's chart writes env var names unquoted, and Helm's YAML reads ${name} as a ${name === 'NULL' ? 'null' : 'boolean'}: rename it` })
    }
  }
  return problems
}

/**
 * The values sent with every install: each path is one the chart reads, including those whose
 * defaults would otherwise leak (the ALB tags naming a person, nodeSelector, probes, strategy…).
 */
export function chartValues(input: ChartInput): Record<string, unknown> {
  const amounts = { cpu: String(input.cores), memory: `${input.memoryGiB}Gi` }
  const probe = (timings: ChartProbe) => ({ ...timings, successThreshold: 1, httpGet: { path: input.healthcheckPath, port: input.applicationPort } })
  const alb = input.ingressClass === 'alb'
  // The chart's nginx annotations always rewrite to /$2: the path captures the request path as its second group.
  const path = alb ? (input.byPath ? `/${input.serve}` : '/') : input.byPath ? `/${input.serve}(/|$)(.*)` : '/()(.*)'
  // Never empty: the chart opens `annotations:` only for a non-empty map, and appends its own (ALB or nginx) under it.
  // The default's hostname (a demo host) is overridden, with nothing locally.
  const annotations: Record<string, string> = { 'external-dns.alpha.kubernetes.io/hostname': input.byPath ? '' : input.hosts.join(',') }
  // Locally (as the original): no AWS settings, no tags.
  const aws = alb && !input.isLocal
  if (aws) {
    if (input.securityGroups.length > 0) annotations['alb.ingress.kubernetes.io/security-groups'] = input.securityGroups.join(',')
    if (input.subnets.length > 0) annotations['alb.ingress.kubernetes.io/subnets'] = input.subnets.join(',')
    // Not through ingressInt.albLogs: the chart's ALB-logs annotation includes a template it does not define.
    if (input.albLogs.enabled) {
      annotations['alb.ingress.kubernetes.io/load-balancer-attributes'] = `access_logs.s3.enabled=true,access_logs.s3.bucket=${input.albLogs.bucket},access_logs.s3.prefix=${input.albLogs.prefix}`
    }
  }
  // The chart renders RollingUpdate only: recreate is all old pods down, then the new ones.
  const rolling = input.strategy === 'recreate' ? { maxSurge: 0, maxUnavailable: '100%' } : { maxSurge: input.maxSurge, maxUnavailable: input.maxUnavailable }
  return {
    name: input.name,
    serviceName: input.name,
    cluster_name: input.clusterName,
    namespace: input.namespace,
    org: input.org,
    replicaCount: input.minReplicas,
    hpa: {
      enabled: true,
      maxReplicas: input.maxReplicas,
      cpu: input.targetCpuUtilization,
      // values.schema.json requires a memory target and the template renders one: at 100 % of the request (= the
      // limit) it never asks for more pods, so CPU alone scales, as with the kubernetes driver.
      memory: { target: 'Utilization', value: 100, unit: 'Mi' },
    },
    image: { ...chartImage(input.image), pullPolicy: 'Always' },
    envs: input.envs,
    service: { enabled: true, type: 'ClusterIP', httpPort: input.applicationPort, externalPort: 80 },
    livenessProbe: probe(input.livenessProbe),
    readinessProbe: probe(input.readinessProbe),
    resources: { limits: { ...amounts }, requests: { ...amounts } },
    // null, not {}: DCM's merge keeps the default's keys under an empty map; null removes them (as the original does locally).
    nodeSelector: input.isLocal ? null : { 'karpenter.sh/capacity-type': input.capacityType, serve: 'true' },
    tolerations: input.tolerations,
    ...(input.revision === undefined ? {} : { podAnnotations: { [input.revisionAnnotation]: String(input.revision) } }),
    flagger: { enabled: false, ...rolling },
    // The kubernetes driver renders no PodDisruptionBudget; minAvailable 1 on a one-replica serve blocks every node drain.
    pdb: { enabled: false },
    // Off explicitly: the chart's templates read modelCache.enabled, and a values.yaml without modelCache fails to render.
    modelCache: { enabled: false },
    configServer: { enabled: false },
    serviceAccount: { enabled: false },
    serviceMonitor: { enabled: false },
    tls: { enabled: false },
    ingressExt: { enabled: false },
    ingressInt: {
      enabled: true,
      ingressClass: input.ingressClass,
      namespace: input.namespace,
      // The chart's host-less rule names its port as a string, which the API refuses: always at least one host.
      hosts: input.byPath ? [input.pathHost] : input.hosts,
      path,
      pathType: alb ? 'Prefix' : 'ImplementationSpecific',
      annotations,
      healthcheckPath: input.healthcheckPath,
      tags: aws ? input.tags : '',
      albLogs: { enabled: false },
      tls: [],
    },
  }
}
