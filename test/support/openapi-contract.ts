/**
 * /docs/json as a contract the whole suite checks: every answer a test gets through
 * `ctx.request` (test/support/context.ts) must have a status that its operation lists under
 * `responses`. A request no route took (404 `ROUTE_NOT_FOUND`) and a path the spec does not document
 * (the docs themselves, /redoc) are not an operation's answer and are not checked.
 */

interface SpecOperation {
  responses?: Record<string, unknown>
}

export interface OpenApiSpec {
  paths: Record<string, Record<string, SpecOperation>>
}

export interface DocumentedOperation {
  /** Upper case, as sent. */
  method: string
  /** The path as /docs/json writes it, e.g. `/api/v1/serve/{serve_name}`. */
  pattern: string
  statuses: ReadonlySet<number>
}

export interface Answer {
  status: number
  body?: unknown
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])

/** The operations of a spec, with a matcher that picks the one a request lands on. */
export class OpenApiContract {
  private readonly operations: (DocumentedOperation & { segments: (string | null)[] })[] = []

  constructor(readonly spec: OpenApiSpec) {
    for (const [pattern, methods] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        if (!HTTP_METHODS.has(method)) continue
        const statuses = new Set(Object.keys(operation.responses ?? {}).map(Number).filter(Number.isInteger))
        const segments = pattern.split('/').map((segment) => (/^\{\w+\}$/.test(segment) ? null : segment))
        this.operations.push({ method: method.toUpperCase(), pattern, statuses, segments })
      }
    }
  }

  /** Every documented operation. */
  all(): DocumentedOperation[] {
    return this.operations.map(({ method, pattern, statuses }) => ({ method, pattern, statuses }))
  }

  /**
   * The operation a request would land on: the patterns matching its path, literal segments
   * preferred over parameters from left to right (as the router does); undefined when none matches.
   */
  operationFor(method: string, path: string): DocumentedOperation | undefined {
    // What the app sees: dot segments resolved, no query.
    const pathname = new URL(path, 'http://localhost').pathname.replace(/(.)\/$/, '$1')
    const segments = pathname.split('/')
    let best: { operation: DocumentedOperation; score: string } | undefined
    for (const operation of this.operations) {
      if (operation.method !== method.toUpperCase() || operation.segments.length !== segments.length) continue
      let score = ''
      let matches = true
      for (const [index, expected] of operation.segments.entries()) {
        const actual = segments[index] ?? ''
        if (expected === null) {
          if (actual === '') matches = false
          score += '0'
        } else if (expected === actual) {
          score += '1'
        } else {
          matches = false
        }
        if (!matches) break
      }
      if (matches && (best === undefined || score > best.score)) best = { operation, score }
    }
    return best?.operation
  }

  /** Why this answer breaks /docs/json, or undefined when its operation lists the status (or it has none). */
  violation(method: string, path: string, answer: Answer): string | undefined {
    const code = (answer.body as { code?: unknown } | undefined)?.code
    if (answer.status === 404 && code === 'ROUTE_NOT_FOUND') return undefined
    const operation = this.operationFor(method, path)
    if (!operation || operation.statuses.has(answer.status)) return undefined
    const listed = [...operation.statuses].sort((a, b) => a - b).join(', ')
    return (
      `${method.toUpperCase()} ${path.slice(0, 200)} answered ${answer.status}${typeof code === 'string' ? ` ${code}` : ''}, ` +
      `which /docs/json does not list for ${operation.method} ${operation.pattern} (it lists ${listed}): ` +
      `add it to the route's errorResponses(...) or fix the answer`
    )
  }
}

/** Thrown by `ctx.request` when an answer's status is not in /docs/json; carries the answer. */
export class UndocumentedStatusError extends Error {
  constructor(
    message: string,
    readonly answer: Answer,
  ) {
    super(message)
    this.name = 'UndocumentedStatusError'
  }
}
