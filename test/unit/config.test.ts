import { describe, expect, test } from 'bun:test'
import { ConfigError, loadConfig } from '../../src/config'

describe('configuration', () => {
  test('defaults are those of the original README', () => {
    const config = loadConfig({})
    expect(config.env).toBe('local')
    expect(config.port).toBe(8007)
    expect(config.database).toMatchObject({ host: 'localhost', name: 'darwin_ml_serve', username: 'root', password: 'password', provisionLocal: true })
    expect(config.dcmUrl).toBe('http://localhost:8080')
    expect(config.artifactBuilder).toEqual({ url: 'http://localhost:8081', publicUrl: 'http://localhost/artifact-builder', timeoutMs: 10_000, pollIntervalMs: 2_000 })
    expect(config.telemetry).toEqual({ enabled: false, serviceName: 'darwin-ml-serve', otlpEndpoint: 'http://localhost:4318' })
    expect(config.kubeIngressClass).toBe('alb')
    expect(config.registry).toEqual({ containerRegistry: 'docker.io', imageRepository: 'darwin', imageTag: 'latest' })
    expect(config.defaultRuntime).toBe('docker.io/python:3.9-slim')
    expect(config.deployedService).toEqual({ applicationPort: 8000, healthcheckPath: '/healthcheck', organizationName: 'my-org' })
    expect(config.istio).toEqual({ enabled: false, serviceName: 'istio-ingressgateway', namespace: 'istio-system' })
    expect(config.albLogs).toEqual({ enabled: false, bucket: '', prefix: 'alb-logs' })
    expect(config.scaling).toEqual({ enabled: true, tickCron: '* * * * *', leaseTtlMs: 180_000 })
  })

  test('ENABLE_OTEL is on by default outside ENV=local', () => {
    expect(loadConfig({ ENV: 'prod' }).telemetry.enabled).toBe(true)
    expect(loadConfig({ ENV: 'prod', ENABLE_OTEL: 'false' }).telemetry.enabled).toBe(false)
  })

  test('DATABASE_URL or MYSQL_HOST turn local provisioning off', () => {
    expect(loadConfig({ DATABASE_URL: 'mysql://u:p@db:3306/x' }).database.provisionLocal).toBe(false)
    expect(loadConfig({ MYSQL_HOST: 'db' }).database.provisionLocal).toBe(false)
  })

  test.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ ENABLE_ISTIO: 'maybe' }, 'ENABLE_ISTIO'],
    [{ DCM_URL: 'not a url' }, 'DCM_URL'],
    [{ DATABASE_URL: 'postgres://x/y' }, 'DATABASE_URL'],
    [{ HEALTHCHECK_PATH: 'health' }, 'HEALTHCHECK_PATH'],
    [{ ALB_LOGS_ENABLED: 'true' }, 'ALB_LOGS_BUCKET'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ ARTIFACT_BUILDER_TIMEOUT_MS: '10s' }, 'ARTIFACT_BUILDER_TIMEOUT_MS'],
    [{ ARTIFACT_POLL_INTERVAL_MS: '0' }, 'ARTIFACT_POLL_INTERVAL_MS'],
    [{ SCALING_TICK_CRON: '*/5 * * *' }, 'SCALING_TICK_CRON'],
    [{ SCALING_TICK_CRON: '0 */5 * * * *' }, 'SCALING_TICK_CRON'],
    [{ SCALING_ENABLED: 'sometimes' }, 'SCALING_ENABLED'],
    [{ SCALING_LEASE_TTL_MS: '10' }, 'SCALING_LEASE_TTL_MS'],
    [{ ORGANIZATION_NAME: 'acme,evil=1' }, 'ORGANIZATION_NAME'],
    [{ ORGANIZATION_NAME: 'My Org' }, 'ORGANIZATION_NAME'],
  ])('a bad value stops with a line naming the variable: %p', (env, variable) => {
    let error: unknown
    try {
      loadConfig(env)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).variable).toBe(variable)
    expect((error as ConfigError).message).toStartWith(`${variable}: `)
  })
})
