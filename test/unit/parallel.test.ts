import { describe, expect, test } from 'bun:test'
import { allInOrder } from '../../src/lib/parallel'

const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms))
const failAfter = (ms: number, message: string) => new Promise<never>((_, reject) => setTimeout(() => reject(new Error(message)), ms))

describe('allInOrder', () => {
  test('answers every value, in argument order', async () => {
    expect(await allInOrder([after(20, 'serve'), after(1, 42), Promise.resolve(null)])).toEqual(['serve', 42, null])
  })

  test("throws the first argument's failure, even when a later one failed sooner", async () => {
    const started = [failAfter(30, 'serve not found'), failAfter(1, 'environment not found'), after(5, 'ok')] as const
    await expect(allInOrder(started)).rejects.toThrow('serve not found')
  })

  test('waits for every read before answering a failure (none is left running unobserved)', async () => {
    let finished = false
    const slow = after(20, 'x').then((value) => {
      finished = true
      return value
    })
    await expect(allInOrder([failAfter(1, 'first'), slow])).rejects.toThrow('first')
    expect(finished).toBe(true)
  })
})
