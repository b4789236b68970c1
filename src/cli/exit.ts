/**
 * The CLI's exit codes (README "From CI"): what a pipeline branches on.
 */
export const EXIT = {
  /** Done: the call succeeded; a waited rollout or build ended well. */
  ok: 0,
  /** The service refused the call (4xx but 409) or a dependency failed (502); a waited rollout or build failed. */
  failed: 1,
  /** Bad flags or arguments, an unreadable file: nothing was sent. */
  usage: 2,
  /** `--wait` ran out before the rollout or build ended (it goes on). */
  timeout: 3,
  /** 409: another change is in progress, the resource exists, or the state forbids it; retry later or resolve it. */
  conflict: 4,
  /** The service could not be reached, or answered 503 (it or its database is unavailable): retry. */
  unreachable: 5,
} as const

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/** Ends a command with an exit code and the one line a person reads (on stderr). */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message)
    this.name = 'CliError'
  }
}

/** The exit code of an HTTP error status. */
export function exitCodeOf(status: number): ExitCode {
  if (status === 409) return EXIT.conflict
  if (status === 503) return EXIT.unreachable
  if (status === 504) return EXIT.timeout
  return EXIT.failed
}
