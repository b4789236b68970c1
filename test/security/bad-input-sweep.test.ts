/**
 * A bad-input sweep over every operation in /docs/json: hostile path segments, wrong types, missing
 * and extra fields, malformed JSON, huge strings, unicode, SQL and YAML metacharacters. Never a 5xx,
 * every answer's status one its operation lists in /docs/json, and no resource table changes (the audit log, which records refused attempts, and the idempotency keys are left out;
 * so are the leases: POST /api/v1/scaling/tick takes no input, so every call to it is valid and ticks).
 */
import { describe, expect, test } from 'bun:test'
import { createTestContext } from '../support/context'
import { environmentBody } from '../support/fixtures'
import { resourceTableChecksums } from '../support/sweep'

const ctx = await createTestContext()
await ctx.request('POST', '/api/v1/environment', environmentBody('prod'))

interface JsonSchema {
  type?: string | string[]
  properties?: Record<string, JsonSchema>
  required?: string[]
  items?: JsonSchema
  anyOf?: JsonSchema[]
}
interface Operation {
  parameters?: { in: string; name: string; schema?: JsonSchema }[]
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> }
}

const HOSTILE_STRINGS = [
  '..',
  '../../etc/passwd',
  '%2e%2e%2f',
  'a%00b',
  "' OR '1'='1' -- ",
  '"; DROP TABLE environments; --',
  '{{ .Values.secret }}',
  '*anchor',
  '&anchor x',
  '!!python/object:os.system',
  'key: value\nother: [1, 2',
  'ünïcødé-🚀',
  '\u202e\u0000',
  'x'.repeat(10_000),
  '',
  ' ',
]
const WRONG_VALUES: unknown[] = [null, 12345, -1, 1.5, true, [], {}, ['a'], 'x'.repeat(70_000)]

/** Malformed JSON (a string body is sent as is, as application/json). */
const MALFORMED = ['text', '{"name": ', '{"a": 1,}', '\u0000']

/** Variants of a body, each invalid somewhere: wrong root types, malformed JSON, each field removed or replaced. */
function badBodies(schema: JsonSchema | undefined): unknown[] {
  const bodies: unknown[] = [undefined, null, [], ...MALFORMED, 42, { unexpected_field: true }]
  if (!schema?.properties) return bodies
  const fields = Object.keys(schema.properties)
  const base: Record<string, unknown> = Object.fromEntries(fields.map((f) => [f, 'x']))
  for (const field of fields) {
    const { [field]: _removed, ...without } = base
    bodies.push(without)
    for (const value of [...WRONG_VALUES, ...HOSTILE_STRINGS.slice(0, 8)]) bodies.push({ ...base, [field]: value, unexpected_field: 1 })
  }
  return bodies
}

const spec = (await ctx.request('GET', '/docs/json')).body as { paths: Record<string, Record<string, Operation>> }


describe('bad-input sweep over every documented operation', () => {
  test('no 5xx, no status /docs/json does not list, and no change to any resource table', async () => {
    const before = await resourceTableChecksums(ctx)
    let sent = 0
    const serverErrors: string[] = []
    const undocumented: string[] = []
    for (const [path, methods] of Object.entries(spec.paths)) {
      if (!path.startsWith('/api/')) continue
      for (const [method, operation] of Object.entries(methods)) {
        const pathParams = (operation.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name)
        const queryParams = (operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name)
        const schema = operation.requestBody?.content?.['application/json']?.schema
        const fill = (value: string) => pathParams.reduce((p, name) => p.replace(`{${name}}`, encodeURIComponent(value)), path)
        // A real resource too, with bad bodies — except for DELETE, where that would be a valid call.
        const segments = HOSTILE_STRINGS.filter((s) => s !== '').concat(method === 'delete' ? [] : ['prod'])
        const targets = pathParams.length > 0 ? segments.map(fill) : [path]
        // Every non-GET route parses a body it is sent, a schema or not: DELETE gets malformed ones too.
        const bodies = method === 'get' ? [undefined] : method === 'delete' ? [undefined, ...MALFORMED] : badBodies(schema)
        for (const target of targets) {
          for (const body of bodies) {
            const query = queryParams.length > 0 ? `?${queryParams.map((q) => `${q}=${encodeURIComponent("'\u0000{{")}`).join('&')}` : ''
            const response = await ctx.requestUnchecked(method.toUpperCase(), `${target}${query}`, body)
            sent++
            const problem = await ctx.undocumentedStatus(method, `${target}${query}`, response)
            if (problem) undocumented.push(problem.slice(0, 400))
            if (response.status >= 500) serverErrors.push(`${method.toUpperCase()} ${target.slice(0, 80)} → ${response.status} ${JSON.stringify(response.body).slice(0, 200)}`)
          }
        }
      }
    }
    console.log(
      `bad-input sweep: ${sent} requests over ${Object.keys(spec.paths).length} paths, ${serverErrors.length} 5xx, ${undocumented.length} statuses not in /docs/json`,
    )
    expect(serverErrors).toEqual([])
    expect(undocumented).toEqual([])
    expect(await resourceTableChecksums(ctx)).toEqual(before)
    expect(sent).toBeGreaterThan(500)
  }, 300_000)
})
