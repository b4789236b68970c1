/**
 * A fake DCM (Darwin Cluster Manager) on 127.0.0.1 speaking the real one's contract (`/resource-instance/…`,
 * see ORIGINAL.md and DCM's services/resource_instance): it keeps registered artifacts and their values,
 * runs pods for started resources, answers status in the real DTO shape, records every request, and can
 * be told to fail, be slow, or hold a rollout.
 *
 * As the real DCM does (read from its source):
 * - every answer is `ResourceInstanceResponse` `{status: "SUCCESS", message, data}`;
 * - `POST /resource-instance/` (re)registers an artifact: registering an existing one replaces it;
 * - `PATCH /resource-instance/values` deep-merges the values into the artifact's (maps merge, anything
 *   else — null and lists included — replaces);
 * - `POST /resource-instance/status` lists the pods labelled with the resource id:
 *   `data: {resource_id, status: {pods: [{name, status, message}]}}`, `pods` null when there are none
 *   (a Go nil slice), also for a resource never started; `status` is the pod phase, reported `Pending`
 *   with "Containers are not ready" for a running pod whose containers are not all ready;
 * - `POST /resource-instance/stop` uninstalls, and succeeds for a release that is not there.
 */
interface Registered {
  darwin_resource: string
  version: string
  values: Record<string, unknown>
}

export interface DcmRequest {
  method: string
  path: string
  body: Record<string, unknown>
}

export interface FakePod {
  name: string
  status: string
  message: string
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value)

function deepMerge(target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const result = { ...target }
  for (const [key, value] of Object.entries(patch)) {
    const current = result[key]
    result[key] = isObject(current) && isObject(value) ? deepMerge(current, value) : value
  }
  return result
}

const ok = (message: string, data: unknown, status = 200) => Response.json({ status: 'SUCCESS', message, data }, { status })
const error = (message: string, status: number) => Response.json({ status: 'ERROR', message, data: null }, { status })

export class FakeDcm {
  readonly requests: DcmRequest[] = []
  /** By artifact_id. */
  readonly artifacts = new Map<string, Registered>()
  /** By resource_id: the pods of a started resource. */
  readonly pods = new Map<string, FakePod[]>()
  /**
   * How a start rolls out: `instant` replaces the pods with the new template's, Running; `hold`
   * keeps the old pods Running beside the new ones, Pending (see finishRollout).
   */
  rollout: 'instant' | 'hold' = 'instant'
  private failures: { path?: string; status: number; message: string; times: number }[] = []
  private delayMs = 0
  private started = 0
  private readonly server: ReturnType<typeof Bun.serve>

  constructor() {
    this.server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: (request) => this.handle(request) })
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}`
  }

  stop(): void {
    this.server.stop(true)
  }

  reset(): void {
    this.requests.length = 0
    this.artifacts.clear()
    this.pods.clear()
    this.rollout = 'instant'
    this.failures = []
    this.delayMs = 0
  }

  failNext(failure: { path?: string; status: number; message: string; times?: number }): void {
    this.failures.push({ ...failure, times: failure.times ?? 1 })
  }

  setDelay(ms: number): void {
    this.delayMs = ms
  }

  /** A held rollout ends: the old template's pods go, the new ones run. */
  finishRollout(resourceId: string): void {
    const pods = this.pods.get(resourceId) ?? []
    const newest = pods.filter((pod) => pod.status === 'Pending')
    this.pods.set(resourceId, newest.map((pod) => ({ ...pod, status: 'Running', message: '' })))
  }

  private async handle(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname
    const body = (await request.json().catch(() => ({}))) as Record<string, unknown>
    this.requests.push({ method: request.method, path, body })
    if (this.delayMs > 0) await Bun.sleep(this.delayMs)
    const failure = this.failures.find((f) => !f.path || f.path === path)
    if (failure) {
      if (--failure.times <= 0) this.failures = this.failures.filter((f) => f !== failure)
      return error(failure.message, failure.status)
    }
    const artifactId = String(body.artifact_id ?? '')
    const resourceId = String(body.resource_id ?? '')
    switch (`${request.method} ${path}`) {
      case 'POST /resource-instance/':
        this.artifacts.set(artifactId, { darwin_resource: String(body.darwin_resource), version: String(body.version), values: body.values as Record<string, unknown> })
        return ok('Artifact Creation Success', { artifact_id: artifactId })
      case 'PATCH /resource-instance/values': {
        const artifact = this.artifacts.get(artifactId)
        if (!artifact) return error(`artifact ${artifactId} not found`, 404)
        artifact.values = deepMerge(artifact.values, body.values as Record<string, unknown>)
        return ok('Values Updation Success', { artifact_id: artifactId })
      }
      case 'POST /resource-instance/start': {
        const artifact = this.artifacts.get(artifactId)
        if (!artifact) return error(`artifact ${artifactId} not found`, 404)
        this.startPods(resourceId, artifact.values)
        return ok('Resource Instance Start Accepted', { resource_id: resourceId })
      }
      case 'POST /resource-instance/stop':
        this.pods.delete(resourceId)
        return ok('Resource Instance Stop Accepted', { resource_id: resourceId })
      case 'POST /resource-instance/status': {
        const pods = this.pods.get(resourceId) ?? []
        return ok('Resource Instance Status Retrieved Successfully', { resource_id: resourceId, status: { pods: pods.length === 0 ? null : pods } })
      }
      default:
        return error(`no route ${request.method} ${path}`, 404)
    }
  }

  /** Pods named as a Deployment's are: `{deployment}-{pod-template-hash}-{suffix}`; the template hash follows the values. */
  private startPods(resourceId: string, values: Record<string, unknown>) {
    const template = `${resourceId}-${new Bun.CryptoHasher('sha256').update(JSON.stringify(values)).digest('hex').slice(0, 10)}`
    const existing = this.pods.get(resourceId) ?? []
    if (existing.some((pod) => pod.name.startsWith(`${template}-`))) return // same template: nothing rolls
    const replicas = typeof values.replicaCount === 'number' ? values.replicaCount : 1
    const hold = this.rollout === 'hold'
    const fresh = Array.from({ length: replicas }, () => ({
      name: `${template}-${(this.started++).toString(36).padStart(5, 'x')}`,
      status: hold ? 'Pending' : 'Running',
      message: hold ? 'Containers are not ready' : '',
    }))
    this.pods.set(resourceId, hold ? [...existing.filter((pod) => pod.status === 'Running'), ...fresh] : fresh)
  }
}
