/**
 * MLS costs on this machine: microseconds to encrypt and decrypt one 200-byte message (best and median of five rounds) with the Node crypto provider
 * and with ts-mls's default (WebCrypto) provider, commit cost for adding and removing a member at several group sizes,
 * and, end to end through a real server (PostgreSQL when DATABASE_URL is set, else PGlite), secure messages/s from
 * agents' encryption to the customers' decryption, with the archive member decrypting all of them on the side.
 *
 *   npm run bench:mls
 *   npm run bench:mls -- --messages 5000 --sizes 3,10,50 --conversations 20 --per-conversation 100
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { enrolDevice, StaffClient, StaffToken } from '@strongroom/sdk'
import {
  credentialAuthorityService,
  generateKeyPackages,
  type LocalMember,
  MemoryStore,
  mlsCredential,
  nodeCryptoProvider,
  SecureGroup,
  SecureMessaging,
  secureGroupClientConfig,
  signMemberCredential,
} from '@strongroom/sdk/mls-node'
import { exportJWK, generateKeyPair } from 'jose'
import { type CryptoProvider, defaultCryptoProvider, getCiphersuiteFromName, getCiphersuiteImpl } from 'ts-mls'
import { loadConfig } from '../src/platform/config.ts'
import { createLogger } from '../src/platform/logging.ts'
import { startServer } from '../src/server.ts'
import { createTestBank, createTestDatabase } from '../src/testing/harness.ts'

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    sizes: { type: 'string', default: '3,10,50' },
    conversations: { type: 'string', default: '10' },
    'per-conversation': { type: 'string', default: '100' },
  },
})
const messages = Number(args.messages)
const sizes = args.sizes.split(',').map(Number)

const authority = await generateKeyPair('EdDSA')
const jwks = [{ ...(await exportJWK(authority.publicKey)), kid: 'bench' }]
const authService = credentialAuthorityService(jwks, 'ten_bench')

async function newMember(provider: CryptoProvider, id: string): Promise<LocalMember> {
  const suite = await getCiphersuiteImpl(
    getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'),
    provider,
  )
  const signatureKey = await suite.signature.keygen()
  const credential = await signMemberCredential(authority.privateKey, 'bench', {
    tenantId: 'ten_bench',
    member: { kind: 'device', id },
    signaturePublicKey: signatureKey.publicKey,
  })
  return { suite, config: secureGroupClientConfig(authService), credential: mlsCredential(credential), signatureKey }
}

/** A group of `size` members made by member 0; returns every member's view. */
async function groupOf(provider: CryptoProvider, size: number): Promise<SecureGroup[]> {
  const members = await Promise.all(Array.from({ length: size }, (_, i) => newMember(provider, `m${i}`)))
  const packages = await Promise.all(members.slice(1).map((m) => generateKeyPackages(m, 1)))
  const creator = await SecureGroup.create(members[0] as LocalMember, new TextEncoder().encode(`bench-${size}`))
  const pending = await creator.commit({ add: packages.map((p) => (p[0] as { message: Uint8Array }).message) })
  const joined = await Promise.all(
    members.slice(1).map(async (m, i) => {
      const own = packages[i]?.[0]
      return (await SecureGroup.join(m, pending.welcome as Uint8Array, (ref) => (ref === own?.ref ? own : undefined)))
        .group
    }),
  )
  return [pending.adopt(), ...joined]
}

const perMessage = (ms: number) => ((ms * 1000) / messages).toFixed(0)

const providers: [string, CryptoProvider][] = [
  ['node', nodeCryptoProvider],
  ['webcrypto (ts-mls default)', defaultCryptoProvider],
]
// Several rounds, because a shared machine's neighbours make any single one noisy: the best is the cost, the median
// what a busy moment looks like.
const ROUNDS = 5
for (const [name, provider] of providers) {
  let [sender, receiver] = (await groupOf(provider, 3)) as [SecureGroup, SecureGroup]
  const body = new Uint8Array(200).fill(7)
  const encryptMs: number[] = []
  const decryptMs: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const wire: Uint8Array[] = []
    let start = performance.now()
    for (let i = 0; i < messages; i++) {
      const sent = await sender.encrypt(body)
      sender = sent.group
      wire.push(sent.message)
    }
    encryptMs.push(performance.now() - start)
    start = performance.now()
    for (const message of wire) receiver = (await receiver.process(message)).group
    decryptMs.push(performance.now() - start)
  }
  const [encrypt, decrypt] = [encryptMs, decryptMs].map((all) => all.sort((a, b) => a - b)) as [number[], number[]]
  const best = (all: number[]) => perMessage(all[0] as number).padStart(5)
  const median = (all: number[]) => perMessage(all[Math.floor(ROUNDS / 2)] as number)
  console.log(
    `${name.padEnd(28)} encrypt ${best(encrypt)} us/msg (median ${median(encrypt)})` +
      `   decrypt ${best(decrypt)} us/msg (median ${median(decrypt)})` +
      `   (one reader: ${Math.round((messages / (decrypt[0] as number)) * 1000)} decrypts/s)`,
  )
}

