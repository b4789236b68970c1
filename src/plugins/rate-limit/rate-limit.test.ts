import { describe, expect, test } from 'bun:test'
import { createTestContext } from '../../../test/support/context'
import { loadConfig } from '../../config'
import { clientAddress, WindowCounter } from '.'

describe('rate limits — the counter', () => {
  test('counts per key in fixed windows, and starts a key over once its window has ended', () => {
    let now = 1_000
    const counter = new WindowCounter(60_000, 100, () => now)
    expect([counter.hit('a').count, counter.hit('a').count, counter.hit('b').count]).toEqual([1, 2, 1])
    expect(counter.hit('a').resetAt).toBe(61_000)
    now = 61_000
    expect(counter.hit('a')).toEqual({ count: 1, resetAt: 121_000 })
  })

  test('holds at most maxKeys: ended windows go first, then the oldest', () => {
    let now = 0
    const counter = new WindowCounter(1_000, 10, () => now)
    for (let i = 0; i < 10; i++) counter.hit(`old-${i}`)
    now = 2_000
    counter.hit('new')
    expect(counter.size).toBe(1)
    for (let i = 0; i < 20; i++) counter.hit(`live-${i}`)
    expect(counter.size).toBeLessThanOrEqual(10)
    expect(counter.hit('live-19').count).toBe(2)
  })

  test('the client address: the socket, or the entry the trusted proxies appended', () => {
    const request = new Request('http://localhost/', { headers: { 'x-forwarded-for': 'spoofed, 203.0.113.7, 10.0.0.2' } })
    expect(clientAddress(request, '10.0.0.9', 0)).toBe('10.0.0.9')
    expect(clientAddress(request, '10.0.0.9', 1)).toBe('10.0.0.2')
    expect(clientAddress(request, '10.0.0.9', 2)).toBe('203.0.113.7')
    expect(clientAddress(new Request('http://localhost/'), undefined, 1)).toBe('unknown')
  })

  test('configuration: on by default, off with ENV=test (the suite), 0 turns one off, bad values stop the process', () => {
    expect(loadConfig({ ENV: 'prod' }).rateLimit).toEqual({ windowSeconds: 60, perToken: 120, perIp: 600, trustedProxyHops: 0 })
    expect(loadConfig({ ENV: 'test' }).rateLimit).toMatchObject({ perToken: 0, perIp: 0 })
    expect(loadConfig({ ENV: 'prod', RATE_LIMIT_PER_IP: '0' }).rateLimit.perIp).toBe(0)
    expect(() => loadConfig({ RATE_LIMIT_PER_TOKEN: '-1' })).toThrow('RATE_LIMIT_PER_TOKEN')
    expect(() => loadConfig({ TRUSTED_PROXY_HOPS: '11' })).toThrow('TRUSTED_PROXY_HOPS')
    expect(() => loadConfig({ MAX_BODY_BYTES: '10' })).toThrow('MAX_BODY_BYTES')
    expect(loadConfig({}).limits).toEqual({ maxBodyBytes: 1_048_576, maxJsonDepth: 32, maxJsonValues: 10_000 })
  })
})

const ctx = await createTestContext({ RATE_LIMIT_PER_TOKEN: '3', RATE_LIMIT_WINDOW_SECONDS: '60' })
const perIp = await createTestContext({ RATE_LIMIT_PER_IP: '2', TRUSTED_PROXY_HOPS: '1' })

describe('rate limits — per token', () => {
  test('past the limit: 429 RATE_LIMITED with Retry-After, before the body is parsed; reads and other tokens go on', async () => {
    const other = await ctx.createToken(['read', 'deploy'])
    for (let i = 0; i < 2; i++) expect((await ctx.request('POST', '/api/v1/scaling/tick')).status).toBe(200)
    // The admin token created a token above: that was its first change of this window.
    const limited = await ctx.request('POST', '/api/v1/scaling/tick')
    expect(limited.status).toBe(429)
    expect(limited.body).toMatchObject({ status: 'ERROR', code: 'RATE_LIMITED', request_id: expect.any(String) })
    const retryAfter = Number(limited.headers.get('retry-after'))
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(60)
    // Refused before parsing: a malformed body is not even read.
    expect((await ctx.request('POST', '/api/v1/environment', '{"broken": ', { 'content-type': 'application/json' })).status).toBe(429)
    expect((await ctx.request('GET', '/api/v1/environment')).status).toBe(200)
    expect((await ctx.request('POST', '/api/v1/scaling/tick', undefined, { authorization: `Bearer ${other}` })).status).toBe(200)
    // Counted, not audited: a flood of refusals writes nothing.
    await Bun.sleep(50)
    expect(await ctx.query("select id from audit_log where status_code = 429")).toEqual([])
  })
})

describe('rate limits — per client address', () => {
  test('counted per address whatever the token; another address goes on', async () => {
    const second = await perIp.createToken(['read', 'deploy'])
    const from = (address: string, token = perIp.adminToken) => perIp.request('POST', '/api/v1/scaling/tick', undefined, { authorization: `Bearer ${token}`, 'x-forwarded-for': address })
    expect((await from('198.51.100.1')).status).toBe(200)
    expect((await from('198.51.100.1', second)).status).toBe(200)
    const limited = await from('198.51.100.1', second)
    expect(limited.status).toBe(429)
    expect(limited.body.message).toContain('address')
    expect((await from('198.51.100.2')).status).toBe(200)
  })
})
