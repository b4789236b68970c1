/**
 * The routes the API benchmark measures, each with what the ceiling server does for it: the same
 * statement through the same driver (mysql2), without the framework, auth, audit or envelopes.
 * Measuring another route is one more entry here (GET /api/v1/serve/{name}, GET /api/v1/serve…).
 */
export interface BenchRoute {
  /** As shown in the table: METHOD /path/{param}. */
  label: string
  method: 'GET' | 'POST'
  /** The n-th request of a run; `run` is a short letter-led prefix unique to the run (for unique names). */
  path: (n: number, run: string) => string
  body?: (n: number, run: string) => Record<string, unknown>
  /** Requests sent once through the app before measuring (what the reads read). */
  seed?: { path: string; body: Record<string, unknown> }[]
  ceiling: {
    /** Matches the request path; its groups feed `params`. */
    pattern: RegExp
    sql: string
    params: (groups: string[], body: Record<string, unknown>) => unknown[]
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

export const ROUTES: BenchRoute[] = [
  {
    label: 'POST /api/v1/environment',
    method: 'POST',
    path: () => '/api/v1/environment',
    body: (n, run) => environment(`${run}${n.toString(36)}`),
    ceiling: {
      pattern: /^\/api\/v1\/environment$/,
      sql: 'INSERT INTO environments (name, domain_suffix, cluster_name, namespace, security_group, subnets, ft_redis_url, workflow_url, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      params: (_, body) => {
        const configs = body.environment_configs as typeof environmentConfigs
        const now = new Date()
        return [body.name, configs.domain_suffix, configs.cluster_name, configs.namespace, configs.security_group, configs.subnets, configs.ft_redis_url, configs.workflow_url, now, now]
      },
      status: 201,
    },
  },
  {
    label: 'GET /api/v1/environment/{name}',
    method: 'GET',
    path: () => `/api/v1/environment/${READ_ENVIRONMENT}`,
    seed: [{ path: '/api/v1/environment', body: environment(READ_ENVIRONMENT) }],
    ceiling: {
      pattern: /^\/api\/v1\/environment\/([^/]+)$/,
      sql: 'SELECT * FROM environments WHERE name = ? LIMIT 1',
      params: ([name]) => [decodeURIComponent(name!)],
      status: 200,
    },
  },
]
