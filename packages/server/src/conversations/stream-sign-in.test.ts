import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { base64ToBytes, type Message, StaffClient, StaffToken } from '@strongroom/sdk'
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
  let agent: StaffClient

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'sr-sign-in-'))
    testDatabase = await createTestDatabase()
    const opened = await openDatabase(loadConfig({}, { dataDir, databaseUrl: testDatabase.url }), { inMemory: true })
    database = { ...opened, db: opened.db.withPlugin(cursorRead) }
    server = await startTestServer({}, testDatabase, { database })
    bank = await createTestBank(server)
    agent = new StaffClient({
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

  test('a message whose wake-up never reached the node holding the socket is delivered by the sweep, not by the next message', async () => {
    // A second node on the same database and keys but its own in-memory bus: nothing it commits wakes the first,
    // as when a node is killed between its commit and its publish, or NATS drops the wake-up.
    const silentNode = await startTestServer({ keyFile: server.config.keyFile, natsUrl: undefined }, testDatabase, {
      database,
    })
    try {
      const { client: phone } = await bank.enrol('phone on the sweep')
      const conversationId = (
        await agent.createConversation({ customerId: bank.customerId, assignedStaffId: bank.agentId })
      ).id
      const received: Message[] = []
      const stream = phone.stream({ onMessage: (message) => received.push(message) })
      try {
        await stream.ready()
        const agentOnSilentNode = new StaffClient({
          baseUrl: silentNode.url,
          credentials: new StaffToken(bank.agentToken),
          WebSocket: WebSocket as never,
        })
        const sent = await agentOnSilentNode.sendMessage(conversationId, {
          contentType: 'text/plain',
          ciphertext: new TextEncoder().encode('woken by the sweep'),
        })
        const started = Date.now()
        const seen = await eventually(
          () => received,
          (messages) => messages.length >= 1,
          8_000,
        )
        assert.deepEqual(
          seen.map((m) => [m.seq, new TextDecoder().decode(base64ToBytes(m.ciphertext))]),
          [[sent.seq, 'woken by the sweep']],
        )
        console.log(`delivered by the sweep ${Date.now() - started} ms after the commit (two sweeps at most: 4 s)`)
        const metrics = await (await fetch(`${server.url}/metrics`)).text()
        assert.match(metrics, /strongroom_stream_missed_wake_ups_total [1-9]/)
      } finally {
        stream.close()
      }
    } finally {
      await silentNode.stop()
    }
  })
})
