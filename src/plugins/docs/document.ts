/**
 * /docs/json: the OpenAPI 3.1 document, finished from what @elysiajs/openapi generates from the
 * routes' TypeBox schemas. The generator writes Elysia's coercing numbers as "string or integer",
 * adds 3.0's `nullable` to 3.1 type unions, repeats every schema inline and knows nothing of what
 * the plugins do (error envelope, headers, scopes). This module turns that into the document a client
 * generator needs: plain integers, 3.1 nullables, named schemas in `components`, one error schema
 * with its enum of codes, every header the API reads or writes, the scope each operation needs.
 * Checked by test/contract (Redocly's and Spectral's rulesets, a generated client, and every answer of
 * the API suite validated against it).
 */
import { ERROR_CODES, type ErrorCode } from '../../lib/errors'
import { YAML_ANSWER } from '../../lib/http'
import { SCHEMA_NAME } from '../../lib/schema'
import { SCOPE_KEY } from '../auth/scopes'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

/** What the generator hands over (its types are 3.0's; the shape is all that is used here). */
export interface GeneratedDocument {
  paths: Record<string, unknown>
  components?: { schemas?: Record<string, unknown> }
}

export interface DocumentSettings {
  /** Everything but paths and components: openapi, info, tags, security, servers. */
  base: JsonObject
  /** Whether an operation honours the Idempotency-Key header (src/plugins/idempotency). */
  honoursIdempotencyKey(method: string, path: string): boolean
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'patch'])

const isObject = (value: Json | undefined): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value)

/** Elysia's `t.Integer()`/`t.Numeric()` accept a numeric string too (query coercion); it is documented as its one branch: the number. */
function coercedNumber(schema: JsonObject): JsonObject | undefined {
  const branches = schema.anyOf
  if (!Array.isArray(branches) || branches.length !== 2) return undefined
  const [text, number] = branches
  if (!isObject(text) || !isObject(number)) return undefined
  const isCoercingString = text.type === 'string' && (text.format === 'integer' || text.format === 'numeric')
  if (!isCoercingString || (number.type !== 'integer' && number.type !== 'number')) return undefined
  const { anyOf: _, ...outer } = schema
  return { ...outer, ...number }
}

/** Keywords whose value is data (an example, a default), not a schema: left as they are. */
const VALUE_KEYWORDS = new Set(['examples', 'example', 'default', 'const', 'enum'])
/** Keywords whose value maps names (which may be anything, `default` too) to schemas or objects. */
const NAME_MAPS = new Set(['properties', 'patternProperties', 'content', 'responses', 'headers'])

/**
 * One schema, bottom-up: coercing numbers become numbers; `nullable` (3.0) goes, and a union of one
 * typed schema and null becomes a 3.1 type union; `t.Record`'s catch-all pattern becomes
 * `additionalProperties`; named schemas are moved into `named` and replaced by a `$ref`.
 */
function finishSchema(node: Json, named: NamedSchemas): Json {
  if (Array.isArray(node)) return node.map((item) => finishSchema(item, named))
  if (!isObject(node)) return node
  let schema: JsonObject = {}
  for (const [key, value] of Object.entries(node)) {
    if (VALUE_KEYWORDS.has(key)) schema[key] = value
    else if (NAME_MAPS.has(key) && isObject(value)) schema[key] = Object.fromEntries(Object.entries(value).map(([name, inner]) => [name, finishSchema(inner, named)]))
    else schema[key] = finishSchema(value, named)
  }
  schema = coercedNumber(schema) ?? schema
  delete schema.nullable
  schema = nullableUnion(schema)
  const patterns = schema.patternProperties
  if (isObject(patterns) && Object.keys(patterns).length === 1 && '^(.*)$' in patterns) {
    delete schema.patternProperties
    schema.additionalProperties = patterns['^(.*)$'] ?? {}
  }
  const name = schema[SCHEMA_NAME]
  if (typeof name !== 'string') return schema
  delete schema[SCHEMA_NAME]
  // The generator folds `t.Union([named, t.Null()], {description})` into the named schema itself
  // (`type: [T, 'null']`, the union's description): unfolded, so that the component stays one thing.
  const { type } = schema
  if (Array.isArray(type) && type.length === 2 && type.includes('null')) {
    const { description, ...rest } = schema
    const ref = { $ref: `#/components/schemas/${named.add(name, { ...rest, type: type.find((each) => each !== 'null') ?? 'object' })}` }
    return { ...(description === undefined ? {} : { description }), anyOf: [ref, { type: 'null' }] }
  }
  return { $ref: `#/components/schemas/${named.add(name, schema)}` }
}

