/** MYSQL_SLAVE_HOST: reads go to the replica, writes to the primary. */
import { afterAll, expect, test } from 'bun:test'
import { mysqlDriver } from '../../src/config'
import { connectDatabase } from '../../src/db/client'
import { environments } from '../../src/db/schema'
import { createTestContext } from '../support/context'
import { environmentConfigs } from '../support/fixtures'

const primary = await createTestContext()
const replica = await createTestContext()
const routed = connectDatabase({ driver: mysqlDriver(), url: primary.url, readUrl: replica.url, poolSize: 2 })
afterAll(() => routed.close())

test('selects read the replica while inserts reach the primary', async () => {
  await replica.request('POST', '/api/v1/environment', { name: 'only-on-replica', environment_configs: environmentConfigs })
  await routed.db.insert(environments).values({ name: 'written', domainSuffix: '.x.com', clusterName: 'c', namespace: 'ns' })
  const read = await routed.db.select({ name: environments.name }).from(environments)
  expect(read.map((r) => r.name)).toEqual(['only-on-replica'])
  expect(await primary.query("select name from environments where name = 'written'")).toHaveLength(1)
})
