import { describe, expect, test } from 'bun:test'
import { isJsonContentType, mayHoldUnstorable, nestsDeeperThan, readBodyCapped, shapeProblem, unstorableStrings } from '../../src/plugins/limits'

describe('the flat scan of a JSON text', () => {
  test('depth: a top-level {} is 1; brackets inside strings and escaped quotes do not count', () => {
    expect(nestsDeeperThan('{}', 1)).toBe(false)
    expect(nestsDeeperThan('{"a":[]}', 1)).toBe(true)
    expect(nestsDeeperThan('[[[]]]', 3)).toBe(false)
    expect(nestsDeeperThan('[[[[]]]]', 3)).toBe(true)
    expect(nestsDeeperThan(JSON.stringify({ a: '[[[[[[{{{{' }), 2)).toBe(false)
    expect(nestsDeeperThan(JSON.stringify({ a: 'quote \\" then [[[[' }), 2)).toBe(false)
    expect(nestsDeeperThan(`${'['.repeat(1_000_000)}`, 32)).toBe(true)
  })

  test('values: object members and array elements, all together', () => {
    expect(shapeProblem(JSON.stringify({ a: 1, b: [1, 2, 3] }), 32, 4)).toBeUndefined()
    expect(shapeProblem(JSON.stringify({ a: 1, b: [1, 2, 3, 4] }), 32, 4)).toBe('too-many-values')
    expect(shapeProblem(JSON.stringify({ a: 'x:y,z', b: ['1,2,3'] }), 32, 2)).toBeUndefined()
    expect(shapeProblem(`{${Array.from({ length: 11 }, (_, i) => `"k${i}":0`).join(',')}}`, 32, 10)).toBe('too-many-values')
    expect(shapeProblem('[[[[', 2, 10)).toBe('too-deep')
  })

  test('a text that may decode to NUL or a surrogate has one of their escapes', () => {
    expect(mayHoldUnstorable(JSON.stringify({ a: 'plain 🚀 é' }))).toBe(false)
    expect(mayHoldUnstorable('{"a":"\\u0000"}')).toBe(true)
    expect(mayHoldUnstorable('{"a":"\\uD800"}')).toBe(true)
    expect(mayHoldUnstorable('{"a":"\\udfff"}')).toBe(true)
    expect(mayHoldUnstorable('{"a":"\\u00e9"}')).toBe(false)
  })
})

describe('strings a database cannot store', () => {
  test('NUL and unpaired surrogates, in values and keys, as JSON Pointers; pairs (emoji) are fine', () => {
    expect(unstorableStrings({ a: { 'b/c': ['ok', 'x\u0000'] }, 'k\ud800': 1, d: '\udc00', e: '😀' })).toEqual(['/k\uFFFD', '/d', '/a/b~1c/1'])
    expect(unstorableStrings('\u0000')).toEqual([''])
    expect(unstorableStrings([1, null, true, 'fine'])).toEqual([])
    expect(unstorableStrings(Array.from({ length: 100 }, () => '\u0000'), 3)).toHaveLength(3)
  })
})

describe('the body, read with a cap', () => {
  test('returns the bytes under the cap; throws as soon as it is passed, stream or not', async () => {
    const small = await readBodyCapped(new Request('http://localhost/', { method: 'POST', body: 'hello' }), 5)
    expect(new TextDecoder().decode(small)).toBe('hello')
    await expect(readBodyCapped(new Request('http://localhost/', { method: 'POST', body: 'hello!' }), 5)).rejects.toThrow('larger than 5 bytes')
    let pulled = 0
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++
        controller.enqueue(new Uint8Array(1024))
      },
    })
    await expect(readBodyCapped(new Request('http://localhost/', { method: 'POST', body: endless, duplex: 'half' } as RequestInit), 10_000)).rejects.toThrow('larger than')
    expect(pulled).toBeLessThan(20)
  })

  test('JSON content types: application/json, in any case, with no charset or UTF-8', () => {
    expect(isJsonContentType('application/json')).toBe(true)
    expect(isJsonContentType('Application/JSON; charset="UTF-8"')).toBe(true)
    expect(isJsonContentType('application/json;charset=utf8')).toBe(true)
    expect(isJsonContentType('application/json; charset=iso-8859-1')).toBe(false)
    expect(isJsonContentType('application/x-www-form-urlencoded')).toBe(false)
    expect(isJsonContentType('text/json')).toBe(false)
    expect(isJsonContentType(null)).toBe(false)
  })
})
