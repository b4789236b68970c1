/**
 * The SQL migrations `drizzle-kit generate` wrote into drizzle/, embedded in the code (and so in the
 * compiled binary) by Bun's text imports, or read from MIGRATIONS_DIR. Both become drizzle's
 * MigrationMeta the same way drizzle's own folder reader makes them (statements split on the
 * breakpoint marker, sha256 of the file as the hash), so a database migrated either way is the same.
 */
import { createHash } from 'node:crypto'
import { type MigrationMeta, readMigrationFiles } from 'drizzle-orm/migrator'
import init from '../../drizzle/0000_init.sql' with { type: 'text' }
import trust from '../../drizzle/0001_trust.sql' with { type: 'text' }
import servesInfraArtifacts from '../../drizzle/0002_serves_infra_artifacts.sql' with { type: 'text' }
import leases from '../../drizzle/0003_leases.sql' with { type: 'text' }
import deploymentsScaling from '../../drizzle/0004_deployments_scaling.sql' with { type: 'text' }
import idempotencyAnswers from '../../drizzle/0005_idempotency_answers.sql' with { type: 'text' }
import placement from '../../drizzle/0006_placement.sql' with { type: 'text' }
import progressiveDelivery from '../../drizzle/0007_progressive_delivery.sql' with { type: 'text' }
import journal from '../../drizzle/meta/_journal.json'

/** Every migration file by its journal tag (a test checks this matches drizzle/meta/_journal.json). */
export const EMBEDDED_MIGRATIONS: Readonly<Record<string, string>> = {
  '0000_init': init,
  '0001_trust': trust,
  '0002_serves_infra_artifacts': servesInfraArtifacts,
  '0003_leases': leases,
  '0004_deployments_scaling': deploymentsScaling,
  '0005_idempotency_answers': idempotencyAnswers,
  '0006_placement': placement,
  '0007_progressive_delivery': progressiveDelivery,
}

function embeddedMigrations(): MigrationMeta[] {
  return journal.entries.map((entry) => {
    const query = EMBEDDED_MIGRATIONS[entry.tag]
    if (query === undefined) throw new Error(`migration ${entry.tag} is in the journal but not embedded (src/db/migrations.ts)`)
    return {
      sql: query.split('--> statement-breakpoint'),
      bps: entry.breakpoints,
      folderMillis: entry.when,
      hash: createHash('sha256').update(query).digest('hex'),
    }
  })
}

/** The migrations to apply: those in `dir` (MIGRATIONS_DIR) when given, else the embedded ones. */
export function migrationsFrom(dir: string | undefined): MigrationMeta[] {
  return dir === undefined ? embeddedMigrations() : readMigrationFiles({ migrationsFolder: dir })
}
