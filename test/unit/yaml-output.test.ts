/**
 * YAML previews read back, by a YAML 1.1 reader (kubectl, Helm: go-yaml) as by a YAML 1.2 one, as the
 * same objects: every string such a reader would take for a boolean, a number, a null or a date is quoted.
 */
import { describe, expect, test } from 'bun:test'
import YAML from 'yaml'
import { loadConfig } from '../../src/config'
import { type RenderInput, renderServe, toYaml } from '../../src/render'

const TRAPS = ['yes', 'Yes', 'NO', 'on', 'Off', 'y', 'N', 'true', 'False', '~', 'null', 'Null', '', '1_000', '0x1F', '0o17', '017', '0b101', '1:20', '1:20:30', '-.inf', '.NaN', '1e3', '+12', '3.', '2001-12-14', '2001-12-14t21:59:43.10-05:00', '<<', '=', ' lead', 'trail ', '#c', '- x', 'a: b', '@x', '`x', '!tag', '&a', '*a', '%x', '0', '-1', '12e03', '190:20:30.15']

describe('YAML output', () => {
  test('each trap string survives a YAML 1.1 and a YAML 1.2 reader', () => {
    const object = Object.fromEntries(TRAPS.map((value, i) => [`k${i}`, value]))
    const keys = Object.fromEntries(TRAPS.filter((v) => v !== '<<').map((value) => [value, value]))
    const text = toYaml([{ values: object, keys, list: TRAPS }])
    for (const version of ['1.1', '1.2'] as const) {
      expect(YAML.parse(text, { version })).toEqual({ values: object, keys, list: TRAPS })
    }
  })

  test('rendered manifests with such values (env vars, annotations) read back unchanged under YAML 1.1', () => {
    const input: RenderInput = {
      serve: { name: 'fraud', type: 'api', description: 'yes' },
      environment: { name: 'prod', domain_suffix: '.example.com', namespace: 'ml', cluster_name: 'on', security_group: 'no', subnets: '', workflow_url: '' },
      infra: { backend_type: 'fastapi', cores: 1, memory: 2, min_replicas: 1, max_replicas: 2, node_capacity_type: 'spot' },
      artifact: { version: '1_000', image: 'r/fraud:1_000' },
      deployment: { strategy: 'rolling', environment_variables: Object.fromEntries(TRAPS.map((v, i) => [`V${i}`, v])) },
    }
    const rendered = renderServe(input, loadConfig({ ENV: 'prod', ENABLE_OTEL: 'false' }))
    const text = toYaml(rendered.manifests)
    const docs = YAML.parseAllDocuments(text, { version: '1.1' }).map((doc) => doc.toJS())
    expect(docs).toEqual(JSON.parse(JSON.stringify(rendered.manifests)))
    expect(text).toContain('"1_000"')
    expect(text).toContain('"yes"')
  })

  test('still sorted and byte-identical for the same input', () => {
    expect(toYaml([{ b: 'on', a: { d: 1, c: 'x' } }])).toBe('a:\n  c: x\n  d: 1\nb: "on"\n')
  })
})
