/**
 * MLflow: parsing model URIs, and checking them against the tracking server when one is configured
 * (the run exists and its model directory has an `MLmodel`; a registered model version exists).
 */
import { SpanKind } from '@opentelemetry/api'
import { AppError, badGateway, type FieldError, invalid } from '../lib/errors'
import { traceHeaders, withSpan } from '../lib/telemetry'

export type ModelUri =
  | { scheme: 'runs'; runId: string; artifactPath: string }
  | { scheme: 'mlflow-artifacts'; experimentId: string; runId: string; artifactPath: string }
  | { scheme: 'models'; name: string; version?: string; alias?: string; stage?: string }
  | { scheme: 'object-store'; url: string }

const OBJECT_STORES = ['s3:', 'gs:', 'wasbs:', 'abfss:', 'hdfs:', 'oss:']
const RUN_ID = /^[0-9a-f]{32}$/i
const SEGMENT = /^[A-Za-z0-9._-]{1,256}$/

/** Parses the model URI forms MLflow understands; `field` names the request field in errors. */
export function parseModelUri(uri: string, field = '/model_uri'): ModelUri {
  const fail = (message: string): never => {
    throw invalid([{ path: field, message }], `Invalid model_uri: ${message}`)
  }
  if (uri.length > 1024 || /[\s\u0000]/.test(uri)) fail('must be at most 1024 characters, without spaces or control characters')
  const parts = (rest: string) => rest.split('/').filter((p) => p !== '')
  if (uri.startsWith('runs:/')) {
    const [runId = '', ...path] = parts(uri.slice('runs:/'.length))
    if (!RUN_ID.test(runId)) fail('runs:/<run_id>/<path>: run_id is 32 hex characters')
    if (path.length === 0 || !path.every((p) => SEGMENT.test(p) && p !== '..')) fail('runs:/<run_id>/<path>: a path to the model is required')
    return { scheme: 'runs', runId, artifactPath: path.join('/') }
  }
  if (uri.startsWith('mlflow-artifacts:/')) {
    const [experimentId = '', runId = '', artifacts, ...path] = parts(uri.slice('mlflow-artifacts:/'.length))
    if (!/^\d+$/.test(experimentId) || !RUN_ID.test(runId) || artifacts !== 'artifacts' || path.length === 0) {
      fail('expected mlflow-artifacts:/<experiment_id>/<run_id>/artifacts/<path>')
    }
    if (!path.every((p) => SEGMENT.test(p) && p !== '..')) fail('the artifact path has an invalid segment')
    return { scheme: 'mlflow-artifacts', experimentId, runId, artifactPath: path.join('/') }
  }
  if (uri.startsWith('models:/')) {
    const rest = uri.slice('models:/'.length)
    const alias = /^([^/@]{1,256})@([A-Za-z0-9_-]{1,256})$/.exec(rest)
    if (alias?.[1] && alias[2]) return { scheme: 'models', name: alias[1], alias: alias[2] }
    const [name = '', selector = '', ...extra] = parts(rest)
    if (name === '' || selector === '' || extra.length > 0 || !SEGMENT.test(selector)) {
      fail('expected models:/<name>/<version or stage> or models:/<name>@<alias>')
    }
    return /^\d+$/.test(selector) ? { scheme: 'models', name, version: selector } : { scheme: 'models', name, stage: selector }
  }
  let parsed: URL | undefined
  try {
    parsed = new URL(uri)
  } catch {}
  if (parsed && OBJECT_STORES.includes(parsed.protocol) && parsed.host !== '' && !uri.includes('/../')) {
    return { scheme: 'object-store', url: uri }
  }
  return fail('expected one of models:/, runs:/, mlflow-artifacts:/, s3://, gs://, wasbs://, abfss://, hdfs://, oss://')
}

export interface MlflowClientOptions {
  trackingUri: string
  username?: string
  password?: string
  timeoutMs?: number
}

export class MlflowClient {
  private readonly headers: Record<string, string>

  constructor(private readonly options: MlflowClientOptions) {
    this.headers = { accept: 'application/json' }
    if (options.username || options.password) {
      this.headers.authorization = `Basic ${btoa(`${options.username ?? ''}:${options.password ?? ''}`)}`
    }
  }

  /** GET an MLflow REST endpoint; undefined on 404 / RESOURCE_DOES_NOT_EXIST. */
  private async get<T>(path: string, query: Record<string, string>): Promise<T | undefined> {
    const url = `${this.options.trackingUri}/api/2.0/mlflow/${path}?${new URLSearchParams(query)}`
    let response: Response
    try {
      response = await withSpan(
        `MLflow GET ${path}`,
        { 'http.request.method': 'GET', 'url.full': url },
        () => fetch(url, { headers: { ...this.headers, ...traceHeaders() }, signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000) }),
        SpanKind.CLIENT,
      )
    } catch (error) {
      throw badGateway('MLflow tracking server', error instanceof Error && error.name === 'TimeoutError' ? 'timed out' : 'unreachable')
    }
    if (response.status === 404) return undefined
    const body = (await response.json().catch(() => ({}))) as { error_code?: string }
    if (response.status === 400 && (body.error_code === 'RESOURCE_DOES_NOT_EXIST' || body.error_code === 'INVALID_PARAMETER_VALUE')) return undefined
    if (response.status === 401 || response.status === 403) throw badGateway('MLflow tracking server', `refused our credentials (${response.status})`)
    if (!response.ok) throw badGateway('MLflow tracking server', `answered ${response.status}`)
    return body as T
  }

  private async requireModelDirectory(runId: string, artifactPath: string, field: string) {
    const run = await this.get<{ run?: unknown }>('runs/get', { run_id: runId })
    if (!run?.run) throw notFoundInMlflow(field, `run ${runId} does not exist`)
    const listing = await this.get<{ files?: { path: string }[] }>('artifacts/list', { run_id: runId, path: artifactPath })
    const hasMlModel = (listing?.files ?? []).some((f) => f.path === `${artifactPath}/MLmodel` || f.path === 'MLmodel')
    if (!hasMlModel) throw notFoundInMlflow(field, `${artifactPath} of run ${runId} has no MLmodel file`)
  }

  /** Throws 422 when the model is not there, 502 when the tracking server cannot tell. */
  async validate(uri: ModelUri, field = '/model_uri'): Promise<void> {
    switch (uri.scheme) {
      case 'runs':
      case 'mlflow-artifacts':
        return this.requireModelDirectory(uri.runId, uri.artifactPath, field)
      case 'models': {
        const found = uri.version
          ? await this.get('model-versions/get', { name: uri.name, version: uri.version })
          : uri.alias
            ? await this.get('registered-models/alias', { name: uri.name, alias: uri.alias })
            : await this.get('registered-models/get', { name: uri.name })
        if (!found) throw notFoundInMlflow(field, `registered model ${uri.name} ${uri.version ?? uri.alias ?? uri.stage} does not exist`)
        return
      }
      case 'object-store':
        return // outside MLflow's REST API: the model downloader reports a missing object at start-up
    }
  }
}

function notFoundInMlflow(path: string, message: string): AppError {
  const errors: FieldError[] = [{ path, message }]
  return new AppError(422, 'MODEL_NOT_FOUND', `The model is not in MLflow: ${message}`, errors)
}
