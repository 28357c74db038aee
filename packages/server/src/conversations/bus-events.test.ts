/**
 * The archive member skips, without parsing, the committed batches that hold no message it reads. The test it uses
 * must never miss one (a secure message would go unarchived until the next catch-up), whatever else the batch holds.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MLS_CONTENT_TYPE } from '@strongroom/sdk/protocol'
import type { Bus } from '../platform/bus/bus.ts'
import {
  contentTypeTest,
  type MessagesCommittedEvent,
  publishMessagesCommitted,
  type WireMessage,
} from './bus-events.ts'

/** The payload `publishMessagesCommitted` puts on the bus for these messages. */
function published(messages: WireMessage[]): Uint8Array {
  let payload: Uint8Array | undefined
  const bus = { publish: (_subject: string, bytes: Uint8Array) => (payload = bytes) } as unknown as Bus
  const event: MessagesCommittedEvent = { tenantId: 'ten_1', messages }
  publishMessagesCommitted(bus, event)
  return payload as Uint8Array
}

function message(contentType: string, clientMessageId: string): WireMessage {
  return {
    id: 'msg_1',
    conversationId: 'cnv_1',
    seq: 1,
    sender: { kind: 'device', id: 'dev_1' },
    clientMessageId,
    contentType,
    ciphertext: 'AAEC',
    createdAt: new Date(0).toISOString(),
    expiresAt: null,
  }
}

test('a batch holding a message of a content type read is found, wherever it is in the batch', () => {
  const archived = contentTypeTest([MLS_CONTENT_TYPE, 'application/vnd.example+sealed'])
  const plain = message('text/plain', 'p')
  assert.equal(archived(published([plain, message(MLS_CONTENT_TYPE, 'm'), plain])), true)
  assert.equal(archived(published([message('application/vnd.example+sealed', 's')])), true)
})

test('a batch of other messages is skipped, even one whose text names a content type read', () => {
  const archived = contentTypeTest([MLS_CONTENT_TYPE])
  assert.equal(archived(published([message('text/plain', 'a')])), false)
  // The quotes are escaped in the JSON: the text cannot pass for the field.
  const lookalike = message('text/plain', `"contentType":"${MLS_CONTENT_TYPE}"`)
  assert.equal(archived(published([lookalike])), false)
  assert.equal(archived(published([message(`${MLS_CONTENT_TYPE}x`, 'b')])), false)
})

test('a payload that is a view into a larger buffer is read within its bounds only', () => {
  const archived = contentTypeTest([MLS_CONTENT_TYPE])
  const secure = Buffer.from(published([message(MLS_CONTENT_TYPE, 'm')]))
  const plain = Buffer.from(published([message('text/plain', 'p')]))
  const both = Buffer.concat([plain, secure])
  assert.equal(archived(both.subarray(0, plain.length)), false)
  assert.equal(archived(both.subarray(plain.length)), true)
})
