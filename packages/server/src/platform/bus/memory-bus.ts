import { type Bus, type BusHandler, subjectMatches } from './bus.ts'

/** The bus of a single node: publications reach this process's subscribers, asynchronously and in order. */
export function createMemoryBus(): Bus {
  const subscriptions = new Set<{ pattern: string[]; handler: BusHandler }>()
  let closed = false
  return {
    kind: 'memory',
    publish(subject, payload) {
      if (closed) return
      queueMicrotask(() => {
        const tokens = subject.split('.')
        for (const subscription of subscriptions) {
          if (!subjectMatches(subscription.pattern, tokens)) continue
          try {
            subscription.handler(subject, payload)
          } catch {
            // One failing subscriber must not stop the others; the database lets it catch up.
          }
        }
      })
    },
    subscribe(pattern, handler) {
      const subscription = { pattern: pattern.split('.'), handler }
      subscriptions.add(subscription)
      return () => subscriptions.delete(subscription)
    },
    onDisconnect: () => () => {},
    onReconnect: () => () => {},
    connected: () => !closed,
    async close() {
      closed = true
      subscriptions.clear()
    },
  }
}
