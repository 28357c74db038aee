import type { Bus } from './bus.ts'
import { createMemoryBus } from './memory-bus.ts'
import { connectNatsBus } from './nats-bus.ts'
import type { NatsSettings } from './nats-options.ts'

/** NATS when a URL is configured (several nodes), the in-memory bus otherwise (one node). */
export async function openBus(settings: NatsSettings): Promise<Bus> {
  const { natsUrl } = settings
  return natsUrl ? connectNatsBus({ ...settings, natsUrl }) : createMemoryBus()
}
