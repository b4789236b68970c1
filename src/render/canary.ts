/**
 * A canary's objects, derived from the canary revision's own render (pure): a second Deployment
 * `{name}-canary` with a fixed replica count beside the active revision's, and how traffic reaches it.
 *
 * - Without Istio, the canary's pods carry the labels the one Service selects, so they take a share
 *   of the traffic in proportion to their number (approximate: kube-proxy spreads connections, not
 *   requests). Their Deployment's selector adds the track label; the active Deployment's selector,
 *   which cannot change, also matches them, but ReplicaSets select by pod-template hash and own their
 *   pods by controller reference, so neither side adopts the other's pods.
 * - With Istio, the canary's pods get an instance label of their own and a Service `{name}-canary`,
 *   and the VirtualService splits the traffic by weight between the two Services: exact.
 */
import { LABELS } from './common'
import type { KubernetesObject, RenderedServe } from './types'

const CANARY_SUFFIX = '-canary'
const TRACK_LABEL = 'darwin.ml-serve/track'

/** A Kubernetes object by kind and name (what a driver reads or deletes). */
export interface ObjectRef {
  apiVersion: string
  kind: string
  name: string
}

type Json = Record<string, any>

const find = (rendered: RenderedServe, kind: string): Json | undefined => rendered.manifests.find((object) => object.kind === kind) as Json | undefined

/** The name every object of the serve is called by (the render's Deployment's). */
export function workloadName(rendered: RenderedServe): string {
  const deployment = find(rendered, 'Deployment')
  if (!deployment) throw new Error('a canary needs a Deployment in the render')
  return deployment.metadata.name
}

export const canaryName = (name: string) => `${name}${CANARY_SUFFIX}`

/** Replicas for the canary to take `weight` % beside `stableReplicas` pods, within [1, max]. */
export function canaryReplicas(stableReplicas: number, weight: number, max: number): number {
  const wanted = Math.ceil((Math.max(1, stableReplicas) * weight) / Math.max(1, 100 - weight))
  return Math.min(Math.max(1, max), Math.max(1, wanted))
}

/** The canary's objects at `weight` % with `replicas` pods, in apply order. */
export function canaryObjects(rendered: RenderedServe, placement: { replicas: number; weight: number; istio: boolean }): KubernetesObject[] {
  const deployment = structuredClone(find(rendered, 'Deployment')) as Json
  const name = deployment.metadata.name as string
  const canary = canaryName(name)
  const podLabels: Record<string, string> = { ...deployment.spec.template.metadata.labels, [TRACK_LABEL]: 'canary' }
  const selector: Record<string, string> = { ...deployment.spec.selector.matchLabels, [TRACK_LABEL]: 'canary' }
  if (placement.istio) {
    // Out of the one Service's selection: the VirtualService sends the canary its weight through its own.
    podLabels[LABELS.instance] = canary
    selector[LABELS.instance] = canary
  }
  deployment.metadata = { ...deployment.metadata, name: canary, labels: { ...deployment.metadata.labels, [TRACK_LABEL]: 'canary' } }
  deployment.spec.replicas = placement.replicas
  deployment.spec.selector = { matchLabels: selector }
  deployment.spec.template.metadata = { ...deployment.spec.template.metadata, labels: podLabels }
  if (!placement.istio) return [deployment as KubernetesObject]

  const service = structuredClone(find(rendered, 'Service')) as Json
  service.metadata = { ...service.metadata, name: canary, labels: { ...service.metadata.labels, [TRACK_LABEL]: 'canary' } }
  service.spec.selector = selector
  const virtualService = structuredClone(find(rendered, 'VirtualService')) as Json | undefined
  if (!virtualService) throw new Error('an Istio canary needs the VirtualService of the render')
  const namespace = deployment.metadata.namespace as string
  for (const route of virtualService.spec.http as Json[]) {
    const stable = route.route[0].destination
    route.route = [
      { destination: stable, weight: 100 - placement.weight },
      { destination: { ...stable, host: `${canary}.${namespace}.svc.cluster.local` }, weight: placement.weight },
    ]
  }
  return [service as KubernetesObject, deployment as KubernetesObject, virtualService as KubernetesObject]
}

/** What removing a canary deletes (the VirtualService is given back by applying the stable render's: `stableRouting`). */
export function canaryObjectRefs(name: string, istio: boolean): ObjectRef[] {
  const canary = canaryName(name)
  return [{ apiVersion: 'apps/v1', kind: 'Deployment', name: canary }, ...(istio ? [{ apiVersion: 'v1', kind: 'Service', name: canary }] : [])]
}

/** The stable render's routing under Istio (all traffic to the stable Service), to apply when a canary ends; none without Istio. */
export function stableRouting(rendered: RenderedServe): KubernetesObject[] {
  return rendered.manifests.filter((object) => object.kind === 'VirtualService')
}
