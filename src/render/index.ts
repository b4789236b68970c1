/**
 * Desired state → Kubernetes objects (and the Helm values DCM installs), from the YAML files in
 * templates/. Pure: no database, no network, no clock. The pipeline, one stage a file: validate.ts
 * refuses what cannot become valid objects; common.ts, fastapi.ts, ray.ts and workflow.ts fill the
 * templates (templates.ts) as objects, so a value can never break out of its field; dcm.ts and
 * dcm-values.ts give DCM's chart its values; yaml.ts writes byte-identical, YAML 1.1-safe text.
 */
import { invalid } from '../lib/errors'
import { baseName, hostsOf, LABELS, labelValue, MLFLOW_PASSWORD_KEY, ownershipSelector } from './common'
import { chartInput, dcmProblems } from './dcm'
import { type ChartInput, chartImage, chartValues, DCM_CHART, MLFLOW_PASSWORD_ENV } from './dcm-values'
import { autoscaler, deployment, routing, service } from './fastapi'
import { RAY_COMPONENT_LABEL, rayService } from './ray'
import type { Context, DcmRelease, KubernetesObject, ManagedSecret, RenderedServe, RenderInput, RenderSettings } from './types'
import { validate } from './validate'
import { workflowCronJob } from './workflow'

export { ANNOTATIONS, baseName, CAPACITY_TYPE_LABEL, LABELS, MANAGED_BY, ownershipSelector, primaryHost, routedByPath } from './common'
export { canaryName, canaryObjectRefs, canaryObjects, canaryReplicas, type ObjectRef, stableRouting, workloadName } from './canary'
export { DCM_CHART, DCM_REFUSALS, MLFLOW_PASSWORD_ENV } from './dcm-values'
export type { DcmRelease, KubernetesObject, ManagedSecret, NodeCapacityType, RenderedServe, RenderInput, RenderSettings } from './types'
export { CRONJOB_NAME_MAX, ENV_BYTES_MAX, ENV_VARS_MAX, RAYSERVICE_NAME_MAX } from './validate'
export { sortKeys, toYaml } from './yaml'

/** Splits an image reference as DCM's chart joins it back (`repository:tag`; see chartImage). */
export const splitImage = chartImage

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

/** Apply order: what others reference comes first. */
const KIND_ORDER = ['Secret', 'Service', 'Deployment', 'RayService', 'CronJob', 'HorizontalPodAutoscaler', 'Ingress', 'VirtualService']

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
