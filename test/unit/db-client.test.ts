import { expect, test } from 'bun:test'
import { connectDatabase, driverFor, redactUrl, urlFromParts, withHost } from '../../src/db/client'
import { isDatabaseUnavailable } from '../../src/lib/errors'

test('the URL picks the driver: mysql:// → Bun SQL (or mysql2, as DB_DRIVER says) over TCP, https:// → PlanetScale over HTTP', () => {
  expect(driverFor('mysql://u:p@db:3306/x')).toBe('bun-sql')
  expect(driverFor('mysql://u:p@db:3306/x', 'mysql2')).toBe('mysql2')
  expect(driverFor('https://u:p@aws.connect.psdb.cloud/x')).toBe('planetscale')
})

test('an unreachable PlanetScale endpoint is "database unavailable" (503), not an internal error', async () => {
  const database = connectDatabase({ url: 'https://user:pw@127.0.0.1:1/db' })
  expect(database.driver).toBe('planetscale')
  const error = await database.ping().then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(error).toBeDefined()
  expect(isDatabaseUnavailable(error)).toBe(true)
})

test('URL helpers: built from MYSQL_* parts, re-pointed at a replica host, redacted for logs', () => {
  const url = urlFromParts({ host: 'db', port: 3307, username: 'svc', password: 'p@ss/word', name: 'darwin_ml_serve' })
  expect(url).toBe('mysql://svc:p%40ss%2Fword@db:3307/darwin_ml_serve')
  expect(withHost(url, 'replica')).toBe('mysql://svc:p%40ss%2Fword@replica:3307/darwin_ml_serve')
  expect(redactUrl(url)).toBe('mysql://svc:***@db:3307/darwin_ml_serve')
})
