import { connect } from 'nats'
import type { Bus, BusHandler } from './bus.ts'
import { createMemoryBus } from './memory-bus.ts'
import { type NatsSettings, natsConnectionOptions } from './nats-options.ts'

/**
 * The bus between nodes over NATS (core pub/sub, no persistence needed: the database holds the truth). A publication
 * reaches this node's own subscribers in process, never through NATS (the connection has no echo), so a NATS outage
 * delays nothing on the node that committed; NATS only wakes the other nodes. It reconnects forever; after a
 * reconnect, the onReconnect handlers let each node re-read what it may have missed.
 */
export async function connectNatsBus(
  settings: NatsSettings & { natsUrl: string },
  options: { name?: string } = {},
): Promise<Bus> {
  const url = settings.natsUrl
  const connection = natsConnectionOptions(settings)
  let nc: Awaited<ReturnType<typeof connect>>
  try {
    nc = await connect({
      ...connection,
      name: options.name ?? 'strongroom',
      noEcho: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      waitOnFirstConnect: false,
    })
  } catch (error) {
    const host = (() => {
      try {
        return new URL(url).host
      } catch {
        return 'the configured server'
      }
    })()
    throw new Error(`NATS_URL: cannot connect to ${host} (${(error as { code?: string }).code ?? 'error'})`)
  }
  const local = createMemoryBus()
  const disconnectHandlers = new Set<() => void>()
  const reconnectHandlers = new Set<() => void>()
  let connected = true
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' && connected) {
        connected = false
        for (const handler of disconnectHandlers) handler()
      } else if (status.type === 'reconnect') {
        connected = true
        for (const handler of reconnectHandlers) handler()
      }
    }
  })()
  let closed = false
  return {
    kind: 'nats',
    publish(subject, payload) {
      if (closed) return
      local.publish(subject, payload)
      try {
        nc.publish(subject, payload)
      } catch {
        // Disconnected and the client's buffer is full: the wake-up is lost for the other nodes, which read the
        // message from the database when the bus comes back.
      }
    },
    subscribe(subject, handler: BusHandler) {
      const unsubscribeLocal = local.subscribe(subject, handler)
      const subscription = nc.subscribe(subject, {
        callback: (error, message) => {
          if (error) return
          try {
            handler(message.subject, message.data)
          } catch {
            // A failing subscriber must not break the subscription.
          }
        },
      })
      return () => {
        unsubscribeLocal()
        subscription.unsubscribe()
      }
    },
    onDisconnect(handler) {
      disconnectHandlers.add(handler)
      return () => disconnectHandlers.delete(handler)
    },
    onReconnect(handler) {
      reconnectHandlers.add(handler)
      return () => reconnectHandlers.delete(handler)
    },
    connected: () => connected && !closed && !nc.isClosed(),
    async close() {
      if (closed) return
      closed = true
      disconnectHandlers.clear()
      reconnectHandlers.clear()
      await local.close()
      await nc.drain().catch(() => nc.close())
    },
  }
}
