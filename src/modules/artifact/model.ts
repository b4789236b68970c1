import { t } from 'elysia'
import { ARTIFACT_SOURCES, ARTIFACT_STATUSES } from '../../db/schema'
import { Envelope, PageEnvelope } from '../../lib/http'
import { PageQuery } from '../../lib/pagination'
import { Named, StringEnum } from '../../lib/schema'

/** It goes into the image tag `{serve}_{version}` (a Docker tag: ≤ 128 characters of [A-Za-z0-9_.-]). */
export const artifactVersion = t.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$',
  description: 'Unique per serve: letters, digits, ".", "_", "-", starting with a letter or digit, 1–64 characters',
  examples: ['v1.0.0'],
})
const serveName = t.String({ maxLength: 255, description: 'An existing serve', examples: ['my-model-serve'] })
const status = StringEnum(ARTIFACT_STATUSES, {
  description: 'queued → building → succeeded | failed; a prebuilt image is succeeded at once',
})

export namespace ArtifactModel {
  export const createBody = t.Object(
    {
      serve_name: serveName,
      version: artifactVersion,
      github_repo_url: t.Optional(
        t.String({
          pattern: '^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)+/?$',
          maxLength: 512,
          description:
            'An https git URL, without credentials (private repos use the GITHUB_TOKEN of this service). Optional after the first build of a serve: the latest built artifact’s URL is reused',
          examples: ['https://github.com/myorg/my-model'],
        }),
      ),
      branch: t.Optional(
        t.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}$', description: 'Git branch to build; default main', examples: ['main'] }),
      ),
      commit: t.Optional(t.String({ pattern: '^[0-9a-f]{7,40}$', description: 'A commit SHA to build (7–40 lowercase hex)' })),
      dockerfile_path: t.Optional(
        t.String({
          pattern: '^(?!/)(?!.*(^|/)\\.\\.(/|$))[A-Za-z0-9._/-]{1,512}$',
          description: 'Path of the Dockerfile inside the repo, relative; default the builder’s (Dockerfile at the root)',
          examples: ['docker/Dockerfile'],
        }),
      ),
      image: t.Optional(
        t.String({
          pattern:
            '^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]{1,5})?(/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$',
          maxLength: 512,
          description:
            'A prebuilt image reference with a tag or digest (registry/repo:tag or …@sha256:…): registered as is, ready at once. Not with github_repo_url/branch/commit/dockerfile_path',
          examples: ['registry.example.com/ml/my-model:v1.0.0'],
        }),
      ),
    },
    {
      additionalProperties: false,
      examples: [
        { serve_name: 'my-model-serve', version: 'v1.0.0', github_repo_url: 'https://github.com/myorg/my-model', branch: 'main' },
        { serve_name: 'my-model-serve', version: 'v1.0.1', image: 'registry.example.com/ml/my-model:v1.0.1' },
      ],
    },
  )
  export type CreateBody = typeof createBody.static

  const filters = {
    status: t.Optional(StringEnum(ARTIFACT_STATUSES, { description: 'Only artifacts in this status' })),
  }
  export const listQuery = t.Object({
    ...PageQuery,
    serve_name: t.Optional(t.String({ maxLength: 255, description: 'Only the artifacts of this serve (404 if it does not exist)' })),
    ...filters,
  })
  export type ListQuery = typeof listQuery.static
  export const serveListQuery = t.Object({ ...PageQuery, ...filters })

  export const serveParams = t.Object({ serve_name: t.String({ maxLength: 255 }) })
  export const versionParams = t.Object({ serve_name: t.String({ maxLength: 255 }), version: t.String({ maxLength: 255 }) })
  export const jobParams = t.Object({ job_id: t.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'The artifact id' }) })

  const nullableString = (description: string) => t.Union([t.String(), t.Null()], { description })

  export const artifact = Named('Artifact', t.Object({
    id: t.Integer({ description: 'Also the build job id of /artifact_builder_job' }),
    serve_name: t.String(),
    version: t.String(),
    source: StringEnum(ARTIFACT_SOURCES, { description: '`build` (by the Artifact Builder) or `prebuilt` (registered image)' }),
    status,
    image: nullableString('The image reference; for builds, set when the build succeeds'),
    github_repo_url: nullableString('Builds only'),
    branch: nullableString('Builds only'),
    commit: nullableString('Builds only, when given'),
    dockerfile_path: nullableString('Builds only, when given'),
    failure_reason: nullableString("The builder's reason, when the build failed"),
    logs_url: nullableString("The build's logs, when the builder gives a link"),
    created_at: t.String({ format: 'date-time' }),
    updated_at: t.String({ format: 'date-time' }),
  }))
  export type Artifact = typeof artifact.static

  const example = {
    id: 7,
    serve_name: 'my-model-serve',
    version: 'v1.0.0',
    source: 'build',
    status: 'succeeded',
    image: 'docker.io/darwin:my-model-serve_v1.0.0',
    github_repo_url: 'https://github.com/myorg/my-model',
    branch: 'main',
    commit: null,
    dockerfile_path: null,
    failure_reason: null,
    logs_url: 'http://localhost/artifact-builder/logs/42',
    created_at: '2026-11-28T12:00:00.000Z',
    updated_at: '2026-11-28T12:04:10.000Z',
  }
  export const one = Envelope(artifact, example)
  export const page = PageEnvelope(artifact)

  /** The original's build-job view. */
  export const job = Named('BuildJob', t.Object({
    job_id: t.Integer(),
    serve_name: t.String(),
    version: t.String(),
    status,
    logs_url: nullableString("The build's logs, when the builder gives a link"),
    failure_reason: nullableString("The builder's reason, when the build failed"),
    created_at: t.String({ format: 'date-time' }),
    updated_at: t.String({ format: 'date-time' }),
  }))
  export type Job = typeof job.static
  export const oneJob = Envelope(job, {
    job_id: 7,
    serve_name: 'my-model-serve',
    version: 'v1.0.0',
    status: 'building',
    logs_url: 'http://localhost/artifact-builder/logs/42',
    failure_reason: null,
    created_at: '2026-11-28T12:00:00.000Z',
    updated_at: '2026-11-28T12:01:00.000Z',
  })
  export const jobPage = PageEnvelope(job)
}
