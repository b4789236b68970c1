import { expect, test } from 'bun:test'
import { DrizzleQueryError } from 'drizzle-orm/errors'
import { describeError } from '../../src/lib/logger'

test("a failed query's parameters never reach a log line: only its cause is described", () => {
  const cause = Object.assign(new Error('Duplicate entry'), { code: 'ER_DUP_ENTRY' })
  const error = new DrizzleQueryError('insert into api_tokens values (?)', ['secret-token-hash'], cause)
  const described = JSON.stringify(describeError(error))
  expect(described).not.toContain('secret-token-hash')
  expect(describeError(error)).toEqual({ error: 'Error', error_message: 'Duplicate entry', error_code: 'ER_DUP_ENTRY' })
})
