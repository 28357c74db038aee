import assert from 'node:assert/strict'
import { enrolDevice, type MemberClient, StaffClient, StaffToken } from '@strongroom/sdk'
import {
  type DeliveryService,
  encryptedStore,
  generateStoreKey,
  httpDeliveryService,
  MemoryStore,
  nodeCryptoProvider,
  type SecureEvent,
  SecureMessaging,
} from '@strongroom/sdk/mls-node'
import type { ArchiveRecord } from '../archive/archive-member.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from './harness.ts'

/** A test server whose archive member hands what it decrypts to `archived`, and a bank in it. */
export async function startArchivingServer() {
  const archived: ArchiveRecord[] = []
  const server = await startTestServer({}, undefined, { archiveSink: (record) => void archived.push(record) })
  const bank = await createTestBank(server)
  /** The texts the archive member decrypted in a conversation, in log order, a copy sent again counted once. */
  const archivedTexts = (conversationId: string) => {
    const bySeq = new Map<number, string>()
    for (const r of archived) {
      if (r.kind !== 'message' || r.conversationId !== conversationId) continue
      const seq = r.copyOf ?? r.seq
      if (!bySeq.has(seq)) bySeq.set(seq, new TextDecoder().decode(r.plaintext))
    }
    return [...bySeq].sort(([a], [b]) => a - b).map(([, text]) => text)
  }
  return { server, bank, archived, archivedTexts }
}

/**
 * A member whose store is encrypted, with the raw store kept to show what a thief of the device would see. `delivery`
 * may wrap the delivery service (to hold a commit back, or to fail after it was accepted).
 */
export async function openMember<Client extends MemberClient>(
  client: Client,
  delivery: (inner: DeliveryService) => DeliveryService = (inner) => inner,
) {
  const raw = new MemoryStore()
  const events: SecureEvent[] = []
  const secure = await SecureMessaging.open(delivery(httpDeliveryService(client)), {
    provider: nodeCryptoProvider,
    store: encryptedStore(raw, await generateStoreKey()),
    onEvent: (event) => {
      events.push(event)
    },
  })
  return { client, secure, raw, events }
}

export const texts = (events: SecureEvent[]) => events.flatMap((e) => (e.kind === 'message' ? [e.text] : []))

export async function enrolPhone(server: TestServer, bank: TestBank, label: string) {
  const enrolled = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label })
  return { ...(await openMember(enrolled.client)), deviceId: enrolled.device.id }
}

/** A secure conversation between a customer's phone, the bank's agent and the archive, all joined. */
export async function secureConversation(server: TestServer, bank: TestBank) {
  const agentClient = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
  const phone = await enrolPhone(server, bank, 'phone')
  const agent = await openMember(agentClient)
  const conversation = await agentClient.createConversation({
    customerId: bank.customerId,
    assignedStaffId: bank.agentId,
    deviceIds: [phone.deviceId],
  })
  await agent.secure.createGroup(conversation.id, [
    { kind: 'device', id: phone.deviceId },
    { kind: 'archive', id: 'archive' },
  ])
  assert.deepEqual(await phone.secure.acceptWelcomes(), [conversation.id])
  return { conversationId: conversation.id, agent, phone, agentClient }
}
