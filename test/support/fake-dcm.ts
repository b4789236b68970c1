/**
 * A fake DCM (Darwin Cluster Manager) on 127.0.0.1 speaking the original's contract
 * (`/resource-instance/…`, see ORIGINAL.md): it keeps registered resources and their values, records
 * every request, and can be told to fail or be slow.
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

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value)

function deepMerge(target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const result = { ...target }
  for (const [key, value] of Object.entries(patch)) {
    const current = result[key]
    result[key] = isObject(current) && isObject(value) ? deepMerge(current, value) : value
  }
  return result
}

export class FakeDcm {
  readonly requests: DcmRequest[] = []
  /** By artifact_id. */
  readonly artifacts = new Map<string, Registered>()
  /** By resource_id: the status DCM reports for a started resource. */
  readonly running = new Map<string, string>()
  private failures: { path?: string; status: number; message: string; times: number }[] = []
  private delayMs = 0
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

  failNext(failure: { path?: string; status: number; message: string; times?: number }): void {
    this.failures.push({ ...failure, times: failure.times ?? 1 })
  }

  setDelay(ms: number): void {
    this.delayMs = ms
  }

  private async handle(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname
    const body = (await request.json().catch(() => ({}))) as Record<string, unknown>
    this.requests.push({ method: request.method, path, body })
    if (this.delayMs > 0) await Bun.sleep(this.delayMs)
    const failure = this.failures.find((f) => !f.path || f.path === path)
    if (failure) {
      if (--failure.times <= 0) this.failures = this.failures.filter((f) => f !== failure)
      return Response.json({ message: failure.message }, { status: failure.status })
    }
    const artifactId = String(body.artifact_id ?? '')
    const resourceId = String(body.resource_id ?? '')
    switch (`${request.method} ${path}`) {
      case 'POST /resource-instance/':
        if (this.artifacts.has(artifactId)) return Response.json({ message: `artifact ${artifactId} already exists` }, { status: 409 })
        this.artifacts.set(artifactId, { darwin_resource: String(body.darwin_resource), version: String(body.version), values: body.values as Record<string, unknown> })
        return Response.json({ data: { artifact_id: artifactId } }, { status: 201 })
      case 'PATCH /resource-instance/values': {
        const artifact = this.artifacts.get(artifactId)
        if (!artifact) return Response.json({ message: `artifact ${artifactId} not found` }, { status: 404 })
        artifact.values = deepMerge(artifact.values, body.values as Record<string, unknown>)
        return Response.json({ data: { artifact_id: artifactId } })
      }
      case 'POST /resource-instance/start':
        if (!this.artifacts.has(artifactId)) return Response.json({ message: `artifact ${artifactId} not found` }, { status: 404 })
        this.running.set(resourceId, 'running')
        return Response.json({ data: { resource_id: resourceId } })
      case 'POST /resource-instance/stop':
        if (!this.running.delete(resourceId)) return Response.json({ message: `resource ${resourceId} not found` }, { status: 404 })
        return Response.json({ data: { resource_id: resourceId } })
      case 'POST /resource-instance/status': {
        const status = this.running.get(resourceId)
        if (!status) return Response.json({ message: `resource ${resourceId} not found` }, { status: 404 })
        return Response.json({ data: { status } })
      }
      default:
        return Response.json({ message: `no route ${request.method} ${path}` }, { status: 404 })
    }
  }
}
