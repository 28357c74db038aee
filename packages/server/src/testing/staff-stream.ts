import assert from 'node:assert/strict'
import WebSocket from 'ws'
import { eventually } from './eventually.ts'
import type { TestServer } from './harness.ts'

/** A staff stream signed in with a token: the frames it got and how it closed. */
export async function staffStream(server: TestServer, token: string) {
  const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/v1/stream`)
  const frames: Record<string, unknown>[] = []
  const closed = new Promise<{ code: number }>((resolve) => socket.on('close', (code) => resolve({ code })))
  socket.on('message', (data) => frames.push(JSON.parse(String(data))))
  await new Promise((resolve) => socket.on('open', resolve))
  socket.send(JSON.stringify({ type: 'auth', authorization: `Bearer ${token}` }))
  await eventually(
    () => frames[0]?.type,
    (type) => type !== undefined,
  )
  assert.equal(frames[0]?.type, 'ready')
  return { socket, frames, closed }
}
