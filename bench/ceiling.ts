/**
 * The API benchmark's ceiling: a bare Bun.serve answering each route of routes.ts with the same
 * statement through the same driver and pool settings as the app (mysql2, DB_POOL_SIZE), and a
 * minimal JSON body. Started by bench/api.ts with DATABASE_URL, PORT and DB_POOL_SIZE.
 */
import mysql from 'mysql2/promise'
import { ROUTES } from './routes'

const pool = mysql.createPool({ uri: process.env.DATABASE_URL, connectionLimit: Number(process.env.DB_POOL_SIZE ?? 10), timezone: 'Z', charset: 'utf8mb4_unicode_ci' })

const server = Bun.serve({
  hostname: '127.0.0.1',
  port: Number(process.env.PORT ?? 0),
  async fetch(request) {
    const path = new URL(request.url).pathname
    for (const route of ROUTES) {
      const match = route.method === request.method ? route.ceiling.pattern.exec(path) : null
      if (!match) continue
      const body = request.method === 'POST' ? ((await request.json()) as Record<string, unknown>) : {}
      const [result] = await pool.query(route.ceiling.sql, route.ceiling.params(match.slice(1), body))
      const data = Array.isArray(result) ? result[0] : result
      if (data === undefined) return Response.json({ status: 'ERROR' }, { status: 404 })
      return Response.json({ status: 'SUCCESS', message: 'OK', data }, { status: route.ceiling.status })
    }
    return new Response('not found', { status: 404 })
  },
})
console.log(JSON.stringify({ port: server.port }))