/**
 * The named schemas. A schema may read differently in a request and in an answer (an enum that also
 * takes aliases in answers only its canonical value): the answer's form has the name, the request's
 * gets `…Input` — one schema when both read the same. Answers are finished first, so that a request's
 * schema always finds the answer's form to compare with.
 */
class NamedSchemas {
  constructor(
    private readonly schemas: Map<string, JsonObject>,
    private readonly direction: 'input' | 'output',
  ) {}

  /** Records `schema` as `name` and returns its key in components.schemas. */
  add(name: string, schema: JsonObject): string {
    const same = (key: string) => JSON.stringify(this.schemas.get(key)) === JSON.stringify(schema)
    let key = name
    if (this.direction === 'input' && this.schemas.has(name) && !same(name)) key = `${name}Input`
    if (this.schemas.has(key) && !same(key)) throw new Error(`Two different schemas are named ${key}`)
    this.schemas.set(key, schema)
    return key
  }
}

/** `anyOf: [{type: T, …}, {type: 'null'}]` → `{type: [T, 'null'], …}` where that says the same. */
function nullableUnion(schema: JsonObject): JsonObject {
  const branches = schema.anyOf
  if (!Array.isArray(branches) || branches.length !== 2) return schema
  const nullIndex = branches.findIndex((branch) => isObject(branch) && branch.type === 'null' && Object.keys(branch).length === 1)
  if (nullIndex < 0) return schema
  const other = branches[1 - nullIndex]
  // Only a plain typed schema folds: an enum, a const or a $ref would then refuse null.
  if (!isObject(other) || typeof other.type !== 'string' || 'enum' in other || 'const' in other || '$ref' in other) return schema
  const { anyOf: _, ...outer } = schema
  return { ...other, ...outer, type: [other.type, 'null'] }
}

/** An example error envelope for a code. */
function errorExample(code: ErrorCode): JsonObject {
  const { description } = ERROR_CODES[code]
  const example: JsonObject = { status: 'ERROR', code, message: description, request_id: '7f1c0d7e-3a5b-4a55-9f43-5e2f3c8d1a10' }
  if (code === 'VALIDATION_FAILED') example.errors = [{ path: '/name', message: 'Expected string to match pattern' }]
  return example
}

/** The reusable error responses, one per status, named as the components' keys. */
const ERROR_RESPONSES: Record<number, { name: string; title: string }> = {
  400: { name: 'MalformedBody', title: 'The body could not be parsed' },
  401: { name: 'Unauthenticated', title: 'A bearer token is missing or invalid' },
  403: { name: 'Forbidden', title: "The token lacks the operation's scope" },
  404: { name: 'NotFound', title: 'Not found' },
  409: { name: 'Conflict', title: 'Conflicts with the current state' },
  413: { name: 'PayloadTooLarge', title: 'The body is too large' },
  415: { name: 'UnsupportedMediaType', title: 'The body is not JSON' },
  422: { name: 'Unprocessable', title: 'The request is invalid' },
  429: { name: 'RateLimited', title: 'Too many changes; retry after Retry-After seconds' },
  500: { name: 'InternalError', title: 'Internal error' },
  502: { name: 'DependencyFailed', title: 'A dependency (cluster, Artifact Builder, MLflow) failed' },
  503: { name: 'Unavailable', title: 'The database or the cluster is unavailable' },
  504: { name: 'RolloutTimeout', title: 'The rollout had not ended when ?wait= ran out' },
}

/** The schema of a response's JSON body, if it has one. */
function jsonSchemaOf(response: JsonObject): Json | undefined {
  const json = isObject(response.content) ? response.content['application/json'] : undefined
  return isObject(json) ? json.schema : undefined
}

/** The component a schema refers to (`Environment` for `#/components/schemas/Environment`). */
const refName = (schema: Json | undefined) => (isObject(schema) && typeof schema.$ref === 'string' ? schema.$ref.split('/').pop() : undefined)

