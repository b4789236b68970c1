/**
 * /docs/json as a contract the whole suite checks: every answer a test gets through
 * `ctx.request` (test/support/context.ts) must have a status that its operation lists under
 * `responses`, and a JSON body that the schema documented for that status accepts (Ajv, JSON
 * Schema 2020-12 as OpenAPI 3.1 uses it). A request no route took (404 `ROUTE_NOT_FOUND`) and a path the spec does not document
 * (the docs themselves, /redoc) are not an operation's answer and are not checked.
 */

import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020'
import addFormats from 'ajv-formats'

interface SpecOperation {
  responses?: Record<string, unknown>
}

export interface OpenApiSpec {
  paths: Record<string, Record<string, SpecOperation>>
  components?: { responses?: Record<string, unknown> }
}

/** How many answers the suite validated against their documented schema (printed by preload.ts). */
export const conformance = { checked: 0 }

/** Every `#/…` reference made absolute (`openapi#/…`), so a schema taken out of the document still finds its components. */
function anchored(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(anchored)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [key, key === '$ref' && typeof inner === 'string' && inner.startsWith('#/') ? `openapi${inner}` : anchored(inner)]),
  )
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
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true })
  private readonly validators = new Map<string, ValidateFunction | null>()

  constructor(readonly spec: OpenApiSpec) {
    addFormats(this.ajv)
    this.ajv.addSchema(spec as object, 'openapi')
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

  /**
   * Why this JSON answer's body breaks the schema its operation documents for its status, or
   * undefined when it conforms (or nothing is documented: a request no route took, a non-JSON answer).
   */
  nonconformance(method: string, path: string, answer: Answer & { contentType: string | null }): string | undefined {
    const operation = this.operationFor(method, path)
    if (!operation || !operation.statuses.has(answer.status) || !(answer.contentType ?? '').includes('application/json')) return undefined
    const key = `${operation.method} ${operation.pattern} ${answer.status}`
    let validate = this.validators.get(key)
    if (validate === undefined) {
      let response = this.spec.paths[operation.pattern]?.[operation.method.toLowerCase()]?.responses?.[answer.status] as { $ref?: string; content?: Record<string, { schema?: unknown }> } | undefined
      const ref = response?.$ref
      if (ref?.startsWith('#/components/responses/')) response = this.spec.components?.responses?.[ref.slice('#/components/responses/'.length)] as typeof response
      const schema = response?.content?.['application/json']?.schema
      validate = schema === undefined ? null : this.ajv.compile(anchored(schema) as object)
      this.validators.set(key, validate)
    }
    if (validate === null) return undefined
    conformance.checked++
    if (validate(answer.body)) return undefined
    const problems = (validate.errors ?? []).slice(0, 5).map((error) => `${error.instancePath || '/'} ${error.message}`)
    return `${method.toUpperCase()} ${path.slice(0, 200)} answered ${answer.status} with a body that /docs/json's schema for ${key} refuses: ${problems.join('; ')}`
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

/** Thrown by `ctx.request` when an answer's status is not in /docs/json, or its body breaks the schema; carries the answer. */
export class UndocumentedStatusError extends Error {
  constructor(
    message: string,
    readonly answer: Answer,
  ) {
    super(message)
    this.name = 'UndocumentedStatusError'
  }
}
