import type { MemberClient, MessageStream } from '@strongroom/sdk'
import { MemoryStore, nodeCryptoProvider, SecureMessaging } from '@strongroom/sdk/mls-node'

/** A pair of a customer's devices in a secure conversation with the archive: one sends, the other reads. */
export interface SecurePair {
  conversationId: string
  sender: SecureMessaging
  senderStream: MessageStream
  receiverStream: MessageStream
}

/** What each receiver decrypted: the time it took from the sender's encrypt call, per message. */
export interface SecureDeliveries {
  latencies: number[]
  delivered: number
  lastDelivery: number
}

/**
 * Makes the pair's secure conversation as an app does: the sender's member makes the MLS group with the receiver and
 * the bank's archive, the receiver joins by the welcome, both follow their stream, and the sender sends over it. The
 * receiver decrypts every message it is delivered (in order, as `receive` does) and reports it to `deliveries`.
 */
export async function securePair(
  a: MemberClient,
  b: MemberClient,
  conversationId: string,
  receiverDeviceId: string,
  deliveries: SecureDeliveries,
  /** Where each stream starts in the devices' other conversations (past what the plain phases sent). */
  cursors: Record<string, number>,
): Promise<SecurePair> {
  const sender = await SecureMessaging.open(a, { provider: nodeCryptoProvider, store: new MemoryStore() })
  const receiver = await SecureMessaging.open(b, { provider: nodeCryptoProvider, store: new MemoryStore() })
  await sender.createGroup(conversationId, [
    { kind: 'device', id: receiverDeviceId },
    { kind: 'archive', id: 'archive' },
  ])
  await receiver.acceptWelcomes()
  // The sender reads its own messages as they come back, as an app does (its member passes over them).
  const senderStream = a.stream({ cursors, onMessage: (message) => void sender.receive(message) })
  const receiverStream = b.stream({
    cursors,
    onMessage: (message) => {
      void receiver.receive(message).then((events) => {
        for (const event of events) {
          if (event.kind !== 'message') continue
          const sentAt = new DataView(event.bytes.buffer, event.bytes.byteOffset).getFloat64(0)
          deliveries.lastDelivery = performance.now()
          deliveries.latencies.push(performance.timeOrigin + deliveries.lastDelivery - sentAt)
          deliveries.delivered++
        }
      })
    },
  })
  await Promise.all([senderStream.ready(), receiverStream.ready()])
  sender.sendOver(senderStream)
  return { conversationId, sender, senderStream, receiverStream }
}

/**
 * Each sender keeps `window` secure sends in flight (encrypted and on the stream, not yet acknowledged); with a rate,
 * sends are paced to it across all senders. The first 8 bytes of each plaintext are the time it was handed to the SDK.
 */
export async function securePhase(
  pairs: SecurePair[],
  options: { messages: number; window: number; size: number; ratePerSec?: number | undefined },
): Promise<void> {
  const started = performance.now()
  const interval = options.ratePerSec ? (1000 * pairs.length) / options.ratePerSec : 0
  await Promise.all(
    pairs.map(async ({ sender, conversationId }, index) => {
      let next = started + (interval * index) / pairs.length
      const inFlight = new Set<Promise<unknown>>()
      for (let sent = 0; sent < options.messages; sent++) {
        if (interval) {
          const wait = next - performance.now()
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
          next += interval
        }
        const bytes = new Uint8Array(options.size)
        new DataView(bytes.buffer).setFloat64(0, performance.timeOrigin + performance.now())
        const send = sender.send(conversationId, bytes)
        inFlight.add(send)
        const done = () => inFlight.delete(send)
        send.then(done, done)
        if (inFlight.size >= options.window) await Promise.race(inFlight)
      }
      await Promise.all(inFlight)
    }),
  )
}
