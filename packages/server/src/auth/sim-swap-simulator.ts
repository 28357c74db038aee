import { Type } from '@sinclair/typebox'
import { allow } from '../platform/http/access-rule.ts'
import type { App } from '../platform/http/fastify.ts'

const PhoneNumber = Type.String({ pattern: '^\\+[1-9][0-9]{4,14}$', description: 'E.164' })

/**
 * Dev mode only: a carrier that answers the CAMARA SIM Swap API from a table that developers and tests fill in, so
 * that the whole flow runs on one machine through the real wire format.
 */
export async function simSwapSimulatorRoutes(app: App): Promise<void> {
  const swaps = new Map<string, Date>()
  const hidden = { hide: true, tags: ['dev'] }

  app.put(
    '/dev/camara/sim-swaps/:phoneNumber',
    {
      // Dev mode only (the server refuses to register them in production): the carrier simulator.
      config: { access: allow.anyone },
      schema: {
        ...hidden,
        params: Type.Object({ phoneNumber: PhoneNumber }),
        body: Type.Object({ swappedAt: Type.String({ format: 'date-time' }) }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      swaps.set(request.params.phoneNumber, new Date(request.body.swappedAt))
      return reply.status(204).send()
    },
  )

  app.post(
    '/dev/camara/sim-swap/v0/check',
    {
      config: { access: allow.anyone },
      schema: {
        ...hidden,
        body: Type.Object({
          phoneNumber: PhoneNumber,
          maxAge: Type.Optional(Type.Integer({ minimum: 1, maximum: 2400 })),
        }),
      },
    },
    async (request) => {
      const swappedAt = swaps.get(request.body.phoneNumber)
      const maxAgeMs = (request.body.maxAge ?? 240) * 3_600_000
      return { swapped: swappedAt !== undefined && Date.now() - swappedAt.getTime() <= maxAgeMs }
    },
  )

  app.post(
    '/dev/camara/sim-swap/v0/retrieve-date',
    { config: { access: allow.anyone }, schema: { ...hidden, body: Type.Object({ phoneNumber: PhoneNumber }) } },
    async (request) => ({ latestSimChange: swaps.get(request.body.phoneNumber)?.toISOString() ?? null }),
  )
}
