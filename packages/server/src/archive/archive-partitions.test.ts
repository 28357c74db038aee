import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { eventually } from '../testing/eventually.ts'
import {
  createTestBank,
  createTestDatabase,
  startTestServer,
  type TestDatabase,
  type TestServer,
} from '../testing/harness.ts'
import { needsPostgresAndNats } from '../testing/requirements.ts'
import { secureConversation } from '../testing/secure-members.ts'
import type { ArchiveRecord } from './archive-member.ts'

/** The partition of 2 a conversation falls in, computed here as an operator would check it. */
const partitionOf = (conversationId: string) => createHash('sha256').update(conversationId).digest().readUInt32BE(0) % 2

/**
 * The archive member as two workers (STRONGROOM_ARCHIVE_PARTITION=0/2 and 1/2) on one PostgreSQL and NATS, for a bank
 * whose message rate one process cannot decrypt: between them they read every secure message, each once.
 */
describe('the archive member in two partitions', { skip: needsPostgresAndNats() }, () => {
  let database: TestDatabase
  let dataDir: string
  const workers: { server: TestServer; records: ArchiveRecord[] }[] = []

  const startWorker = async (partition: string) => {
    const records: ArchiveRecord[] = []
    const server = await startTestServer(
      { dataDir, keyFile: path.join(dataDir, 'keyring.json'), archivePartition: partition },
      database,
      { archiveSink: (record) => void records.push(record) },
    )
    workers.push({ server, records })
    return server
  }

  before(async () => {
    database = await createTestDatabase()
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-partitions-'))
  })
  after(async () => {
    for (const { server } of workers) await server.stop()
    await database.drop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  test('every secure message is archived once, by the worker whose partition holds its conversation', async () => {
    const first = await startWorker('0/2')
    const bank = await createTestBank(first)
    // The first secure conversation gives the tenant's archive its identity; the second worker starts after it.
    const conversations = [await secureConversation(first, bank)]
    await startWorker('1/2')
    const inPartition = (p: number) => conversations.filter((c) => partitionOf(c.conversationId) === p).length
    while ((inPartition(0) < 2 || inPartition(1) < 2) && conversations.length < 24) {
      conversations.push(await secureConversation(first, bank))
    }
    for (const c of conversations) {
      await c.agent.secure.send(c.conversationId, `question in ${c.conversationId}`)
      await c.phone.secure.send(c.conversationId, `answer in ${c.conversationId}`)
    }

    const textsBy = (records: ArchiveRecord[]) =>
      records.flatMap((r) =>
        r.kind === 'message' ? [`${r.conversationId}:${new TextDecoder().decode(r.plaintext)}`] : [],
      )
    const expected = conversations.length * 2
    await eventually(
      () => workers.reduce((n, w) => n + textsBy(w.records).length, 0),
      (n) => n >= expected,
      15_000,
    )
    for (const [index, worker] of workers.entries()) {
      const read = textsBy(worker.records)
      const own = conversations.filter((c) => partitionOf(c.conversationId) === index)
      assert.ok(own.length >= 2)
      assert.deepEqual(
        [...read].sort(),
        own
          .flatMap((c) => [
            `${c.conversationId}:question in ${c.conversationId}`,
            `${c.conversationId}:answer in ${c.conversationId}`,
          ])
          .sort(),
        `worker ${index}/2 reads exactly its own conversations, each message once`,
      )
    }
  })
})
