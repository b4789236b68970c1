/**
 * One JSON object per line on stdout. Tests pass their own `write` to capture lines (and assert that
 * no secret ever reaches them). With telemetry on, a line written inside a span carries its
 * trace_id/span_id so logs and traces can be joined.
 */
import { DrizzleQueryError } from 'drizzle-orm/errors'
import { traceFields } from './telemetry'

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const
export type LogLevel = keyof typeof LEVELS
export type LogFields = Record<string, unknown>

export interface Logger {
  debug(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields): void
  child(fields: LogFields): Logger
}

export function createLogger(
  options: { level?: LogLevel; write?: (line: string) => void; fields?: LogFields } = {},
): Logger {
  const threshold = LEVELS[options.level ?? 'info']
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`))
  const base = options.fields ?? {}
  const emit = (level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields) => {
    if (LEVELS[level] < threshold) return
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...traceFields(), ...base, ...fields }))
  }
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  }
}

/** What may be logged of an unknown error: its class and message, never a query's parameters. */
export function describeError(error: unknown): LogFields {
  if (!(error instanceof Error)) return { error: String(error) }
  const cause = (error as { cause?: unknown }).cause
  // DrizzleQueryError's message carries the SQL parameters (which may hold secrets): log its cause only.
  // (It does not set `name`, so it is recognised by class.)
  if (error instanceof DrizzleQueryError) return cause instanceof Error ? describeError(cause) : { error: 'DrizzleQueryError' }
  const code = (error as { code?: unknown }).code
  return { error: error.name, error_message: error.message, ...(code === undefined ? {} : { error_code: code }) }
}
