import type { Command } from './command.ts'
import type { ServerContext } from './context.ts'
import type { App } from './http/fastify.ts'
import type { EncryptedColumn } from './keyring/reencrypt.ts'

/**
 * A capability as the server assembles it. `server.ts` is an ordered list of these: adding a capability is adding
 * its folder and one line there. `Services` names what the module needs from the assembly (another capability's
 * function, a signing key, a running service); the server provides a superset of every module's.
 */
export interface Module<Services = Record<never, never>> {
  /** The capability's folder. */
  readonly name: string
  /**
   * Registers the module's routes. Each route says who may call it in `config: { access: allow.… }`; a route without
   * a rule stops the server from starting.
   */
  readonly routes?: (app: App, ctx: ServerContext, services: Services) => Promise<void>
  /** Deletes what has expired, or tells the streams it did, once a minute on every node (never two passes at once). */
  readonly housekeeping?: (ctx: ServerContext, services: Services) => Promise<unknown>
  /** Its `strongroom` commands: `strongroom help` lists every module's, in module order. */
  readonly commands?: readonly Command[]
  /** The columns it seals with the tenant's data key: what `keys reencrypt` and `keys retire` walk. */
  readonly encryptedColumns?: readonly EncryptedColumn[]
}

/**
 * Registers each module's routes, in order, each route function in a scope of its own so that the hooks and parsers
 * one adds stay with it.
 */
export async function registerModules<Services>(
  app: App,
  modules: readonly Module<Services>[],
  ctx: ServerContext,
  services: Services,
): Promise<void> {
  for (const module of modules) {
    const routes = module.routes
    if (routes) await app.register(async (scope) => routes(scope, ctx, services))
  }
}