/**
 * A success answer's description, from what its envelope carries: `201 Created: a Revision`,
 * `200: a page of Environment`; else the operation's summary.
 */
function describeAnswer(code: number, response: JsonObject, summary: string): string {
  const schema = jsonSchemaOf(response)
  const properties = isObject(schema) && isObject(schema.properties) ? schema.properties : {}
  const data = properties.data
  const item = isObject(data) ? refName(data.items) : undefined
  const what = refName(data) ? `one \`${refName(data)}\`` : item ? `${properties.pagination ? 'a page of' : 'a list of'} \`${item}\`` : undefined
  const prefix = code === 201 ? 'Created' : 'OK'
  return what ? `${prefix}: \`data\` is ${what}` : `${prefix}: ${summary}`
}

function errorResponseComponent(status: number, title: string): JsonObject {
  const codes = (Object.keys(ERROR_CODES) as ErrorCode[]).filter((code) => ERROR_CODES[code].status === status)
  const headers: JsonObject = { 'x-request-id': { $ref: '#/components/headers/RequestId' } }
  if (status === 429 || status === 503) headers['retry-after'] = { $ref: '#/components/headers/RetryAfter' }
  return {
    description: `${title}. \`code\`: ${codes.map((code) => `\`${code}\` (${ERROR_CODES[code].description})`).join('; ')}`,
    headers,
    content: {
      'application/json': {
        schema: { $ref: '#/components/schemas/Error' },
        examples: Object.fromEntries(codes.map((code) => [code, { summary: ERROR_CODES[code].description, value: errorExample(code) }])),
      },
    },
  }
}

const COMPONENT_HEADERS: JsonObject = {
  RequestId: { description: "The request's id: the caller's `x-request-id` when it is 1–128 of `A-Za-z0-9._-`, else a new UUID; in every log line of the request", schema: { type: 'string' } },
  RetryAfter: { description: 'Seconds to wait before retrying', schema: { type: 'integer', minimum: 0 } },
  IdempotentReplayed: { description: '`true` when this is the stored answer of an earlier request with the same Idempotency-Key', schema: { type: 'string', enum: ['true'] } },
}

const COMPONENT_PARAMETERS: JsonObject = {
  RequestId: {
    name: 'x-request-id',
    in: 'header',
    required: false,
    description: 'Your id for this request (1–128 of `A-Za-z0-9._-`), echoed in the `x-request-id` response header and the logs',
    schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,128}$' },
  },
  IdempotencyKey: {
    name: 'Idempotency-Key',
    in: 'header',
    required: false,
    description:
      'Makes a retry safe: a repeat with the same key and body within the retention gets the stored answer (header `idempotent-replayed: true`) instead of running again; the same key with another body is 422 IDEMPOTENCY_KEY_REUSED, a repeat while the first still runs 409 IDEMPOTENCY_IN_PROGRESS',
    schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
  },
}

/** Whether a generated response is the error envelope (named `Error` by src/lib/http.ts). */
function answersError(response: JsonObject): boolean {
  const schema = jsonSchemaOf(response)
  return isObject(schema) && schema.$ref === '#/components/schemas/Error'
}

function scopeLine(scope: Json | undefined): string {
  if (scope === 'public') return 'Open: no token needed.'
  if (scope === 'admin') return 'Needs a token with the `admin` scope.'
  if (scope === 'read') return 'Needs a token with the `read` scope (`write`, `deploy` and `admin` grant it too).'
  return `Needs a token with the \`${String(scope)}\` scope (\`admin\` grants it too).`
}

