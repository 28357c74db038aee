import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { base64ToBytes, type Message, StaffToken, StrongroomClient } from '@strongroom/sdk'
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, UnknownRow } from 'kysely'
import WebSocket from 'ws'
import { loadConfig } from '../platform/config.ts'
import { type DatabaseHandle, openDatabase } from '../platform/db/database.ts'
import { eventually } from '../testing/eventually.ts'
import {
  createTestBank,
  createTestDatabase,
  startTestServer,
  type TestBank,
  type TestDatabase,
  type TestServer,
} from '../testing/harness.ts'

/**
 * Runs a hook once, after the next read of a member's conversation cursors has returned from the database and before
 * the stream sees its result: the moment a wake-up used to be lost (issue 21: read the cursors, then register).
 */
class AfterCursorRead implements KyselyPlugin {
  #armed: (() => Promise<void>) | undefined
  readonly #cursorReads = new WeakSet<object>()

  arm(hook: () => Promise<void>): void {
    this.#armed = hook
  }

  transformQuery(args: PluginTransformQueryArgs) {
    if (args.node.kind !== 'SelectQueryNode') return args.node
    const shape = JSON.stringify(args.node, (_key, value) => (typeof value === 'bigint' ? String(value) : value))
    if (shape.includes('"delivered_seq"') && shape.includes('"last_seq"')) this.#cursorReads.add(args.queryId)
    return args.node
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const hook = this.#armed
    if (hook && this.#cursorReads.has(args.queryId)) {
      this.#armed = undefined
      await hook()
    }
    return args.result
  }
}

describe('a stream signing in', () => {
  let testDatabase: TestDatabase
  let database: DatabaseHandle
  let dataDir: string
  const cursorRead = new AfterCursorRead()
  let server: TestServer
  let bank: TestBank
  let agent: StrongroomClient

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'sr-sign-in-'))
    testDatabase = await createTestDatabase()
    const opened = await openDatabase(loadConfig({}, { dataDir, databaseUrl: testDatabase.url }), { inMemory: true })
    database = { ...opened, db: opened.db.withPlugin(cursorRead) }
    server = await startTestServer({}, testDatabase, { database })
    bank = await createTestBank(server)
    agent = new StrongroomClient({
      baseUrl: server.url,
      credentials: new StaffToken(bank.agentToken),
      WebSocket: WebSocket as never,
    })
  })
  after(async () => {
    await server.stop()
    await database.close()
    await testDatabase.drop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  test('a message committed between its cursor read and its registration is delivered at once, not with the next one', async () => {
    const { client: phone } = await bank.enrol('phone')
    const conversationId = (
      await agent.createConversation({ customerId: bank.customerId, assignedStaffId: bank.agentId })
    ).id
    const texts = (messages: Message[]) => messages.map((m) => new TextDecoder().decode(base64ToBytes(m.ciphertext)))
    // The phone has read everything so far: its cursor equals the conversation's last sequence number.
    const earlier: Message[] = []
    const first = phone.stream({ onMessage: (message) => earlier.push(message) })
    await first.ready()
    await agent.sendMessage(conversationId, { contentType: 'text/plain', ciphertext: new TextEncoder().encode('one') })
    assert.deepEqual(
      texts(
        await eventually(
          () => earlier,
          (seen) => seen.length >= 1,
        ),
      ),
      ['one'],
    )
    const cursors = first.cursors
    first.close()

    // The agent's next message commits (and its wake-up is published) after the phone's new stream read its cursors.
    cursorRead.arm(async () => {
      await agent.sendMessage(conversationId, {
        contentType: 'text/plain',
        ciphertext: new TextEncoder().encode('two'),
      })
    })
    const received: Message[] = []
    const stream = phone.stream({ cursors, onMessage: (message) => received.push(message) })
    try {
      await stream.ready()
      assert.deepEqual(
        texts(
          await eventually(
            () => received,
            (seen) => seen.length >= 1,
            3000,
          ),
        ),
        ['two'],
      )
      assert.deepEqual(
        received.map((m) => m.seq),
        [2],
      )
    } finally {
      stream.close()
    }
  })
})
