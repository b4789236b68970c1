/**
 * A fake Kubernetes API server: a real HTTP server on 127.0.0.1 answering what client-node's
 * KubernetesObjectApi sends — discovery (`/api/v1`, `/apis/{group}/{version}`), server-side apply
 * (PATCH application/apply-patch+yaml), merge patch, GET, LIST by label selector and DELETE — for the
 * kinds a render produces, plus Pods. It stores objects, records every request, and can be told to
 * fail (a Status body with the given code and message), be slow, or report rollout progress.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { type ClusterDrivers, createClusterDrivers } from '../../src/cluster'
import type { KubeconfigLocations } from '../../src/cluster/kubeconfig'
import { loadConfig } from '../../src/config'

/** A test-only CA, server and client certificate (valid until 2126); never used outside tests. */
const TLS_DIR = join(import.meta.dir, 'tls')

interface ResourceKind {
  apiVersion: string
  kind: string
  plural: string
}

const KINDS: ResourceKind[] = [
  { apiVersion: 'v1', kind: 'Secret', plural: 'secrets' },
  { apiVersion: 'v1', kind: 'Service', plural: 'services' },
  { apiVersion: 'v1', kind: 'Pod', plural: 'pods' },
  { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments' },
  { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', plural: 'horizontalpodautoscalers' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', plural: 'ingresses' },
  { apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', plural: 'virtualservices' },
  { apiVersion: 'ray.io/v1', kind: 'RayService', plural: 'rayservices' },
  { apiVersion: 'batch/v1', kind: 'CronJob', plural: 'cronjobs' },
]

export interface RecordedRequest {
  method: string
  path: string
  query: Record<string, string>
  contentType: string | null
  body: unknown
}

export interface StoredObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace: string; labels?: Record<string, string>; resourceVersion: string; generation: number; uid: string; [key: string]: unknown }
  spec?: unknown
  status?: unknown
  [field: string]: unknown
}

interface Failure {
  method?: string
  path?: RegExp
  status: number
  message: string
  times: number
}

type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value)

