/**
 * The API benchmark's ceiling: a bare Bun.serve answering each route of routes.ts with the same
 * statements through the same driver and pool settings as the app (mysql2, DB_POOL_SIZE), and a
 * minimal JSON body. Started by bench/api.ts with DATABASE_URL, PORT and DB_POOL_SIZE.
 */
import mysql from 'mysql2/promise'
import { ROUTES, type Row, type Sql } from './routes'

/** The Sql of routes.ts over a mysql2 pool (the ceiling's and the seeding's). */
export function sqlOf(pool: mysql.Pool): Sql {
  return {
    rows: async (sql, params) => (await pool.query(sql, params))[0] as Row[],
    run: async (sql, params) => (await pool.query(sql, params))[0],
  }
}

/** The pool the app's client makes of DATABASE_URL and DB_POOL_SIZE. */
export const poolOf = (url: string, size: number) => mysql.createPool({ uri: url, connectionLimit: size, timezone: 'Z', charset: 'utf8mb4_unicode_ci' })

if (import.meta.main) {
  const sql = sqlOf(poolOf(process.env.DATABASE_URL ?? '', Number(process.env.DB_POOL_SIZE ?? 10)))
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: Number(process.env.PORT ?? 0),
    async fetch(request) {
      const path = new URL(request.url).pathname
      for (const route of ROUTES) {
        const match = route.method === request.method ? route.ceiling.pattern.exec(path) : null
        if (!match) continue
        const body = request.method === 'POST' ? ((await request.json()) as Record<string, unknown>) : {}
        const data = await route.ceiling.answer(sql, match.slice(1), body)
        if (data === undefined) return Response.json({ status: 'ERROR' }, { status: 404 })
        return Response.json({ status: 'SUCCESS', message: 'OK', data }, { status: route.ceiling.status })
      }
      return new Response('not found', { status: 404 })
    },
  })
  console.log(JSON.stringify({ port: server.port }))
}
