/**
 * Limits before work: what a request body may be, checked before the service spends anything on it.
 *
 * - onRequest, first of all (before authentication: it costs nothing and tells nothing about the
 *   API; a body left unread while the token is looked up is buffered by Bun), on POST, PUT, PATCH
 *   and DELETE: a declared `Content-Length` above MAX_BODY_BYTES → 413 PAYLOAD_TOO_LARGE; a body
 *   that is not `application/json` (UTF-8) → 415 UNSUPPORTED_MEDIA_TYPE — form-urlencoded and
 *   multipart bodies used to create resources on JSON routes.
 * - the parser (it replaces Elysia's for every route; no body is `null`): the bytes are counted as they stream in
 *   (413 past MAX_BODY_BYTES, with or without a Content-Length), decoded as strict UTF-8 (400),
 *   the nesting depth and the values counted without recursion (422 past MAX_JSON_DEPTH or
 *   MAX_JSON_VALUES), then `JSON.parse` (400).
 * - transform (before validation): strings holding NUL or an unpaired surrogate, in the body, the
 *   query or the path → 422 naming each field (they used to reach the database as 500s).
 *
 * Under Bun.serve, `maxRequestBodySize` (src/app.ts) is a second bound behind these: Bun itself
 * refuses a body declared above twice MAX_BODY_BYTES (a bare 413) and stops one streamed past it.
 */
import { Elysia } from 'elysia'
import { AppError, type FieldError, fieldPath, type RequestPart } from '../../lib/errors'
import { BodyTooLargeError, isJsonContentType, mayHoldUnstorable, mediaTypeOf, readBodyCapped, shapeProblem, unstorableStrings } from './json'

export { isJsonContentType, mayHoldUnstorable, nestsDeeperThan, readBodyCapped, shapeProblem, unstorableStrings } from './json'

/** The methods whose routes parse a body (Elysia parses none for GET and HEAD). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export interface LimitsOptions {
  /** MAX_BODY_BYTES. */
  maxBodyBytes: number
  /** MAX_JSON_DEPTH: arrays and objects nested deeper are refused before parsing. */
  maxJsonDepth: number
  /** MAX_JSON_VALUES: a body with more object members and array elements, all together, is refused before parsing. */
  maxJsonValues: number
}

export const tooLarge = (maxBytes: number) =>
  new AppError(413, 'PAYLOAD_TOO_LARGE', `The request body is larger than ${maxBytes} bytes (MAX_BODY_BYTES)`)

const unsupported = (header: string | null) =>
  new AppError(
    415,
    'UNSUPPORTED_MEDIA_TYPE',
    `Send the body as "content-type: application/json" (UTF-8); got ${header === null ? 'no content type' : `"${header.slice(0, 100)}"`}`,
  )

const malformed = (message: string) => new AppError(400, 'MALFORMED_BODY', message)

/** Whether a request carries a body, by its headers (a stream of unknown length counts). */
function carriesBody(request: Request): boolean {
  const length = request.headers.get('content-length')
  if (length !== null) return Number(length) !== 0
  return request.body !== null
}

const UTF8 = new TextDecoder('utf-8', { fatal: true })

/** Bodies whose text holds an escape that may decode to NUL or a surrogate: only these are walked. */
const suspect = new WeakSet<Request>()

export function limitsPlugin(options: LimitsOptions) {
  const { maxBodyBytes, maxJsonDepth, maxJsonValues } = options

  return new Elysia({ name: 'limits' })
    .onRequest(({ request }) => {
      if (!BODY_METHODS.has(request.method)) return
      const length = request.headers.get('content-length')
      if (length !== null && !(Number(length) <= maxBodyBytes)) throw tooLarge(maxBodyBytes)
      const type = request.headers.get('content-type')
      if (carriesBody(request) && !isJsonContentType(type)) throw unsupported(type)
    })
    .onParse({ as: 'global' }, async ({ request }) => {
      // Errors thrown here reach the error handler wrapped in Elysia's ParseError (src/lib/http.ts unwraps them).
      // Always an answer (never undefined, which would hand the body to the next parser): no body is null.
      if (request.body === null) return null
      const type = request.headers.get('content-type')
      let bytes: Uint8Array
      try {
        bytes = await readBodyCapped(request, maxBodyBytes)
      } catch (error) {
        if (error instanceof BodyTooLargeError) throw tooLarge(maxBodyBytes)
        throw error
      }
      // An empty body is no body (null, refused by validation where a body is required).
      if (bytes.byteLength === 0) return null
      if (!isJsonContentType(type)) throw unsupported(mediaTypeOf(type) === '' ? null : type)
      let text: string
      try {
        text = UTF8.decode(bytes)
      } catch {
        throw malformed('The request body is not valid UTF-8')
      }
      const problem = shapeProblem(text, maxJsonDepth, maxJsonValues)
      if (problem) {
        const message =
          problem === 'too-deep'
            ? `Arrays and objects nest deeper than ${maxJsonDepth} levels (MAX_JSON_DEPTH)`
            : `The body holds more than ${maxJsonValues} object members and array elements (MAX_JSON_VALUES)`
        throw new AppError(422, 'VALIDATION_FAILED', 'Request validation failed', [{ path: '/', message }])
      }
      if (mayHoldUnstorable(text)) suspect.add(request)
      try {
        return JSON.parse(text) as unknown
      } catch {
        throw malformed('The request body could not be parsed')
      }
    })
    // Elysia's JSON parser after ours, never reached (ours always answers): @elysiajs/openapi reads the
    // parsers a route has to list its body's content types, and a function alone lists none.
    .on({ as: 'global' }, 'parse', { fn: 'json' } as never)
    .onTransform({ as: 'global' }, ({ request, body, query, params }) => {
      const errors: FieldError[] = []
      const parts: [RequestPart, unknown][] = [
        ['params', params],
        ['query', query],
        // The body's text had no escape that decodes to NUL or a surrogate: nothing to walk.
        ['body', suspect.has(request) ? body : undefined],
      ]
      for (const [part, value] of parts) {
        for (const pointer of unstorableStrings(value, 20 - errors.length)) {
          errors.push({ path: fieldPath(part, pointer), message: 'Must not contain NUL (U+0000) or an unpaired UTF-16 surrogate' })
        }
      }
      if (errors.length > 0) throw new AppError(422, 'VALIDATION_FAILED', 'Request validation failed', errors)
    })
}