for (const size of sizes) {
  const [creator] = (await groupOf(nodeCryptoProvider, size)) as [SecureGroup]
  const joiner = await newMember(nodeCryptoProvider, 'joiner')
  const [kp] = await generateKeyPackages(joiner, 1)
  let start = performance.now()
  const added = await creator.commit({ add: [(kp as { message: Uint8Array }).message] })
  const addMs = performance.now() - start
  start = performance.now()
  await added.adopt().commit({ remove: (m) => m.id === 'joiner' })
  const removeMs = performance.now() - start
  console.log(
    `group of ${String(size).padStart(3)}: add commit ${addMs.toFixed(1)} ms, remove commit ${removeMs.toFixed(1)} ms`,
  )
}

// End to end: agents encrypt and send over HTTP, phones fetch and decrypt, the archive member reads everything.
{
  const conversations = Number(args.conversations)
  const perConversation = Number(args['per-conversation'])
  let archived = 0
  const database = await createTestDatabase()
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-bench-mls-'))
  const config = loadConfig({}, { port: 0, dataDir, devSeed: false, logLevel: 'silent', databaseUrl: database.url })
  const server = await startServer(config, {
    logger: createLogger('silent'),
    inMemoryDatabase: true,
    archiveSink: (record) => {
      if (record.kind === 'message') archived++
    },
  })
  try {
    const bank = await createTestBank(server)
    // One agent (one MLS member) in every conversation, as in a bank's console.
    const agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    const agentSecure = await SecureMessaging.open(agent, { provider: nodeCryptoProvider, store: new MemoryStore() })
    const pairs = await Promise.all(
      Array.from({ length: conversations }, async () => {
        const { client: phone, device } = await enrolDevice({
          baseUrl: server.url,
          enrolmentCode: await bank.enrolmentCode(),
          label: 'bench',
        })
        const conversation = await agent.createConversation({ customerId: bank.customerId, deviceIds: [device.id] })
        const phoneSecure = await SecureMessaging.open(phone, {
          provider: nodeCryptoProvider,
          store: new MemoryStore(),
        })
        await agentSecure.createGroup(conversation.id, [
          { kind: 'device', id: device.id },
          { kind: 'archive', id: 'archive' },
        ])
        await phoneSecure.acceptWelcomes()
        return { id: conversation.id, agentSecure, phoneSecure }
      }),
    )
    await server.archiveMember?.idle()
    const before = archived
    const body = 'x'.repeat(200)
    const started = performance.now()
    await Promise.all(
      pairs.map(async (pair) => {
        for (let i = 0; i < perConversation; i++) await pair.agentSecure.send(pair.id, body)
      }),
    )
    const sentMs = performance.now() - started
    let read = 0
    await Promise.all(
      pairs.map(async (pair) => {
        for (const event of await pair.phoneSecure.sync(pair.id)) if (event.kind === 'message') read++
      }),
    )
    const readMs = performance.now() - started
    await server.archiveMember?.idle()
    const archiveMs = performance.now() - started
    const total = conversations * perConversation
    if (read !== total) throw new Error(`phones read ${read} of ${total}`)
    console.log(
      `end to end (${conversations} conversations x ${perConversation}, ${database.url ? 'PostgreSQL' : 'PGlite'}): ` +
        `${Math.round(total / (sentMs / 1000))} msgs/s encrypted and committed, ` +
        `${Math.round(total / (readMs / 1000))} msgs/s through to decryption on the phones, ` +
        `archive member caught up after ${(archiveMs / 1000).toFixed(1)} s (${archived - before} decrypted)`,
    )
  } finally {
    await server.close()
    await database.drop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}
process.exit(0)
