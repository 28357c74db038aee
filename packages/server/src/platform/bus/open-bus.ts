import type { Bus } from './bus.ts'
import { createMemoryBus } from './memory-bus.ts'
import { connectNatsBus } from './nats-bus.ts'

/** NATS when a URL is configured (several nodes), the in-memory bus otherwise (one node). */
export async function openBus(natsUrl: string | undefined): Promise<Bus> {
  return natsUrl ? connectNatsBus(natsUrl) : createMemoryBus()
}
