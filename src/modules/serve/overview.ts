/** The serve overview of `GET /serve/{serve_name}`: the serve with what the other modules know of it. */
import { t } from 'elysia'
import type { Db } from '../../db/client'
import { Envelope } from '../../lib/http'
import { ArtifactModel } from '../artifact/model'
import { latestArtifactsOf } from '../artifact/service'
import { InfraConfigModel } from '../infra-config/model'
import { listInfraConfigsOf } from '../infra-config/service'
import { ServeModel } from './model'
import { deployedEnvironments } from '../placement/service'
import { findServe, toServe } from './service'

const LATEST_ARTIFACTS = 5

export namespace OverviewModel {
  export const overview = t.Object({
    ...ServeModel.serve.properties,
    serve: t.Object(ServeModel.serve.properties, { description: "The serve itself, as the original answers it (data.serve); the same fields are also at the top" }),
    infra_configs: t.Array(InfraConfigModel.infraConfig, { description: 'One per configured environment' }),
    latest_artifacts: t.Array(ArtifactModel.artifact, { description: `The ${LATEST_ARTIFACTS} newest artifacts` }),
    deployed_environments: t.Array(t.String(), { description: 'Environments where the serve is deployed' }),
  })
  export type Overview = typeof overview.static
  export const one = Envelope(overview, { ...ServeModel.example, serve: ServeModel.example, infra_configs: [], latest_artifacts: [], deployed_environments: [] })
}

export async function serveOverview(db: Db, name: string): Promise<OverviewModel.Overview> {
  const serve = await findServe(db, name)
  const [infra, latest, deployed] = await Promise.all([
    listInfraConfigsOf(db, serve),
    latestArtifactsOf(db, serve, LATEST_ARTIFACTS),
    deployedEnvironments(db, serve.id),
  ])
  const fields = toServe(serve)
  return { ...fields, serve: fields, infra_configs: infra, latest_artifacts: latest, deployed_environments: deployed }
}
