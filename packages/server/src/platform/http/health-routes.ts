import type { DatabaseHandle } from '../db/database.ts'
import type { Module } from '../module.ts'
import { allow } from './access-rule.ts'
import { Problem } from './problems.ts'

/** Liveness, readiness and the OpenAPI document. */
export const healthModule: Module<{
  database: DatabaseHandle
  draining: () => boolean
  /** Where the compliance archive member runs, as this node knows it: here, on another node, or nowhere. */
  archiveMemberState: () => Promise<'this node' | 'running' | 'none'>
}> = {
  name: 'health',
  routes: async (app, ctx, { database, draining, archiveMemberState }) => {
    app.get('/healthz', { config: { access: allow.anyone }, schema: { hide: true } }, async () => ({ status: 'ok' }))
    // Ready means this node can serve: it is not draining and its database answers. The bus is not part of it:
    // without the bus a node still commits and delivers to its own sockets, and other nodes catch up when it is
    // back; its state is in /metrics and the logs. Neither is the archive member: nodes serve without it, and say so.
    app.get('/readyz', { config: { access: allow.anyone }, schema: { hide: true } }, async (_request, reply) => {
      if (draining()) throw new Problem('server/unavailable', 'shutting down')
      if (!(await database.ready())) throw new Problem('server/unavailable', 'database not ready')
      const { bus } = ctx
      return reply.send({
        status: 'ready',
        database: database.kind,
        bus: bus.kind,
        busConnected: bus.connected(),
        archiveMember: await archiveMemberState(),
      })
    })
    app.get('/openapi.json', { config: { access: allow.anyone }, schema: { hide: true } }, async () => app.swagger())
  },
}
