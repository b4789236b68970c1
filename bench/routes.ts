/**
 * The routes the API benchmark measures, each with what the ceiling servers do for it: the same
 * statements, in the same order (sequential where the app waits, parallel where it does not), after
 * the token lookup the original makes on every request, without the framework, audit, row mapping or
 * envelopes. Measuring another route is one more entry here.
 */
export type Row = Record<string, unknown>

/** A pool (mysql2's or Bun SQL's) as the ceilings and the seeding use it. */
export interface Sql {
  /** A SELECT's rows. */
  rows(sql: string, params: unknown[]): Promise<Row[]>
  /** Any other statement; its result header. */
  run(sql: string, params: unknown[]): Promise<unknown>
}

/** Sends one JSON request through the app (as the bootstrap admin); throws unless it succeeds. */
export type AppRequest = (path: string, body: Record<string, unknown>) => Promise<void>

export interface BenchRoute {
  /** As shown in the table: METHOD /path/{param}. */
  label: string
  method: 'GET' | 'POST'
  /** The n-th request of a run; `run` is a short letter-led prefix unique to the run (for unique names). */
  path: (n: number, run: string) => string
  body?: (n: number, run: string) => Record<string, unknown>
  /** Run once before measuring: creates what the reads read. */
  seed?: (app: AppRequest, sql: Sql) => Promise<void>
  ceiling: {
    /** Matches the request path; its groups feed `answer`. */
    pattern: RegExp
    /** The route's statements; what it resolves to is the response's `data`, undefined a 404. */
    answer: (sql: Sql, groups: string[], body: Record<string, unknown>) => Promise<unknown>
    /** Status of a successful answer. */
    status: number
  }
}

const environmentConfigs = {
  domain_suffix: '.bench.example.com',
  cluster_name: 'bench-cluster',
  namespace: 'ml-serve',
  security_group: 'sg-1',
  subnets: 'subnet-1',
  ft_redis_url: '',
  workflow_url: '',
}
const environment = (name: string) => ({ name, environment_configs: environmentConfigs })
const READ_ENVIRONMENT = 'bench-read'

/** The overview's serve: infra configs in three environments, twelve artifacts (five shown), live in two. */
const READ_SERVE = 'bench-overview'
const SERVE_ENVIRONMENTS = ['bench-dev', 'bench-prod', 'bench-stage']
const SERVE_ARTIFACTS = 12
/** The list reads the default page (20) of this many serves. */
const LISTED_SERVES = 50

async function seedOverview(app: AppRequest, sql: Sql) {
  await app('/api/v1/serve', { name: READ_SERVE, type: 'api', description: 'Benchmark serve', space: 'bench' })
  const infra = { backend_type: 'fastapi', cores: 2, memory: 4, min_replicas: 2, max_replicas: 10, node_capacity_type: 'spot', additional_hosts: ['bench.internal.example.com'] }
  for (const env of SERVE_ENVIRONMENTS) {
    await app('/api/v1/environment', environment(env))
    await app(`/api/v1/serve/${READ_SERVE}/infra-config/${env}`, { api_serve_infra_config: infra })
  }
  for (let i = 1; i <= SERVE_ARTIFACTS; i++) {
    await app('/api/v1/artifact', { serve_name: READ_SERVE, version: `v${i}`, image: `registry.example.com/ml/bench:v${i}` })
  }
  // Deploying needs a cluster; the overview reads only the revision rows, so they are written directly.
  const [serve] = await sql.rows('SELECT id FROM serves WHERE name = ?', [READ_SERVE])
  const live = await sql.rows('SELECT id FROM environments WHERE name IN (?, ?)', SERVE_ENVIRONMENTS.slice(0, 2))
  const now = new Date()
  for (const [i, env] of live.entries()) {
    await sql.run(
      'INSERT INTO deployments (serve_id, environment_id, revision, reason, artifact_version, image, deployment_config, infra_snapshot, rendered, manifests_yaml, status, created_by, request_id, created_at, updated_at, activated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [serve?.id, env.id, i + 1, 'deploy', 'v1', 'registry.example.com/ml/bench:v1', JSON.stringify({ deployment_strategy: 'rolling', environment_variables: {} }), JSON.stringify(infra), '{}', '', 'active', 'bench', `bench-${i}`, now, now, now],
    )
  }
}

