/** A workflow serve: a CronJob running the workflow driver on its schedule, with the job cluster's spec. */
import { ANNOTATIONS, environmentVariables, fromTemplate, metadata, podMetadata, resources, scheduling, workloadAnnotations } from './common'
import type { Context, KubernetesObject } from './types'

export function workflowCronJob(ctx: Context): KubernetesObject {
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
