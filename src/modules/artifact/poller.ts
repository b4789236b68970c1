/**
 * Follows pending builds until they are final. Each tick claims due builds with
 * `SELECT … FOR UPDATE SKIP LOCKED` and stamps them checked before asking the builder, so replicas
 * never poll the same build at once; the state lives in the database, so a restarted (or another)
 * poller carries on where this one stopped.
 */
import { and, asc, inArray, isNotNull, isNull, lte, or, sql } from 'drizzle-orm'
import { artifacts, PENDING_ARTIFACT_STATUSES, serves } from '../../db/schema'
import { createBackoff } from '../../lib/backoff'
import { describeError } from '../../lib/logger'
import { type ArtifactDeps, refreshBuild } from './service'

export interface ArtifactPoller {
  /** Ticks now, then every interval. */
  start(): void
  /** Stops ticking and waits for a tick in progress. */
  stop(): Promise<void>
  /** One round: claims due builds, asks the builder about each. Returns how many were claimed. */
  tick(): Promise<number>
}

export interface ArtifactPollerOptions {
  /** How often to tick, and how long a claimed build is left alone. */
  intervalMs: number
  /** Builds claimed per tick. */
  batchSize?: number
}

export function createArtifactPoller(deps: ArtifactDeps, options: ArtifactPollerOptions): ArtifactPoller {
  const { db, log } = deps
  const batchSize = options.batchSize ?? 20
  let timer: ReturnType<typeof setInterval> | undefined
  let running: Promise<number> | undefined

  /** Locks artifact rows only (no join): a lock on the serve row would hold up changes to the serve. */
  async function claimDue() {
    const now = new Date()
    const dueBefore = new Date(now.getTime() - options.intervalMs)
    return db.transaction(async (tx) => {
      const due = await tx
        .select()
        .from(artifacts)
        .where(
          and(
            inArray(artifacts.status, [...PENDING_ARTIFACT_STATUSES]),
            isNotNull(artifacts.builderTaskId),
            or(isNull(artifacts.statusCheckedAt), lte(artifacts.statusCheckedAt, dueBefore)),
          ),
        )
        .orderBy(asc(artifacts.statusCheckedAt))
        .limit(batchSize)
        .for('update', { skipLocked: true })
      if (due.length > 0) {
        await tx
          .update(artifacts)
          // Bookkeeping only: updated_at keeps meaning "the artifact changed".
          .set({ statusCheckedAt: now, updatedAt: sql`${artifacts.updatedAt}` })
          .where(inArray(artifacts.id, due.map((artifact) => artifact.id)))
      }
      return due
    })
  }

  async function tick(): Promise<number> {
    const claimed = await claimDue()
    if (claimed.length === 0) return 0
    const names = await db
      .select({ id: serves.id, name: serves.name })
      .from(serves)
      .where(inArray(serves.id, [...new Set(claimed.map((artifact) => artifact.serveId))]))
    const serveNames = new Map(names.map(({ id, name }) => [id, name]))
    for (const artifact of claimed) {
      const serveName = serveNames.get(artifact.serveId)
      if (serveName === undefined) continue // the serve was deleted, with its artifacts, meanwhile
      try {
        await refreshBuild(deps, artifact, serveName)
      } catch (error) {
        log.warn('could not check an artifact build; retrying next round', { serve: serveName, version: artifact.version, ...describeError(error) })
      }
    }
    return claimed.length
  }

  const backoff = createBackoff({ baseMs: options.intervalMs, maxMs: 60_000 })

  /** One tick at a time; a failing tick (database down or hanging) is logged and the poller backs off. */
  function tickInBackground() {
    if (running || !backoff.ready()) return
    running = tick()
      .then((claimed) => {
        backoff.succeeded()
        return claimed
      })
      .catch((error) => {
        log.warn('artifact poller tick failed; backing off', { retry_in_ms: backoff.failed(), ...describeError(error) })
        return 0
      })
      .finally(() => {
        running = undefined
      })
  }

  return {
    start() {
      if (timer) return
      tickInBackground()
      timer = setInterval(tickInBackground, options.intervalMs)
    },
    async stop() {
      clearInterval(timer)
      timer = undefined
      await running
    },
    tick,
  }
}
