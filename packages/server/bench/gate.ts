/**
 * The cost of the API gate: requests/s on a trivial authenticated device route (GET /v1/me, with its DPoP proof)
 * without and with the integrity-token check, on two in-process servers taking turns, printed as a ratio.
 *
 *   npm run bench:gate                 PGlite; DATABASE_URL=… for PostgreSQL
 *   npm run bench:gate -- --requests 4000 --concurrency 32
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { createDpopProof, enrolDevice } from '@strongroom/sdk'
import { loadConfig } from '../src/platform/config.ts'
import { createLogger } from '../src/platform/logging.ts'
import { startServer } from '../src/server.ts'
import { createTestBank, createTestDatabase } from '../src/testing/harness.ts'

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '32' },
  },
})
const total = Number(args.requests)
const concurrency = Number(args.concurrency)

/** One server, gated or not, with a device ready and its requests' proofs made before any clock starts. */
async function prepare(integrityRequired: boolean) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'strongroom-gate-'))
  const database = await createTestDatabase()
  const config = loadConfig(
    {},
    { port: 0, dataDir, devSeed: false, logLevel: 'silent', databaseUrl: database.url, integrityRequired },
  )
  const server = await startServer(config, { logger: createLogger('silent'), inMemoryDatabase: true })
  const bank = await createTestBank(server)
  const { client, keys } = await enrolDevice({
    baseUrl: server.url,
    enrolmentCode: await bank.enrolmentCode(),
    label: 'bench',
  })
  if (integrityRequired) {
    await client.attest({
      app: { appId: 'bench', appVersion: '1.0.0' },
      signals: { rooted: false, debugger: false, hooking: false, emulator: false },
    })
  }
  const url = `${server.url}/v1/me`
  const { authorization } = await client.credentials.authorize('GET', url)
  const accessToken = authorization.slice('DPoP '.length)
  // Proofs are made before the clock starts: the figure is the server's, not the signer's.
  const proofs = await Promise.all(
    Array.from({ length: total }, () => createDpopProof(keys, { htm: 'GET', htu: url, accessToken })),
  )
  const headers = (proof: string) => ({
    authorization,
    dpop: proof,
    ...(client.integrityToken ? { 'strongroom-integrity': client.integrityToken } : {}),
  })
  let next = 0
  let elapsedMs = 0
  return {
    /** Sends the next `count` requests, `concurrency` at a time, and adds the time they took. */
    async run(count: number) {
      const end = Math.min(total, next + count)
      const started = performance.now()
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < end) {
            const response = await fetch(url, { headers: headers(proofs[next++] as string) })
            if (response.status !== 200) throw new Error(`status ${response.status}: ${await response.text()}`)
            await response.arrayBuffer()
          }
        }),
      )
      elapsedMs += performance.now() - started
    },
    requestsPerSecond: () => total / (elapsedMs / 1000),
    async close() {
      await server.close()
      await database.drop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

// Both servers run at once and take turns in short rounds, so that whatever else the machine does at the time weighs
// on both alike: the ratio is what this measures.
const ungated = await prepare(false)
const gated = await prepare(true)
const ROUNDS = 10
for (let round = 0; round < ROUNDS; round++) {
  const [first, second] = round % 2 === 0 ? [ungated, gated] : [gated, ungated]
  await first.run(total / ROUNDS)
  await second.run(total / ROUNDS)
}
const without = ungated.requestsPerSecond()
const withGate = gated.requestsPerSecond()
await ungated.close()
await gated.close()
const cost = 1 - withGate / without
console.error(`without the gate: ${Math.round(without)} requests/s`)
console.error(`with the gate:    ${Math.round(withGate)} requests/s`)
console.error(`cost of the integrity check: ${(cost * 100).toFixed(1)} %`)
console.log(
  JSON.stringify({
    withoutGateRps: Math.round(without),
    withGateRps: Math.round(withGate),
    ratio: Number((withGate / without).toFixed(3)),
  }),
)
process.exit(0)
