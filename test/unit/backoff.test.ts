import { expect, test } from 'bun:test'
import { createBackoff } from '../../src/lib/backoff'

test('each failure doubles the pause up to the cap; a success resets it', () => {
  const backoff = createBackoff({ baseMs: 100, maxMs: 1_000 })
  expect(backoff.ready(0)).toBe(true)
  expect([1, 2, 3, 4, 5, 6].map(() => backoff.failed(0))).toEqual([100, 200, 400, 800, 1_000, 1_000])
  expect(backoff.ready(999)).toBe(false)
  expect(backoff.ready(1_000)).toBe(true)
  backoff.succeeded()
  expect(backoff.ready(0)).toBe(true)
  expect(backoff.failed(0)).toBe(100)
})
