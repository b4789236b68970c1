import type { ClusterDrivers } from './cluster'
import type { Config } from './config'
import type { Database } from './db/client'
import type { Logger } from './lib/logger'

/** What the app is built from: created once in src/index.ts (or by a test) and handed to each module. */
export interface AppContext {
  config: Config
  database: Database
  log: Logger
  clusterDrivers: ClusterDrivers
}
