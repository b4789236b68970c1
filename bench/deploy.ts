/**
 * A deploy's own overhead: POST /api/v1/serve/{name}/deploy through the app in process (app.handle,
 * auth on), one in flight, against a cluster driver that answers at once — so what is timed is
 * everything but the cluster call: validation, the placement's transaction and audit entry, the
 * render and its YAML, the revision's rows (the rate limits are off: the seeding would exceed them).
 * Each deploy is a serve's first (no lock contention).
 * `bun bench/deploy.ts` on its own, or as part of `bun run bench`.
 */
import { createApp } from '../src/app'
import type { ClusterDriver, ClusterDrivers } from '../src/cluster'
import { loadConfig } from '../src/config'
import { openDatabase } from '../src/db/connect'
import { ensureDatabaseExists } from '../src/db/migrate'
import { createLogger } from '../src/lib/logger'
import { ensureBootstrapAdmin } from '../src/modules/token/service'
import { cacheVerifiedTokens } from '../src/modules/token/verified-tokens'
import { benchDatabase, fixed, markdownTable, percentile } from './support'

export interface DeployResult {
  deploys: number
  p50: number
  p99: number
  /** Time inside the cluster driver, p50: what the overhead excludes. */
  clusterP50: number
}

/** A cluster that applies nothing and reports every rollout complete. */
function instantCluster(clusterTimes: number[]): ClusterDrivers {
  const driver: ClusterDriver = {
    apply: async (_, rendered) => {
      const started = performance.now()
      const applied = rendered.manifests.map((object) => `${object.kind}/${object.metadata.name}`)
      clusterTimes.push(performance.now() - started)
      return { applied, pruned: [] }
    },
    remove: async () => {},
    status: async () => ({ phase: 'complete', desiredReplicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2, conditions: [] }),
    setAutoscalingBounds: async () => {},
    applyObjects: async () => {},
    removeObjects: async () => {},
    workload: async () => undefined,
    ensureConfigured: () => {},
    availability: () => ({ usable: true, detail: 'bench: answers at once' }),
  }
  return { for: () => driver, availability: () => ({ kubernetes: driver.availability(), dcm: driver.availability() }) }
}

export async function benchDeploy(serverUrl: string, deploys = 100, warmup = 10): Promise<DeployResult> {
  const databaseUrl = `${serverUrl}bench_deploy`
  await ensureDatabaseExists(databaseUrl)
  const token = `bench-deploy-${crypto.randomUUID()}`
  const config = loadConfig({ ENV: 'bench', DATABASE_URL: databaseUrl, ENABLE_OTEL: 'false', SCALING_ENABLED: 'false', ML_SERVE_BOOTSTRAP_ADMIN_TOKEN: token, RATE_LIMIT_PER_TOKEN: '0', RATE_LIMIT_PER_IP: '0' })
  const log = createLogger({ level: 'warn' })
  const { database } = await openDatabase(config, log, { allowLocal: false })
  await ensureBootstrapAdmin(database.db, config.auth.bootstrapAdminUsername, token)
  cacheVerifiedTokens(database.db, config.auth.tokenCacheTtlMs)
  const clusterTimes: number[] = []
  const app = createApp({ config, database, log, clusterDrivers: instantCluster(clusterTimes) })
  const call = async (method: string, path: string, body: unknown, expected: number) => {
    const response = await app.handle(
      new Request(`http://localhost${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    )
    if (response.status !== expected) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`)
  }
  try {
    const run = crypto.randomUUID().slice(0, 6).replace(/[^a-z0-9]/g, 'x')
    const env = `d${run}`
    await call('POST', '/api/v1/environment', { name: env, environment_configs: { domain_suffix: '.bench.example.com', cluster_name: 'bench', namespace: 'ml-serve', security_group: 'sg-1', subnets: 'subnet-1', ft_redis_url: '', workflow_url: '' } }, 201)
    const infra = { backend_type: 'fastapi', cores: 2, memory: 4, min_replicas: 2, max_replicas: 10, node_capacity_type: 'spot' }
    const serves = Array.from({ length: warmup + deploys }, (_, i) => `d${run}-${i}`)
    for (const serve of serves) {
      await call('POST', '/api/v1/serve', { name: serve, type: 'api', space: 'bench' }, 201)
      await call('POST', `/api/v1/serve/${serve}/infra-config/${env}`, { api_serve_infra_config: infra }, 201)
      await call('POST', '/api/v1/artifact', { serve_name: serve, version: 'v1', image: `registry.example.com/ml/${serve}:v1` }, 201)
    }
    const latencies: number[] = []
    for (const [i, serve] of serves.entries()) {
      const started = performance.now()
      await call('POST', `/api/v1/serve/${serve}/deploy`, { env, artifact_version: 'v1', api_serve_deployment_config: { deployment_strategy: 'rolling', environment_variables: { MODEL_PATH: '/models/bench' } } }, 201)
      if (i >= warmup) latencies.push(performance.now() - started)
    }
    const sorted = Float64Array.from(latencies).sort()
    return { deploys, p50: percentile(sorted, 50), p99: percentile(sorted, 99), clusterP50: percentile(Float64Array.from(clusterTimes).sort(), 50) }
  } finally {
    await database.close()
  }
}

export function deployTable(result: DeployResult) {
  return markdownTable(
    ['deploys', 'p50 ms', 'p99 ms', 'of which the cluster call, p50 ms'],
    [[result.deploys, fixed(result.p50, 2), fixed(result.p99, 2), fixed(result.clusterP50, 3)]],
  )
}

if (import.meta.main) {
  const database = await benchDatabase()
  try {
    console.log(deployTable(await benchDeploy(database.serverUrl)))
  } finally {
    await database.stop()
  }
}