async function seedList(app: AppRequest) {
  for (let i = 0; i < LISTED_SERVES; i++) await app('/api/v1/serve', { name: `bench-list-${i.toString().padStart(3, '0')}`, type: i % 5 === 0 ? 'workflow' : 'api', space: 'bench' })
}

export const ROUTES: BenchRoute[] = [
  {
    label: 'POST /api/v1/environment',
    method: 'POST',
    path: () => '/api/v1/environment',
    body: (n, run) => environment(`${run}${n.toString(36)}`),
    ceiling: {
      pattern: /^\/api\/v1\/environment$/,
      answer: (sql, _, body) => {
        const configs = body.environment_configs as typeof environmentConfigs
        const now = new Date()
        return sql.run(
          'INSERT INTO environments (name, domain_suffix, cluster_name, namespace, security_group, subnets, ft_redis_url, workflow_url, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
          [body.name, configs.domain_suffix, configs.cluster_name, configs.namespace, configs.security_group, configs.subnets, configs.ft_redis_url, configs.workflow_url, now, now],
        )
      },
      status: 201,
    },
  },
  {
    label: 'GET /api/v1/environment/{name}',
    method: 'GET',
    path: () => `/api/v1/environment/${READ_ENVIRONMENT}`,
    seed: (app) => app('/api/v1/environment', environment(READ_ENVIRONMENT)),
    ceiling: {
      pattern: /^\/api\/v1\/environment\/([^/]+)$/,
      answer: async (sql, [name]) => (await sql.rows('SELECT * FROM environments WHERE name = ? LIMIT 1', [decodeURIComponent(name!)]))[0],
      status: 200,
    },
  },
  {
    label: 'GET /api/v1/serve/{name} (overview)',
    method: 'GET',
    path: () => `/api/v1/serve/${READ_SERVE}`,
    seed: seedOverview,
    ceiling: {
      pattern: /^\/api\/v1\/serve\/([^/]+)$/,
      // As serveOverview: the serve, then its infra configs, latest artifacts and live environments at once.
      answer: async (sql, [name]) => {
        const [serve] = await sql.rows('SELECT * FROM serves WHERE name = ? LIMIT 1', [decodeURIComponent(name!)])
        if (!serve) return undefined
        const [infra, latest, deployed] = await Promise.all([
          sql.rows('SELECT infra_configs.*, environments.name AS env FROM infra_configs INNER JOIN environments ON environments.id = infra_configs.environment_id WHERE infra_configs.serve_id = ? ORDER BY environments.name', [serve.id]),
          sql.rows('SELECT * FROM artifacts WHERE serve_id = ? ORDER BY created_at DESC, id DESC LIMIT 5', [serve.id]),
          sql.rows(
            "SELECT DISTINCT environments.name FROM deployments INNER JOIN environments ON environments.id = deployments.environment_id WHERE deployments.serve_id = ? AND deployments.status IN ('active', 'pending', 'deploying') ORDER BY environments.name",
            [serve.id],
          ),
        ])
        return { ...serve, infra_configs: infra, latest_artifacts: latest, deployed_environments: deployed.map((row) => row.name) }
      },
      status: 200,
    },
  },
  {
    label: 'GET /api/v1/serve (list, page of 20)',
    method: 'GET',
    path: () => '/api/v1/serve',
    seed: seedList,
    ceiling: {
      pattern: /^\/api\/v1\/serve$/,
      // As listServes: the page and the total at once.
      answer: async (sql) => {
        const [items, [totals]] = await Promise.all([
          sql.rows('SELECT * FROM serves ORDER BY name LIMIT ? OFFSET ?', [20, 0]),
          sql.rows('SELECT COUNT(*) AS total FROM serves', []),
        ])
        return { items, total: totals?.total }
      },
      status: 200,
    },
  },
]
