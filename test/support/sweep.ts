/** What the sweeps over /docs/json share: real resources for path parameters to name, and table checksums. */
import type { TestContext } from './context'
import type { FakeKubernetes } from './fake-kubernetes'
import { environmentBody } from './fixtures'

/**
 * Checksums of the tables a refused call must leave as they were. Left out: the audit log (it records
 * refusals), api_tokens (a token records its use, at most once a minute), leases and idempotency keys.
 */
export async function resourceTableChecksums(ctx: Pick<TestContext, 'query'>): Promise<Record<string, unknown>> {
  const tables = await ctx.query<{ name: string }>(
    "select table_name as name from information_schema.tables where table_schema = database() and table_name not in ('audit_log', 'api_tokens', 'leases', 'idempotency_keys', '__drizzle_migrations')",
  )
  const sums: Record<string, unknown> = {}
  for (const { name } of tables) {
    const [row] = await ctx.query<{ Checksum: unknown }>(`checksum table \`${name}\``)
    sums[name] = row?.Checksum
  }
  return sums
}

export interface NamedResources {
  /** The value each path parameter of /docs/json takes. */
  pathValues: Record<string, string>
  /** A /docs/json path with its parameters filled in. */
  fill(pattern: string): string
  /** The read-only token created for routes that name one. */
  victimTokenId: number
}

/**
 * Resources every path parameter can name, each in a state where an operation on it would act:
 * environment prod, serve fraud with an infra config and two prebuilt artifacts, revision 1 active
 * (its rollout completed on the fake cluster), and a read-only token.
 */
export async function seedNamedResources(ctx: TestContext, fake: FakeKubernetes, options: { namespace?: string; versions?: [string, string] } = {}): Promise<NamedResources> {
  const namespace = options.namespace ?? 'ml-serve'
  const [first, second] = options.versions ?? ['v1.0.0', 'v1.1.0']
  const expectCreated = async (method: string, path: string, body: unknown) => {
    const response = await ctx.request(method, path, body)
    if (response.status !== 201) throw new Error(`${method} ${path}: expected 201, got ${response.status} ${JSON.stringify(response.body)}`)
    return response
  }
  await expectCreated('POST', '/api/v1/environment', environmentBody('prod', { namespace }))
  await expectCreated('POST', '/api/v1/serve', { name: 'fraud', type: 'api' })
  const infra = { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 2, max_replicas: 4, node_capacity_type: 'spot' }
  await expectCreated('POST', '/api/v1/serve/fraud/infra-config/prod', { api_serve_infra_config: infra })
  for (const version of [first, second]) {
    await expectCreated('POST', '/api/v1/artifact', { serve_name: 'fraud', version, image: `registry.example.com/fraud:${version}` })
  }
  await expectCreated('POST', '/api/v1/serve/fraud/deploy', { env: 'prod', artifact_version: first })
  const generation = Number(fake.get('Deployment', namespace, 'fraud-prod')?.metadata.generation ?? 1)
  fake.setStatus('Deployment', namespace, 'fraud-prod', { observedGeneration: generation, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 })
  await ctx.deployment.tracker.tick()
  const victim = (await expectCreated('POST', '/api/v1/tokens', { name: 'victim', scopes: ['read'] })).body.data as { id: number }
  const pathValues: Record<string, string> = {
    environment_name: 'prod',
    serve_name: 'fraud',
    env: 'prod',
    version: first,
    revision: '1',
    job_id: '1',
    token_id: String(victim.id),
  }
  const fill = (pattern: string) =>
    pattern.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = pathValues[name]
      if (value === undefined) throw new Error(`no value for path parameter ${name} in ${pattern}: add one in test/support/sweep.ts`)
      return value
    })
  return { pathValues, fill, victimTokenId: victim.id }
}
