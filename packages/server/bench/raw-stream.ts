import { randomBytes } from 'node:crypto'
import type { MemberClient } from '@strongroom/sdk'
import WebSocket from 'ws'

/**
 * A lean load generator for the plain path: the stream protocol spoken with raw frames over `ws`, with nothing of the
 * SDK's per-message work (no JSON parse of what comes back, no base64 per message, no outbox), so that what the
 * benchmark measures is the server, not the client. Each device signs in once, as the SDK does (a DPoP proof).
 */
export class RawStream {
  readonly socket: WebSocket
  #onFrame: (frame: string) => void = () => {}

  private constructor(socket: WebSocket) {
    this.socket = socket
    socket.on('message', (data) => this.#onFrame(data.toString()))
  }

  static async open(client: MemberClient): Promise<RawStream> {
    const httpUrl = `${client.baseUrl}/v1/stream`
    const socket = new WebSocket(httpUrl.replace(/^http/, 'ws'), { perMessageDeflate: false })
    await new Promise((resolve, reject) => {
      socket.once('open', resolve)
      socket.once('error', reject)
    })
    const stream = new RawStream(socket)
    const ready = new Promise<void>((resolve, reject) => {
      stream.#onFrame = (frame) => {
        if (frame.startsWith('{"type":"ready"')) resolve()
        else if (frame.startsWith('{"type":"error"')) reject(new Error(frame))
      }
    })
    socket.send(JSON.stringify({ type: 'auth', ...(await client.credentials.authorize('GET', httpUrl)) }))
    await ready
    return stream
  }

  onFrame(handler: (frame: string) => void): void {
    this.#onFrame = handler
  }

  close(): void {
    this.socket.terminate()
  }
}

/** The number after `"name":` in a frame, read without parsing the frame. */
export function numberField(frame: string, name: string): number {
  const at = frame.indexOf(`"${name}":`) + name.length + 3
  let end = at
  while (end < frame.length && frame.charCodeAt(end) >= 48 && frame.charCodeAt(end) <= 57) end++
  return Number(frame.slice(at, end))
}

/** The string after `"name":"` in a frame, read without parsing the frame. */
export function stringField(frame: string, name: string): string {
  const at = frame.indexOf(`"${name}":"`) + name.length + 4
  return frame.slice(at, frame.indexOf('"', at))
}

/** One sender and one receiver of a conversation, driven with raw frames. */
export interface RawPair {
  sender: RawStream
  receiver: RawStream
  conversationId: string
}

/**
 * Sends `messages` per pair with at most `window` unacknowledged per sender (and, with a rate, paced to it across all
 * pairs); resolves when every message has reached its receiver, with each one's latency from send to delivery. The
 * client message id carries the pair and the message's number, so delivery is matched by reading one field.
 */
export async function rawPhase(
  pairs: RawPair[],
  options: { messages: number; window: number; size: number; ratePerSec?: number | undefined; tag: string },
): Promise<{ latencies: number[]; lastDelivery: number }> {
  const payload = randomBytes(options.size).toString('base64')
  const latencies: number[] = []
  let lastDelivery = 0
  const interval = options.ratePerSec ? (1000 * pairs.length) / options.ratePerSec : 0
  const started = performance.now()
  await Promise.all(
    pairs.map(({ sender, receiver, conversationId }, index) => {
      const sentAt = new Float64Array(options.messages)
      let sent = 0
      let acknowledged = 0
      let received = 0
      let lastSeq = 0
      let next = started + (interval * index) / pairs.length
      let timer: NodeJS.Timeout | undefined
      const prefix = `{"type":"send","conversationId":"${conversationId}","contentType":"application/octet-stream","ciphertext":"${payload}","ref":"${options.tag}.${index}.`
      const sendOne = () => {
        const id = `${options.tag}.${index}.${sent}`
        sentAt[sent] = performance.now()
        sender.socket.send(`${prefix}${sent}","clientMessageId":"${id}"}`)
        sent++
      }
      const pump = () => {
        timer = undefined
        while (sent < options.messages && sent - acknowledged < options.window) {
          if (interval) {
            const wait = next - performance.now()
            if (wait > 0) {
              timer = setTimeout(pump, wait)
              return
            }
            next += interval
          }
          sendOne()
        }
      }
      return new Promise<void>((resolve, reject) => {
        sender.onFrame((frame) => {
          if (frame.startsWith('{"type":"sent"')) {
            acknowledged++
            if (!timer) pump()
          } else if (frame.startsWith('{"type":"error"')) reject(new Error(frame))
        })
        const acks = setInterval(() => {
          if (lastSeq > 0) receiver.socket.send(`{"type":"ack","conversationId":"${conversationId}","seq":${lastSeq}}`)
        }, 200)
        receiver.onFrame((frame) => {
          if (!frame.startsWith('{"type":"message"')) return
          const id = stringField(frame, 'clientMessageId')
          if (!id.startsWith(`${options.tag}.`)) return
          const n = Number(id.slice(id.lastIndexOf('.') + 1))
          lastSeq = numberField(frame, 'seq')
          lastDelivery = performance.now()
          latencies.push(lastDelivery - (sentAt[n] as number))
          if (++received === options.messages) {
            clearInterval(acks)
            resolve()
          }
        })
        pump()
      })
    }),
  )
  return { latencies, lastDelivery }
}
