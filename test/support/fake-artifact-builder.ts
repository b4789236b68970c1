/**
 * A fake Artifact Builder: a real HTTP server on 127.0.0.1 speaking the original's contract
 * (`POST /build_with_dockerfile`, `GET /task/status?task_id=`). It records every request and can be
 * told how to answer: accept builds, report each task's state, fail, hang, or answer 500.
 */
import { afterAll } from 'bun:test'

export type FakeBuildState = 'waiting' | 'running' | 'failed' | 'completed'
/** `ok` answers normally; `hang` never answers; `error500` answers 500; `reject400` refuses the request. */
export type FakeMode = 'ok' | 'hang' | 'error500' | 'reject400'

export interface RecordedRequest {
  method: string
  path: string
  headers: Record<string, string>
  body: unknown
}

export interface FakeArtifactBuilder {
  url: string
  requests: RecordedRequest[]
  /** How the next requests to start a build are answered. */
  startMode: FakeMode
  /** How the next status requests are answered. */
  statusMode: FakeMode
  /** A logs link given when a build starts: relative (resolved by the service) unless set otherwise. */
  logsUrl: (taskId: string) => string
  /** Sets what the status call reports for a task (new tasks start `waiting`). */
  setState(taskId: string, state: FakeBuildState, message?: string): void
  /** The task ids handed out, in order. */
  tasks(): string[]
  /** Forgets a task, as a builder that lost its state would. */
  forget(taskId: string): void
  /** Frees hanging requests and stops the server. */
  stop(): void
}

export function startFakeArtifactBuilder(): FakeArtifactBuilder {
  const states = new Map<string, { state: FakeBuildState; message?: string }>()
  const hanging: (() => void)[] = []
  let nextTask = 1

  const answer = (mode: FakeMode, ok: () => Response): Promise<Response> | Response => {
    switch (mode) {
      case 'ok':
        return ok()
      case 'error500':
        return Response.json({ status: 'ERROR', message: 'internal error' }, { status: 500 })
      case 'reject400':
        return Response.json({ status: 'ERROR', message: 'branch does-not-exist not found' }, { status: 400 })
      case 'hang':
        return new Promise((resolve) => hanging.push(() => resolve(new Response('gone', { status: 503 }))))
    }
  }

  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(request) {
      const url = new URL(request.url)
      const text = await request.text()
      let body: unknown
      try {
        body = text === '' ? undefined : JSON.parse(text)
      } catch {
        body = text
      }
      fake.requests.push({ method: request.method, path: url.pathname + url.search, headers: Object.fromEntries(request.headers), body })
      if (request.method === 'POST' && url.pathname === '/build_with_dockerfile') {
        return answer(fake.startMode, () => {
          const taskId = `task-${nextTask++}`
          states.set(taskId, { state: 'waiting' })
          return Response.json({ status: 'SUCCESS', task_id: taskId, logs_url: fake.logsUrl(taskId), message: 'build queued' })
        })
      }
      if (request.method === 'GET' && url.pathname === '/task/status') {
        return answer(fake.statusMode, () => {
          const task = states.get(url.searchParams.get('task_id') ?? '')
          if (!task) return Response.json({ status: 'ERROR', message: 'task not found' }, { status: 404 })
          return Response.json({ status: 'SUCCESS', build_status: task.state, message: task.message ?? '' })
        })
      }
      return Response.json({ message: 'no such route' }, { status: 404 })
    },
  })

  const fake: FakeArtifactBuilder = {
    url: `http://127.0.0.1:${server.port}`,
    requests: [],
    startMode: 'ok',
    statusMode: 'ok',
    logsUrl: (taskId) => `/logs/${taskId}`,
    setState: (taskId, state, message) => void states.set(taskId, { state, message }),
    tasks: () => [...states.keys()],
    forget: (taskId) => void states.delete(taskId),
    stop: () => {
      for (const release of hanging.splice(0)) release()
      server.stop(true)
    },
  }
  afterAll(() => fake.stop())
  return fake
}