/** `source`'s responses are finished already (see finishDocument); the rest is finished here. */
function finishOperation(method: string, path: string, source: JsonObject, input: NamedSchemas, settings: DocumentSettings): JsonObject {
  const { responses: finishedResponses, ...request } = source
  const operation = finishSchema(request, input) as JsonObject
  if (typeof operation.operationId !== 'string') throw new Error(`${method.toUpperCase()} ${path} has no operationId`)
  const scope = operation[SCOPE_KEY]
  operation.description = typeof operation.description === 'string' ? `${operation.description}\n\n${scopeLine(scope)}` : scopeLine(scope)

  const parameters = Array.isArray(operation.parameters) ? operation.parameters : []
  parameters.push({ $ref: '#/components/parameters/RequestId' })
  const idempotent = settings.honoursIdempotencyKey(method.toUpperCase(), path)
  if (idempotent) parameters.push({ $ref: '#/components/parameters/IdempotencyKey' })
  operation.parameters = parameters

  // Bodies are JSON only (src/plugins/limits answers 415 to anything else).
  const body = operation.requestBody
  if (isObject(body) && isObject(body.content)) body.content = { 'application/json': body.content['application/json'] ?? { schema: {} } }

  const responses: JsonObject = {}
  for (const [status, response] of Object.entries(isObject(finishedResponses) ? finishedResponses : {})) {
    const code = Number(status)
    if (!isObject(response)) continue
    const error = ERROR_RESPONSES[code]
    if (error && answersError(response)) {
      responses[status] = { $ref: `#/components/responses/${error.name}` }
      continue
    }
    const yaml = operation[YAML_ANSWER]
    if (code === 200 && typeof yaml === 'string' && isObject(response.content)) response.content['application/yaml'] = { schema: { type: 'string', description: yaml } }
    const headers: JsonObject = { 'x-request-id': { $ref: '#/components/headers/RequestId' } }
    if (isObject(response.headers)) Object.assign(headers, response.headers)
    if (idempotent) headers['idempotent-replayed'] = { $ref: '#/components/headers/IdempotentReplayed' }
    if (code === 503) headers['retry-after'] = { $ref: '#/components/headers/RetryAfter' }
    const given = response.description
    const description = typeof given === 'string' && !given.startsWith('Response for status') ? given : describeAnswer(code, response, String(operation.summary ?? operation.operationId))
    // A header's description belongs on the header (the generator leaves it in its schema).
    for (const header of Object.values(isObject(response.headers) ? response.headers : {})) {
      if (isObject(header) && isObject(header.schema) && typeof header.schema.description === 'string' && header.description === undefined) {
        const { description: headerDescription, ...schema } = header.schema
        header.description = headerDescription
        header.schema = schema
      }
    }
    responses[status] = { ...response, description, headers }
  }
  operation.responses = responses
  delete operation[YAML_ANSWER]
  return operation
}

/** The finished document (see the module's comment). Throws on an operation without an operationId. */
export function finishDocument(generated: GeneratedDocument, settings: DocumentSettings): JsonObject {
  const schemas = new Map<string, JsonObject>()
  const named = { input: new NamedSchemas(schemas, 'input'), output: new NamedSchemas(schemas, 'output') }
  const operations: { path: string; method: string; source: JsonObject }[] = []
  for (const [path, item] of Object.entries(generated.paths) as [string, Json][]) {
    if (!isObject(item)) continue
    for (const [method, operation] of Object.entries(item)) if (HTTP_METHODS.has(method) && isObject(operation)) operations.push({ path, method, source: operation })
  }
  // Every answer's schemas first (see NamedSchemas).
  for (const operation of operations) operation.source = { ...operation.source, responses: finishSchema(operation.source.responses ?? {}, named.output) }
  const paths: JsonObject = {}
  for (const { path, method, source } of operations) {
    const item = isObject(paths[path]) ? paths[path] : (paths[path] = {})
    item[method] = finishOperation(method, path, source, named.input, settings)
  }
  const usedStatuses = new Set(
    Object.values(paths).flatMap((item) =>
      Object.values(item as JsonObject).flatMap((operation) => (isObject(operation) && isObject(operation.responses) ? Object.keys(operation.responses).map(Number) : [])),
    ),
  )
  const responses = Object.fromEntries(
    Object.entries(ERROR_RESPONSES)
      .filter(([status]) => usedStatuses.has(Number(status)))
      .map(([status, { name, title }]) => [name, errorResponseComponent(Number(status), title)]),
  )
  const base = settings.base
  const baseComponents = isObject(base.components) ? base.components : {}
  return {
    ...base,
    paths,
    components: {
      ...baseComponents,
      schemas: Object.fromEntries([...schemas].sort(([a], [b]) => a.localeCompare(b))),
      responses,
      parameters: COMPONENT_PARAMETERS,
      headers: COMPONENT_HEADERS,
    },
  }
}
