/** A FastAPI serve: Deployment, Service, HorizontalPodAutoscaler, and its route (Ingress or Istio VirtualService). */
import { commaList, DEFAULT_TARGET_CPU, environmentVariables, fromTemplate, MANAGED_BY, metadata, podMetadata, probe, resources, routedByPath, scheduling, workloadAnnotations } from './common'
import type { Context, KubernetesObject } from './types'

export function deployment(ctx: Context): KubernetesObject {
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

export function service(ctx: Context, selector: Record<string, string>): KubernetesObject {
  const obj = fromTemplate(ctx, 'fastapi/service.yaml')
  obj.metadata = metadata(ctx)
  obj.spec.selector = selector
  obj.spec.ports[0].targetPort = 'http'
  return obj
}

export function autoscaler(ctx: Context): KubernetesObject {
  const obj = fromTemplate(ctx, 'fastapi/hpa.yaml')
  obj.metadata = metadata(ctx)
  obj.spec.scaleTargetRef.name = ctx.name
  obj.spec.minReplicas = ctx.input.infra.min_replicas
  obj.spec.maxReplicas = ctx.input.infra.max_replicas
  obj.spec.metrics[0].resource.target.averageUtilization = ctx.input.infra.target_cpu_utilization ?? DEFAULT_TARGET_CPU
  return obj
}

/** The ALB's AWS tags: environment, service, org, provisioned-by. */
export function albTags(ctx: Context): string {
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
  const route = [{ destination: { host: `${ctx.name}.${ctx.namespace}.svc.cluster.local`, port: { number: 80 } } }]
  obj.spec.gateways = [`${istio.namespace}/${istio.serviceName}`]
  // Without DNS the gateway takes any host and routes /<serve>, as the Ingress does (the app gets ROOT_PATH).
  if (routedByPath(ctx.settings, ctx.input.environment.domain_suffix)) {
    obj.spec.hosts = ['*']
    obj.spec.http = [{ match: [{ uri: { prefix: `/${ctx.input.serve.name}` } }], route }]
  } else {
    obj.spec.hosts = [...ctx.hosts]
    obj.spec.http = [{ route }]
  }
  return obj
}

export function routing(ctx: Context): KubernetesObject[] {
  return ctx.settings.istio.enabled ? [virtualService(ctx)] : [ingress(ctx)]
}
