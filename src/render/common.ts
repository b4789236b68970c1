/**
 * What every backend builds with: names, labels and annotations, metadata, pod settings (environment
 * variables, resources, node selection, probes) and the templates they start from.
 */
import { type TemplatePath, template } from './templates'
import type { Context, KubernetesObject, NodeCapacityType, RenderInput, RenderSettings } from './types'

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
export const MLFLOW_PASSWORD_KEY = 'password'
export const DEFAULT_TARGET_CPU = 70

/**
 * A parsed template being filled in. Untyped on purpose: templates are data files, and every filled
 * object is checked against client-node's models (or the CRD's required fields) in the render tests.
 */
export type TemplateDocument = any

/** A fresh copy of a template (embedded, or from TEMPLATES_DIR) to fill in. */
export const fromTemplate = (ctx: Context, path: TemplatePath): TemplateDocument => template<TemplateDocument>(ctx.settings.templatesDir, path)

/** `{serve}-{env}`: every object of a serve in an environment is named from it. */
export const baseName = (serve: string, environment: string) => `${serve}-${environment}`

/** A label value (≤ 63 chars of [A-Za-z0-9-_.], alphanumeric at both ends); the raw value goes in an annotation. */
export function labelValue(raw: string): string {
  return raw
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '')
}

/** The labels every object of (serve, env) carries; pruning selects on the managed-by/serve/environment ones. */
export function ownershipSelector(serve: string, environment: string): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY, [LABELS.serve]: serve, [LABELS.environment]: environment }
}

export const commaList = (raw: string) =>
  raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')

/** The serve's own host in an environment: `<serve>` + the environment's `domain_suffix`. */
export function primaryHost(serve: string, domainSuffix: string): string {
  return `${serve}${domainSuffix.startsWith('.') || domainSuffix === '' ? '' : '.'}${domainSuffix}`.toLowerCase()
}

export function hostsOf(input: RenderInput): string[] {
  const primary = primaryHost(input.serve.name, input.environment.domain_suffix)
  const hosts = [primary, ...(input.infra.additional_hosts ?? []).map((h) => h.trim().toLowerCase())]
  return [...new Set(hosts.filter((h) => h !== ''))]
}

export function metadata(ctx: Context, name = ctx.name, annotations?: Record<string, string>): KubernetesObject['metadata'] {
  return {
    name,
    namespace: ctx.namespace,
    labels: { ...ctx.labels },
    ...(annotations === undefined ? {} : { annotations }),
  }
}

export function workloadAnnotations(ctx: Context): Record<string, string> {
  return { [ANNOTATIONS.artifactVersion]: ctx.input.artifact.version, [ANNOTATIONS.description]: ctx.input.serve.description }
}

export function podMetadata(ctx: Context, extraLabels: Record<string, string> = {}) {
  const revision = ctx.input.deployment.revision
  return {
    labels: { ...ctx.labels, ...extraLabels },
    ...(revision === undefined ? {} : { annotations: { [ANNOTATIONS.revision]: String(revision) } }),
  }
}

export type EnvVar = { name: string; value: string } | { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } }

/**
 * Reached by path (`/{serve}` on the ingress, any host) rather than by host: where there is no DNS
 * for it — ENV=local, or an environment without a domain_suffix (the original's local setup).
 */
export const routedByPath = (settings: Pick<RenderSettings, 'isLocal'>, domainSuffix: string) => settings.isLocal || domainSuffix === ''

/** ENV and SERVICE_NAME, the deployment's variables (keys upper-cased, as the original does), then MLflow's. */
export function environmentVariables(ctx: Context, extra: Record<string, string> = {}): EnvVar[] {
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

export function resources(cores: number, memoryGiB: number) {
  const amounts = { cpu: String(cores), memory: `${memoryGiB}Gi` }
  // Limits equal requests (Guaranteed QoS), as in the original's chart.
  return { requests: { ...amounts }, limits: { ...amounts } }
}

/** Node selection: Karpenter's capacity type plus the original's `serve: "true"` pool label; none locally. */
export function scheduling(ctx: Context, capacity: NodeCapacityType) {
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

export function probe(base: Record<string, unknown>, path: string) {
  return { ...base, httpGet: { ...(base.httpGet as Record<string, unknown>), path } }
}
