import type { FastifyInstance } from 'fastify'

/**
 * Lets a scope take `application/x-www-form-urlencoded` bodies (OAuth's token endpoint, OIDC back-channel logout):
 * an object of the fields, for the route's schema to check like any JSON body. A field sent twice, which OAuth forbids
 * (RFC 6749 §3.2), stays a list of its values, so a schema that wants one string refuses it rather than the last value
 * winning.
 */
export function acceptFormBodies(scope: Pick<FastifyInstance, 'addContentTypeParser'>): void {
  scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    const fields: Record<string, string | string[]> = {}
    for (const [name, value] of new URLSearchParams(body as string)) {
      const earlier = fields[name]
      fields[name] = earlier === undefined ? value : [...[earlier].flat(), value]
    }
    done(null, fields)
  })
}
