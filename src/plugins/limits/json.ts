/**
 * Reading a JSON request body without letting it cost more than a bound: bytes counted while they
 * stream in (never more than `maxBytes` held), strict UTF-8, the nesting depth and the number of
 * values counted in one flat pass over the text before `JSON.parse` sees it — the parser, the
 * validator and everything after them recurse per level (100,000 nested arrays in a 200 KB body used
 * to take 9 s and 930 MB before failing with "Out of memory"), and a wide body is dear too (see
 * shapeProblem). No function here recurses.
 */

export class BodyTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`The request body is larger than ${maxBytes} bytes`)
    this.name = 'BodyTooLargeError'
  }
}

/** Bun.serve's own bound (maxRequestBodySize), met while streaming a body that declared no length. */
const BUN_LIMIT = /maxRequestBodySize/

/** The body's bytes, read as they arrive; throws BodyTooLargeError as soon as there are more than `maxBytes`. */
export async function readBodyCapped(request: Request, maxBytes: number): Promise<Uint8Array> {
  const stream = request.body
  if (stream === null) return new Uint8Array(0)
  const reader = stream.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      total += value.byteLength
      if (total > maxBytes) {
        reader.cancel().catch(() => {})
        throw new BodyTooLargeError(maxBytes)
      }
      chunks.push(value)
    }
  } catch (error) {
    if (error instanceof BodyTooLargeError) throw error
    if (error instanceof Error && BUN_LIMIT.test(error.message)) throw new BodyTooLargeError(maxBytes)
    throw error
  }
  if (chunks.length === 1) return chunks[0] as Uint8Array
  const bytes = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return bytes
}

export type ShapeProblem = 'too-deep' | 'too-many-values'

/**
 * What makes a JSON text too costly to parse and validate, found in one pass with constant memory:
 * arrays and objects nested deeper than `maxDepth` (a top-level `{}` is depth 1), or more than
 * `maxValues` object members and array elements in all. Each is cheap to write and dear to handle:
 * JSON.parse of 80,000 distinct keys takes ~150 ms; a refused body is pretty-printed whole into
 * Elysia's validation message (~150 ms and tens of MB for 500,000 array elements). Strings (with their
 * escapes) are skipped, so brackets, commas and colons inside them do not count. Malformed text is
 * left to JSON.parse: this only counts (an array's first element is not counted, its commas are).
 */
export function shapeProblem(text: string, maxDepth: number, maxValues: number): ShapeProblem | undefined {
  // Whether each open container is an array: no deeper than maxDepth + 1, since deeper returns.
  const isArray: boolean[] = []
  let depth = 0
  let values = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // a backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return 'too-deep'
      isArray[depth] = c === 0x5b
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    } else if (c === 0x3a || (c === 0x2c && isArray[depth] === true)) {
      if (++values > maxValues) return 'too-many-values'
    }
  }
  return undefined
}

/** True when arrays and objects nest deeper than `limit` anywhere in `text`. */
export const nestsDeeperThan = (text: string, limit: number) => shapeProblem(text, limit, Number.POSITIVE_INFINITY) === 'too-deep'

/**
 * Whether a JSON text may decode to a string holding NUL or a surrogate: in text that decoded as
 * strict UTF-8 they can only be written as `\u0000` or `\uD800`–`\uDFFF` escapes. False means the
 * parsed value surely holds neither, and need not be walked.
 */
export const mayHoldUnstorable = (text: string) => text.includes('\\u') && /\\u(?:0000|[dD][89a-fA-F])/.test(text)

/** NUL, or a UTF-16 surrogate without its pair (`"\ud800"` in JSON): neither survives a database or a manifest. */
const UNSTORABLE = /[\u0000\p{Cs}]/u
const UNSTORABLE_ALL = /[\u0000\p{Cs}]/gu

export const isStorableString = (value: string) => !UNSTORABLE.test(value)

const escapePointer = (name: string) => name.replaceAll('~', '~0').replaceAll('/', '~1')

interface Frame {
  value: object
  parent: Frame | undefined
  key: string | number
}

/** The pointer of `key` in `frame`, with what cannot be stored shown as U+FFFD (it is echoed in the answer). */
function pointerOf(frame: Frame | undefined, key: string | number): string {
  const parts = [escapePointer(String(key))]
  for (let f = frame; f?.parent !== undefined; f = f.parent) parts.push(escapePointer(String(f.key)))
  return `/${parts.reverse().join('/')}`.replace(UNSTORABLE_ALL, '\uFFFD')
}

/**
 * JSON Pointers (within `value`) of the strings — values and object keys — holding NUL or an unpaired
 * surrogate; at most `max` of them. Walks with an explicit stack (the depth is bounded by the parser
 * above, but this must not depend on it); a pointer is built only for what is found.
 */
export function unstorableStrings(value: unknown, max = 20): string[] {
  if (typeof value === 'string') return isStorableString(value) ? [] : ['']
  if (value === null || typeof value !== 'object' || max <= 0) return []
  const found: string[] = []
  const stack: Frame[] = [{ value, parent: undefined, key: '' }]
  while (stack.length > 0) {
    const frame = stack.pop() as Frame
    const visit = (child: unknown, key: string | number) => {
      if (typeof child === 'string') {
        if (!isStorableString(child)) found.push(pointerOf(frame, key))
      } else if (child !== null && typeof child === 'object') {
        stack.push({ value: child, parent: frame, key })
      }
    }
    if (Array.isArray(frame.value)) {
      for (let i = 0; i < frame.value.length && found.length < max; i++) visit(frame.value[i], i)
    } else {
      for (const key in frame.value) {
        if (found.length >= max) break
        if (!Object.hasOwn(frame.value, key)) continue
        if (!isStorableString(key)) found.push(pointerOf(frame, key))
        else visit((frame.value as Record<string, unknown>)[key], key)
      }
    }
    if (found.length >= max) break
  }
  return found
}

/** The media type of a Content-Type header, lower case, without parameters; '' when absent. */
export function mediaTypeOf(header: string | null): string {
  if (header === null) return ''
  const semicolon = header.indexOf(';')
  return (semicolon === -1 ? header : header.slice(0, semicolon)).trim().toLowerCase()
}

/** `application/json`, with no charset or `charset=utf-8` (RFC 8259: JSON exchanged between systems is UTF-8). */
export function isJsonContentType(header: string | null): boolean {
  if (mediaTypeOf(header) !== 'application/json') return false
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(header ?? '')
  return charset === null || charset[1]?.toLowerCase() === 'utf-8' || charset[1]?.toLowerCase() === 'utf8'
}
