/** The client subcommands of the binary (src/cli runs them); apart, so that src/index.ts can tell them without loading the CLI. */
export const CLI_COMMANDS = ['deploy', 'rollback', 'undeploy', 'promote', 'abort', 'status', 'history', 'manifests', 'artifact', 'schedule', 'env', 'serve', 'infra', 'help'] as const
export type CliCommand = (typeof CLI_COMMANDS)[number]