/** RFC 7386 merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch)
  const result: Json = isObject(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    else result[key] = mergePatch(result[key], value)
  }
  return result
}

const status = (code: number, message: string, reason = 'Failure') =>
  Response.json({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }, { status: code })

export class FakeKubernetes {
  readonly requests: RecordedRequest[] = []
  private readonly objects = new Map<string, StoredObject>()
  private readonly failures: Failure[] = []
  private delayMs = 0
  private readonly inFlight = new Set<Promise<Response>>()
  private version = 1
  private kubeconfigDir?: string
  private readonly server: ReturnType<typeof Bun.serve>

  /**
   * `tls`: serve https with the test CA's certificate and require a client certificate signed by it,
   * as a real API server does for kind's (and most) kubeconfigs; the certificates are in ./tls/.
   */
  constructor(private readonly options: { tls?: boolean } = {}) {
    this.server = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      ...(options.tls
        ? { tls: { cert: Bun.file(join(TLS_DIR, 'server.crt')), key: Bun.file(join(TLS_DIR, 'server.key')), ca: Bun.file(join(TLS_DIR, 'ca.crt')), requestCert: true, rejectUnauthorized: true } }
        : {}),
      fetch: (request) => {
        const answer = this.handle(request)
        this.inFlight.add(answer)
        void answer.finally(() => this.inFlight.delete(answer))
        return answer
      },
    })
  }

  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${this.server.port}`
  }

  /**
   * A kubeconfig for this server. Plain http needs skipTLSVerify (client-node refuses it otherwise);
   * with `tls` it carries the CA and the client certificate inline, as kind writes them.
   */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig()
    const pem = (file: string) => readFileSync(join(TLS_DIR, file)).toString('base64')
    kc.loadFromOptions({
      clusters: [this.options.tls ? { name: 'fake', server: this.url, caData: pem('ca.crt') } : { name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [this.options.tls ? { name: 'fake', certData: pem('client.crt'), keyData: pem('client.key') } : { name: 'fake', token: 'fake-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    })
    return kc
  }

  /**
   * Cluster drivers of a control plane configured by `env` whose Kubernetes driver talks to this
   * server: its kubeconfig is written to a file and found as KUBECONFIG would be (no home, not in a cluster).
   */
  drivers(env: Record<string, string>): ClusterDrivers {
    return createClusterDrivers(loadConfig(env), { kubeconfigLocations: this.kubeconfigLocations() })
  }

  /** Where a driver finds this server's kubeconfig (a file written once). */
  kubeconfigLocations(): KubeconfigLocations {
    if (!this.kubeconfigDir) {
      this.kubeconfigDir = mkdtempSync(join(tmpdir(), 'fake-kubeconfig-'))
      writeFileSync(join(this.kubeconfigDir, 'config.json'), this.kubeConfig().exportConfig())
    }
    return { kubeconfig: join(this.kubeconfigDir, 'config.json'), home: this.kubeconfigDir, inCluster: false }
  }

  stop(): void {
    this.server.stop(true)
    if (this.kubeconfigDir) rmSync(this.kubeconfigDir, { recursive: true, force: true })
  }

  /** The next `times` requests matching method/path answer `status` with a Status carrying `message`. */
  /** Forgets the failures not yet answered. */
  clearFailures(): void {
    this.failures.length = 0
  }

  failNext(failure: { method?: string; path?: RegExp; status: number; message: string; times?: number }): void {
    this.failures.push({ ...failure, times: failure.times ?? 1 })
  }

  /** Every request waits this long before being answered. */
  setDelay(ms: number): void {
    this.delayMs = ms
  }

  /**
   * Resolves once every request received so far has been handled — including those a client gave
   * up on while the server was slow, which still land (as a real API server's would).
   */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight])
  }

  get(kind: string, namespace: string, name: string): StoredObject | undefined {
    return this.objects.get(this.key(this.kindOf(kind), namespace, name))
  }

  list(kind?: string): StoredObject[] {
    return [...this.objects.values()].filter((o) => kind === undefined || o.kind === kind)
  }

  /** Sets an object's status, as a controller would (rollout progress, failures). */
  setStatus(kind: string, namespace: string, name: string, newStatus: unknown): void {
    const object = this.get(kind, namespace, name)
    if (!object) throw new Error(`no ${kind} ${namespace}/${name}`)
    object.status = newStatus
  }

  /**
   * What a Deployment's controller and the kubelet would report: `count` pods (default: its
   * spec.replicas, else status.replicas, else 1) carrying its pod template's labels, `ready` of them
   * ready (default all), each container restarted `restarts` times and, with `waiting`, stuck in that
   * waiting reason (CrashLoopBackOff…); the Deployment's status to match (its current spec observed).
   * The pods this call made for the Deployment before are replaced.
   */
  runPods(namespace: string, deployment: string, pods: { count?: number; ready?: number; restarts?: number; waiting?: string } = {}): void {
    const owner = this.get('Deployment', namespace, deployment)
    if (!owner) throw new Error(`no Deployment ${namespace}/${deployment}`)
    const spec = owner.spec as { replicas?: number; template: { metadata: { labels: Record<string, string> } } }
    const count = pods.count ?? spec.replicas ?? (owner.status as { replicas?: number } | undefined)?.replicas ?? 1
    const ready = Math.min(count, pods.ready ?? count)
    const prefix = `${deployment}-pod-`
    for (const pod of this.list('Pod')) if (pod.metadata.namespace === namespace && pod.metadata.name.startsWith(prefix)) this.objects.delete(this.key(this.kindOf('Pod'), namespace, pod.metadata.name))
    for (let i = 0; i < count; i++) {
      const waiting = pods.waiting && i >= ready
      this.put({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `${prefix}${i}`, namespace, labels: { ...spec.template.metadata.labels } },
        status: {
          containerStatuses: [{ name: 'app', ready: i < ready, restartCount: pods.restarts ?? 0, state: waiting ? { waiting: { reason: pods.waiting } } : { running: {} } }],
        },
      })
    }
    owner.status = { observedGeneration: owner.metadata.generation, replicas: count, updatedReplicas: count, readyReplicas: ready, availableReplicas: ready }
  }

  /** Stores an object as if something else had created it (e.g. a Pod made by a ReplicaSet). */
  put(object: { apiVersion: string; kind: string; metadata: { name: string; namespace: string; labels?: Record<string, string> }; [field: string]: unknown }): void {
    const kind = this.kindOf(object.kind)
    this.objects.set(this.key(kind, object.metadata.namespace, object.metadata.name), {
      ...structuredClone(object),
      metadata: { ...structuredClone(object.metadata), resourceVersion: String(this.version++), generation: 1, uid: crypto.randomUUID() },
    })
  }

  clearRequests(): void {
    this.requests.length = 0
  }

  private kindOf(kind: string): ResourceKind {
    const found = KINDS.find((k) => k.kind === kind)
    if (!found) throw new Error(`the fake does not serve ${kind}`)
    return found
  }

  private key(kind: ResourceKind, namespace: string, name: string): string {
    return `${kind.apiVersion}/${kind.plural}/${namespace}/${name}`
  }

  private async handle(request: Request): Promise<Response> {
    const url = new URL(request.url)
    const text = await request.text()
    let body: unknown = text
    try {
      body = text === '' ? undefined : JSON.parse(text)
    } catch {}
    this.requests.push({
      method: request.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentType: request.headers.get('content-type'),
      body,
    })
    if (this.delayMs > 0) await Bun.sleep(this.delayMs)
    const failure = this.failures.find((f) => (!f.method || f.method === request.method) && (!f.path || f.path.test(url.pathname)))
    if (failure) {
      if (--failure.times <= 0) this.failures.splice(this.failures.indexOf(failure), 1)
      return status(failure.status, failure.message)
    }
    return this.route(request.method, url, body)
  }

  private route(method: string, url: URL, body: unknown): Response {
    // /api/v1[/namespaces/{ns}/{plural}[/{name}]] or /apis/{group}/{version}[/namespaces/...]
    const parts = url.pathname.split('/').filter((p) => p !== '')
    const versionParts = parts[0] === 'api' ? 2 : 3
    const apiVersion = parts.slice(1, versionParts).join('/')
    const rest = parts.slice(versionParts)
    const kinds = KINDS.filter((k) => k.apiVersion === apiVersion)
    if (kinds.length === 0) return status(404, `the server could not find the requested resource (${url.pathname})`, 'NotFound')
    if (rest.length === 0 && method === 'GET') {
      return Response.json({
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: apiVersion,
        resources: kinds.map((k) => ({ name: k.plural, singularName: k.kind.toLowerCase(), namespaced: true, kind: k.kind, verbs: ['get', 'list', 'patch', 'delete'] })),
      })
    }
    if (rest[0] !== 'namespaces' || rest.length < 3) return status(404, `unsupported path ${url.pathname}`, 'NotFound')
    const namespace = decodeURIComponent(rest[1] ?? '')
    const kind = kinds.find((k) => k.plural === rest[2])
    if (!kind) return status(404, `the server could not find the requested resource (${url.pathname})`, 'NotFound')
    const name = rest[3] === undefined ? undefined : decodeURIComponent(rest[3])

    if (name === undefined) {
      if (method !== 'GET') return status(405, 'method not allowed', 'MethodNotAllowed')
      return this.listObjects(kind, namespace, url.searchParams.get('labelSelector') ?? '')
    }
    const key = this.key(kind, namespace, name)
    const existing = this.objects.get(key)
    switch (method) {
      case 'GET':
        return existing ? Response.json(existing) : status(404, `${kind.plural} "${name}" not found`, 'NotFound')
      case 'DELETE':
        if (!existing) return status(404, `${kind.plural} "${name}" not found`, 'NotFound')
        this.objects.delete(key)
        return Response.json({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 200 })
      case 'PATCH':
        return this.patch(kind, key, namespace, name, existing, body, url)
      default:
        return status(405, 'method not allowed', 'MethodNotAllowed')
    }
  }

  private listObjects(kind: ResourceKind, namespace: string, labelSelector: string): Response {
    const wanted = labelSelector
      .split(',')
      .filter((term) => term !== '')
      .map((term) => term.split('=') as [string, string])
    const items = [...this.objects.values()].filter(
      (o) => o.kind === kind.kind && o.metadata.namespace === namespace && wanted.every(([k, v]) => o.metadata.labels?.[k] === v),
    )
    return Response.json({ kind: `${kind.kind}List`, apiVersion: kind.apiVersion, metadata: { resourceVersion: String(this.version) }, items })
  }

  private patch(kind: ResourceKind, key: string, namespace: string, name: string, existing: StoredObject | undefined, body: unknown, url: URL): Response {
    const contentType = this.requests.at(-1)?.contentType ?? ''
    if (!isObject(body)) return status(400, 'the patch body is not an object', 'BadRequest')
    const bodyMetadata = (body.metadata ?? {}) as Json
    if (bodyMetadata.name !== undefined && bodyMetadata.name !== name) return status(400, 'the name of the object does not match the URL', 'BadRequest')
    let next: Json
    if (contentType.startsWith('application/apply-patch')) {
      if (!url.searchParams.get('fieldManager')) return status(400, 'PATCH with apply requires a fieldManager', 'BadRequest')
      // Applied configuration replaces what the manager owns; status and server-set metadata stay.
      next = { ...body, metadata: { ...bodyMetadata, namespace, name } }
    } else if (contentType.startsWith('application/merge-patch+json')) {
      if (!existing) return status(404, `${kind.plural} "${name}" not found`, 'NotFound')
      if (bodyMetadata.resourceVersion !== undefined && bodyMetadata.resourceVersion !== existing.metadata.resourceVersion) {
        return status(409, `Operation cannot be fulfilled on ${kind.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`, 'Conflict')
      }
      const patchBody = { ...body, metadata: { ...bodyMetadata } }
      delete (patchBody.metadata as Json).resourceVersion
      next = mergePatch(existing, patchBody) as Json
    } else {
      return status(415, `unsupported media type ${contentType}`, 'UnsupportedMediaType')
    }
    const { resourceVersion: _rv, generation: _gen, uid: _uid, ...nextMetadata } = next.metadata as Json
    const comparable = (o: Json | undefined) => {
      if (!o) return undefined
      const { resourceVersion: _r, generation: _g, uid: _u, ...m } = o.metadata as Json
      const { status: _s, ...rest } = o
      return JSON.stringify({ ...rest, metadata: m })
    }
    const candidate: Json = { ...next, metadata: nextMetadata }
    if (existing && comparable(existing) === comparable({ ...candidate, status: existing.status })) return Response.json(existing)
    const specChanged = !existing || JSON.stringify(existing.spec) !== JSON.stringify(candidate.spec)
    const stored: StoredObject = {
      ...(candidate as Omit<StoredObject, 'metadata'>),
      apiVersion: kind.apiVersion,
      kind: kind.kind,
      ...(existing?.status === undefined ? {} : { status: existing.status }),
      metadata: {
        ...(nextMetadata as StoredObject['metadata']),
        namespace,
        name,
        uid: existing?.metadata.uid ?? crypto.randomUUID(),
        resourceVersion: String(this.version++),
        generation: (existing?.metadata.generation ?? 0) + (specChanged ? 1 : 0),
      },
    }
    this.objects.set(key, stored)
    return Response.json(stored, { status: existing ? 200 : 201 })
  }
}
