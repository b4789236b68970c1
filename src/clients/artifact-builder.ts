/**
 * The Artifact Builder (ARTIFACT_BUILDER_URL), as the original calls it: `POST /build_with_dockerfile`
 * starts a build and answers `{status, task_id, logs_url, message}`; `GET /task/status?task_id=`
 * answers `{status, build_status, message}` with build_status waiting | running | failed | completed.
 * Requests time out; connection errors and 5xx are retried a bounded number of times (a timed-out
 * start is not: the builder may have accepted it). GITHUB_TOKEN travels in the start request's body
 * and is scrubbed from anything the builder says back.
 */

import type { Config } from '../config'

export type BuildState = 'waiting' | 'running' | 'failed' | 'completed'
const BUILD_STATES: readonly string[] = ['waiting', 'running', 'failed', 'completed'] satisfies BuildState[]

export interface StartBuildRequest {
  /** The serve name. */
  appName: string
  /** `{serve}_{version}`: the tag of the image the builder pushes to IMAGE_REPOSITORY. */
  imageTag: string
  gitRepo: string
  branch: string
  commit?: string
  dockerfilePath?: string
}

export interface StartedBuild {
  taskId: string
  /** Absolute, for users (relative links are resolved against ARTIFACT_BUILDER_PUBLIC_URL). */
  logsUrl?: string
}

export interface BuildStatus {
  state: BuildState
  message?: string
  logsUrl?: string
}

export type ArtifactBuilderFailure = 'unreachable' | 'timeout' | 'server_error' | 'rejected' | 'bad_response'

export class ArtifactBuilderError extends Error {
  constructor(
    readonly failure: ArtifactBuilderFailure,
    message: string,
    /** The builder's HTTP status, when it answered. */
    readonly httpStatus?: number,
  ) {
    super(message)
    this.name = 'ArtifactBuilderError'
  }
}

export interface ArtifactBuilderOptions {
  url: string
  publicUrl: string
  githubToken?: string
  timeoutMs: number
  /** Extra attempts after the first, for connection errors and 5xx. */
  retries?: number
  /** Wait before retry n is n × this. */
  retryDelayMs?: number
}

interface TaskAnswer {
  status?: unknown
  task_id?: unknown
  logs_url?: unknown
  message?: unknown
  build_status?: unknown
}

const MAX_MESSAGE = 2000

export class ArtifactBuilderClient {
  constructor(private readonly options: ArtifactBuilderOptions) {}

  async startBuild(build: StartBuildRequest): Promise<StartedBuild> {
    const body = {
      app_name: build.appName,
      image_tag: build.imageTag,
      git_repo: build.gitRepo,
      branch: build.branch,
      ...(build.commit ? { commit: build.commit } : {}),
      ...(build.dockerfilePath ? { dockerfile_path: build.dockerfilePath } : {}),
      ...(this.options.githubToken ? { github_token: this.options.githubToken } : {}),
    }
    const answer = await this.call('/build_with_dockerfile', { method: 'POST', body: JSON.stringify(body) }, false)
    if (typeof answer.task_id !== 'string' && typeof answer.task_id !== 'number') {
      throw new ArtifactBuilderError('bad_response', 'the build was not accepted: no task_id in the answer')
    }
    return { taskId: String(answer.task_id), logsUrl: this.publicLink(answer.logs_url) }
  }

  async buildStatus(taskId: string): Promise<BuildStatus> {
    const answer = await this.call(`/task/status?${new URLSearchParams({ task_id: taskId })}`, { method: 'GET' }, true)
    const state = answer.build_status
    if (typeof state !== 'string' || !BUILD_STATES.includes(state)) {
      throw new ArtifactBuilderError('bad_response', `unknown build_status ${JSON.stringify(state)?.slice(0, 50)}`)
    }
    return { state: state as BuildState, message: this.scrub(answer.message), logsUrl: this.publicLink(answer.logs_url) }
  }

  /** Links are shown to users: relative ones are resolved against the builder's public URL. */
  private publicLink(value: unknown): string | undefined {
    if (typeof value !== 'string' || value === '') return undefined
    if (/^https?:\/\//i.test(value)) return this.scrub(value)
    if (value.startsWith('/')) return this.scrub(`${this.options.publicUrl}${value}`)
    return undefined
  }

  /** The builder's words are stored and shown: never with the GitHub token in them. */
  private scrub(value: unknown): string | undefined {
    if (typeof value !== 'string' || value === '') return undefined
    const token = this.options.githubToken
    const clean = token ? value.replaceAll(token, '***') : value
    return clean.slice(0, MAX_MESSAGE)
  }

  private async call(path: string, init: { method: string; body?: string }, retryTimeouts: boolean): Promise<TaskAnswer> {
    const retries = this.options.retries ?? 2
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once(path, init)
      } catch (error) {
        const retryable =
          error instanceof ArtifactBuilderError &&
          (error.failure === 'unreachable' || error.failure === 'server_error' || (retryTimeouts && error.failure === 'timeout'))
        if (!retryable || attempt >= retries) throw error
        await Bun.sleep((attempt + 1) * (this.options.retryDelayMs ?? 250))
      }
    }
  }

  private async once(path: string, init: { method: string; body?: string }): Promise<TaskAnswer> {
    let response: Response
    try {
      response = await fetch(`${this.options.url}${path}`, {
        ...init,
        headers: { accept: 'application/json', ...(init.body ? { 'content-type': 'application/json' } : {}) },
        signal: AbortSignal.timeout(this.options.timeoutMs),
      })
    } catch (error) {
      if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
        throw new ArtifactBuilderError('timeout', `no answer within ${this.options.timeoutMs} ms`)
      }
      throw new ArtifactBuilderError('unreachable', 'unreachable')
    }
    const answer = (await response.json().catch(() => undefined)) as TaskAnswer | undefined
    if (response.status >= 500) throw new ArtifactBuilderError('server_error', `answered ${response.status}`, response.status)
    if (!response.ok) {
      const reason = this.scrub(answer?.message)
      throw new ArtifactBuilderError('rejected', `answered ${response.status}${reason ? `: ${reason}` : ''}`, response.status)
    }
    if (answer === undefined || answer === null || typeof answer !== 'object') {
      throw new ArtifactBuilderError('bad_response', 'answered with something other than a JSON object')
    }
    return answer
  }
}

export function artifactBuilderFor(config: Config): ArtifactBuilderClient {
  const { url, publicUrl, timeoutMs } = config.artifactBuilder
  return new ArtifactBuilderClient({ url, publicUrl, timeoutMs, githubToken: config.githubToken })
}
