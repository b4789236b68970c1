/** A Ray Serve serve: a KubeRay RayService (head and one worker group); its Service and route come from fastapi.ts. */
import YAML from 'yaml'
import { environmentVariables, fromTemplate, metadata, podMetadata, resources, scheduling, type TemplateDocument, workloadAnnotations } from './common'
import type { Context, KubernetesObject } from './types'

function rayContainer(ctx: Context, base: TemplateDocument, extraEnv: Record<string, string>): TemplateDocument {
  return {
    ...base,
    image: ctx.input.artifact.image,
    env: environmentVariables(ctx, extraEnv),
    resources: resources(ctx.input.infra.cores, ctx.input.infra.memory),
  }
}

export function rayService(ctx: Context): KubernetesObject {
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

export const RAY_COMPONENT_LABEL = 'darwin.ml-serve/ray-node'
