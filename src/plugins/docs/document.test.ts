import { describe, expect, test } from 'bun:test'
import { SCHEMA_NAME } from '../../lib/schema'
import { finishDocument } from './document'

const settings = { base: { openapi: '3.1.2' }, honoursIdempotencyKey: (method: string) => method === 'POST' }
const json = (schema: unknown) => ({ content: { 'application/json': { schema } } })
const operation = (responses: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ operationId: 'doIt', 'x-required-scope': 'read', responses, ...extra })
// The finished document is JSON walked by the assertions below: `any` rather than a cast at every step.
const finish = (operations: Record<string, unknown>) => finishDocument({ paths: { '/things': operations } }, settings) as { paths: Record<string, Record<string, any>>; components: Record<string, any> }

describe('finishDocument', () => {
  test("Elysia's coercing integer is documented as the integer, keeping its bounds", () => {
    const coerced = { minimum: 1, anyOf: [{ format: 'integer', default: 0, type: 'string' }, { minimum: 1, type: 'integer' }] }
    const done = finish({ get: operation({ 200: json({ type: 'object', properties: { id: coerced } }) }) })
    expect(done.paths['/things']!.get.responses['200'].content['application/json'].schema.properties.id).toEqual({ minimum: 1, type: 'integer' })
  })

  test('3.0 nullable goes; a typed schema or null becomes a 3.1 type union; an enum or null stays a union', () => {
    const schema = {
      type: 'object',
      properties: {
        reason: { nullable: true, type: ['string', 'null'] },
        count: { anyOf: [{ type: 'integer' }, { type: 'null' }], description: 'n' },
        state: { anyOf: [{ type: 'string', enum: ['a', 'b'] }, { type: 'null' }] },
      },
    }
    const done = finish({ get: operation({ 200: json(schema) }) })
    const properties = done.paths['/things']!.get.responses['200'].content['application/json'].schema.properties
    expect(properties.reason).toEqual({ type: ['string', 'null'] })
    expect(properties.count).toEqual({ type: ['integer', 'null'], description: 'n' })
    expect(properties.state).toEqual({ anyOf: [{ type: 'string', enum: ['a', 'b'] }, { type: 'null' }] })
  })

  test("named schemas become components; a request's different reading is …Input; a folded nullable is unfolded", () => {
    const answered = { [SCHEMA_NAME]: 'Thing', type: 'object', properties: { kind: { type: 'string', enum: ['x'] } } }
    const requested = { [SCHEMA_NAME]: 'Thing', type: 'object', properties: { kind: { type: 'string', enum: ['x', 'X'] } } }
    const folded = { ...answered, type: ['object', 'null'], description: 'or null' }
    const done = finish({
      post: operation({ 200: json({ type: 'object', properties: { data: answered, other: folded } }) }, { operationId: 'make', requestBody: json(requested) }),
    })
    const post = done.paths['/things']!.post
    expect(post.responses['200'].content['application/json'].schema.properties).toEqual({
      data: { $ref: '#/components/schemas/Thing' },
      other: { description: 'or null', anyOf: [{ $ref: '#/components/schemas/Thing' }, { type: 'null' }] },
    })
    expect(post.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ThingInput' })
    expect(Object.keys(done.components.schemas)).toEqual(['Thing', 'ThingInput'])
  })

  test('two different answers under one name are refused', () => {
    const a = { [SCHEMA_NAME]: 'Thing', type: 'object' }
    const b = { [SCHEMA_NAME]: 'Thing', type: 'string' }
    expect(() => finish({ get: operation({ 200: json({ type: 'object', properties: { a, b } }) }) })).toThrow('Two different schemas are named Thing')
  })

  test('an operation without an operationId is refused', () => {
    expect(() => finish({ get: { responses: {} } })).toThrow('GET /things has no operationId')
  })

  test('error envelopes become the shared response of their status; headers, scope and JSON-only bodies are added', () => {
    const error = { [SCHEMA_NAME]: 'Error', type: 'object', properties: { code: { type: 'string' } } }
    const done = finish({
      post: operation(
        { 201: json({ type: 'object' }), 409: json(error), 503: json(error) },
        { operationId: 'make', 'x-required-scope': 'deploy', requestBody: { content: { 'application/json': { schema: { type: 'object' } }, 'multipart/form-data': { schema: { type: 'object' } } } } },
      ),
    })
    const post = done.paths['/things']!.post
    expect(post.responses['409']).toEqual({ $ref: '#/components/responses/Conflict' })
    expect(Object.keys(post.requestBody.content)).toEqual(['application/json'])
    expect(post.parameters).toEqual([{ $ref: '#/components/parameters/RequestId' }, { $ref: '#/components/parameters/IdempotencyKey' }])
    expect(Object.keys(post.responses['201'].headers)).toEqual(['x-request-id', 'idempotent-replayed'])
    expect(post.description).toContain('`deploy` scope')
    expect(Object.keys(done.components.responses)).toEqual(['Conflict', 'Unavailable'])
    expect(Object.keys(done.components.responses.Conflict.content['application/json'].examples)).toContain('CHANGE_IN_PROGRESS')
    expect(done.components.responses.Unavailable.headers['retry-after']).toEqual({ $ref: '#/components/headers/RetryAfter' })
  })
})
