import type { GuessKind, RateLimitPolicy } from '@strongroom/sdk/protocol'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { recordAudit, SYSTEM_CHAIN } from '../audit/events.ts'
import type { ServerContext } from '../platform/context.ts'
import type { App } from '../platform/http/fastify.ts'
import { actorOf } from '../platform/http/principal.ts'
import { Problem } from '../platform/http/problems.ts'
import { addHits, type CounterHit, takeBackHits } from './counters.ts'
import { RateLimitPolicies } from './policy.ts'
import { RequestCounter } from './request-counter.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Each failed try on this route is a guess at a secret, counted against the tenant's failed-attempt limits. */
    guesses?: GuessKind
  }
  interface FastifyRequest {
    /** The guess counters this request added to, taken back when it succeeds. */
    guessCounters?: Omit<CounterHit, 'hits'>[]
  }
}

/** Probes and scrapes, not clients: a load balancer's health checks come from one address many times a second. */
const UNLIMITED_ROUTES = new Set(['/healthz', '/readyz', '/metrics'])

export interface RateLimits {
  /** Adds what this node counted to the shared counters one last time. */
  close(): Promise<void>
}

/**
 * Rate limits shared by every node. Every request counts against its IP address (before authentication, so a flood
 * costs no token lookups), then against its device, customer and tenant; the routes marked `guesses` also count
 * each failed attempt, per IP and per device and customer, against the tenant's tighter failed-attempt limits, in
 * the database one attempt at a time. Passing a limit answers 429 with Retry-After; a guess limit tripping is
 * audited. Call before the access control is installed: the IP limit runs before authentication.
 */
export function installRateLimits(app: App, ctx: ServerContext): RateLimits {
  const counter = new RequestCounter(ctx.db, ctx.log)
  const policies = new RateLimitPolicies(ctx)

  const refuse = (reply: FastifyReply, limit: string, key: string, retryAfterSeconds: number) => {
    ctx.metrics.rateLimited.inc({ limit, key })
    reply.header('retry-after', String(retryAfterSeconds))
    const what = limit === 'requests' ? 'requests' : `failed ${limit} attempts`
    return new Problem('request/rate-limited', `too many ${what} from this ${key}; try again in ${retryAfterSeconds} s`)
  }

  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.url === undefined || UNLIMITED_ROUTES.has(request.routeOptions.url)) return
    const over = counter.hit(`requests:ip:${request.ip}`, ctx.config.rateLimitIpPerMinute, 60)
    if (over) throw refuse(reply, 'requests', 'ip', over.retryAfterSeconds)
  })

  // After authentication (the access control's onRequest hook), before the body is read.
  app.addHook('preParsing', async (request, reply) => {
    if (request.routeOptions.url === undefined || UNLIMITED_ROUTES.has(request.routeOptions.url)) return
    const principal = request.principal
    const policy = await policies.of(principal?.tenantId)
    if (principal) {
      const perMinute = policy.requestsPerMinute
      const keys: [string, string, number][] = [['tenant', principal.tenantId, perMinute.tenant]]
      if (principal.kind === 'device') {
        keys.push(
          ['device', principal.deviceId, perMinute.device],
          ['customer', principal.customerId, perMinute.customer],
        )
      }
      for (const [kind, id, limit] of keys) {
        const over = counter.hit(`requests:${kind}:${id}`, limit, 60)
        if (over) throw refuse(reply, 'requests', kind, over.retryAfterSeconds)
      }
    }
    const guesses = request.routeOptions.config.guesses
    if (guesses) await countGuess(request, reply, guesses, policy)
  })

  async function countGuess(request: FastifyRequest, reply: FastifyReply, kind: GuessKind, policy: RateLimitPolicy) {
    const { windowMinutes, perAddress, perDevice } = policy.failedAttempts
    const windowSeconds = windowMinutes * 60
    const principal = request.principal
    const subjects: { subject: string; id: string; limit: number }[] = [
      { subject: 'ip', id: request.ip, limit: perAddress[kind] },
    ]
    const deviceLimit = (perDevice as Partial<Record<GuessKind, number>>)[kind]
    if (principal?.kind === 'device' && deviceLimit !== undefined) {
      subjects.push(
        { subject: 'device', id: principal.deviceId, limit: deviceLimit },
        { subject: 'customer', id: principal.customerId, limit: deviceLimit },
      )
    }
    const keyOf = (subject: string, id: string) => `guesses:${kind}:${subject}:${id}`
    const hits = subjects.map(({ subject, id }) => ({ key: keyOf(subject, id), windowSeconds, hits: 1 }))
    const totals = await addHits(ctx.db, hits)
    request.guessCounters = hits
    for (const { subject, id, limit } of subjects) {
      const total = totals.get(keyOf(subject, id))
      if (!total || total.hits <= limit) continue
      // Audited once a window: the attempt that first passes the limit.
      if (total.hits === limit + 1) {
        await recordAudit(ctx.db, {
          tenantId: principal?.tenantId ?? SYSTEM_CHAIN,
          actor: principal ? actorOf(principal) : { kind: 'system', id: null },
          action: 'rate-limit.trip',
          outcome: 'denied',
          reason: kind,
          details: { limitedBy: subject, limit, windowMinutes, route: request.routeOptions.url ?? '' },
        })
      }
      request.guessCounters = undefined
      throw refuse(reply, kind, subject, Math.max(1, total.resetsAt - Math.floor(Date.now() / 1000)))
    }
  }

  // A success (or the server's own failure) was not a wrong guess: it is taken back before the answer leaves, so
  // that a client's next try (sent the moment it reads this answer) never finds it still counted.
  app.addHook('onSend', async (request, reply, payload) => {
    const counted = request.guessCounters
    if (!counted || (reply.statusCode >= 400 && reply.statusCode < 500)) return payload
    request.guessCounters = undefined
    await takeBackHits(ctx.db, counted).catch((error: unknown) => {
      ctx.log.warn({ err: error }, 'a guess counter could not be taken back')
    })
    return payload
  })

  return { close: () => counter.close() }
}
