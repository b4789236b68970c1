/**
 * Reading a JSON request body without letting it cost more than a bound: bytes counted while they
 * stream in (never more than `maxBytes` held), strict UTF-8, the nesting depth counted in one flat
 * pass over the text before `JSON.parse` sees it — the parser, the validator and everything after
 * them recurse per level, and 100,000 nested arrays in a 200 KB body used to take 9 s and 930 MB
 * before failing with "Out of memory". No function here recurses.
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

/**
 * True when arrays and objects nest deeper than `limit` anywhere in `text` (a top-level `{}` is depth
 * 1). One pass, constant memory; strings (with their escapes) are skipped, so brackets inside them do
 * not count. Malformed text is left to JSON.parse: this only counts.
 */
export function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // a backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return false
}

/** NUL, or a UTF-16 surrogate without its pair (`"\ud800"` in JSON): neither survives a database or a manifest. */
const UNSTORABLE = /[\u0000\p{Cs}]/u

export const isStorableString = (value: string) => !UNSTORABLE.test(value)

const escapePointer = (name: string) => name.replaceAll('~', '~0').replaceAll('/', '~1')

/**
 * JSON Pointers (within `value`) of the strings — values and object keys — holding NUL or an unpaired
 * surrogate; at most `max` of them. Walks with an explicit stack (the depth is bounded by the parser
 * above, but this must not depend on it).
 */
export function unstorableStrings(value: unknown, max = 20): string[] {
  const found: string[] = []
  const stack: [unknown, string][] = [[value, '']]
  while (stack.length > 0 && found.length < max) {
    const [current, pointer] = stack.pop() as [unknown, string]
    if (typeof current === 'string') {
      if (!isStorableString(current)) found.push(pointer)
    } else if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) stack.push([current[i], `${pointer}/${i}`])
    } else if (current !== null && typeof current === 'object') {
      const entries = Object.entries(current as Record<string, unknown>)
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i] as [string, unknown]
        const childPointer = `${pointer}/${escapePointer(key)}`
        if (!isStorableString(key)) found.push(childPointer)
        else stack.push([child, childPointer])
      }
    }
  }
  return found.slice(0, max)
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
