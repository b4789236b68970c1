/** What DCM's chart is given for a FastAPI serve, from the render's context (dcm-values.ts turns it into values). */
import type { FieldError } from '../lib/errors'
import { ANNOTATIONS, commaList, DEFAULT_TARGET_CPU, environmentVariables, fromTemplate, routedByPath, scheduling } from './common'
import { type ChartInput, chartInputProblems, chartProblems } from './dcm-values'
import { albTags } from './fastapi'
import type { Context } from './types'

/** What DCM's chart is given for this serve (src/render/dcm-values.ts decides the values). */
export function chartInput(ctx: Context): ChartInput {
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
export function dcmProblems(ctx: Context, chart: ChartInput | undefined): FieldError[] {
  const { input, settings } = ctx
  const problems = chartInputProblems({
    serveType: input.serve.type,
    backendType: input.infra.backend_type,
    istio: settings.istio.enabled,
    existingPasswordSecret: input.mlflow?.existing_password_secret !== undefined,
  })
  return chart ? [...problems, ...chartProblems(chart)] : problems
}
