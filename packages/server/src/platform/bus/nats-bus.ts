import { connect } from 'nats'
import type { Bus, BusHandler } from './bus.ts'
import { type NatsSettings, natsConnectionOptions } from './nats-options.ts'

const READY_TIMEOUT_MS = 2000

/**
 * The bus between nodes over NATS (core pub/sub, no persistence needed: the database holds the truth). It reconnects
 * forever; after a reconnect, the onReconnect handlers let each node re-read what it may have missed.
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
  const reconnectHandlers = new Set<() => void>()
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'reconnect') for (const handler of reconnectHandlers) handler()
    }
  })()
  let closed = false
  return {
    kind: 'nats',
    publish(subject, payload) {
      if (closed) return
      try {
        nc.publish(subject, payload)
      } catch {
        // Disconnected and the client's buffer is full: the wake-up is lost, the database still has the message.
      }
    },
    subscribe(subject, handler: BusHandler) {
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
      return () => subscription.unsubscribe()
    },
    onReconnect(handler) {
      reconnectHandlers.add(handler)
      return () => reconnectHandlers.delete(handler)
    },
    async ready() {
      if (closed || nc.isClosed()) return false
      try {
        await Promise.race([
          nc.flush(),
          new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), READY_TIMEOUT_MS).unref()),
        ])
        return true
      } catch {
        return false
      }
    },
    async close() {
      if (closed) return
      closed = true
      reconnectHandlers.clear()
      await nc.drain().catch(() => nc.close())
    },
  }
}
