import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import {
  createDpopProof,
  DeviceClient,
  type DeviceKey,
  executeRemoteWipe,
  StaffClient,
  StaffToken,
  StrongroomError,
  verifyWipeCommand,
} from '@strongroom/sdk'
import { encryptedStore, generateStoreKey, MemoryStore } from '@strongroom/sdk/mls'
import { SignJWT } from 'jose'
import WebSocket from 'ws'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'

const WIPED = 'https://strongroom.dev/problems/identity/device-wiped'
const bytes = (s: string) => new TextEncoder().encode(s)

describe('remote wipe', () => {
  let server: TestServer
  let bank: TestBank
  let agent: StaffClient

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
  })
  after(() => server.stop())

  /** A device as an app sets it up: stores holding its state, and the wipe keys pinned at enrolment. */
  const enrolWithStores = async (label: string) => {
    const enrolled = await bank.enrol(label)
    assert.ok(enrolled.wipeKeys && enrolled.wipeKeys.keys.length >= 1)
    const inner = new MemoryStore()
    const secure = encryptedStore(inner, await generateStoreKey())
    await secure.set('mls/group/cnv_one', bytes('group state'))
    const plain = new MemoryStore()
    await plain.set('messages/1', bytes('hello'))
    let revoked: (outcome: { confirmed: boolean }) => void = () => {}
    const onRevoked = new Promise<{ confirmed: boolean }>((resolve) => {
      revoked = resolve
    })
    const target = {
      tenantId: enrolled.tenantId,
      deviceId: enrolled.device.id,
      keyThumbprint: enrolled.device.keyThumbprint,
    }
    const client = new DeviceClient({
      baseUrl: server.url,
      credentials: enrolled.client.credentials,
      WebSocket: WebSocket as never,
      remoteWipe: { pinnedKeys: enrolled.wipeKeys, device: target, stores: [secure, plain], onRevoked: revoked },
    })
    return { ...enrolled, client, inner, secure, plain, onRevoked, target }
  }

  /** What the server answers a revoked key's token renewal, read raw. */
  const renewalProblem = async (credentials: DeviceKey) => {
    const htu = `${server.url}/v1/devices/token`
    const response = await fetch(htu, {
      method: 'POST',
      headers: { dpop: await createDpopProof(credentials.keys, { htm: 'POST', htu }) },
    })
    return { status: response.status, body: (await response.json()) as { type: string; wipeCommand?: string } }
  }

  const auditActions = async (deviceId: string) =>
    (
      await server.ctx.db
        .selectFrom('audit_events')
        .select('action')
        .where('tenant_id', '=', bank.tenantId)
        .where('target_id', '=', deviceId)
        .execute()
    ).map((row) => row.action)

  test('a revoked phone renewing its token gets a signed command, erases its stores, confirms; audited', async () => {
    const phone = await enrolWithStores('phone')
    assert.equal((await phone.client.me()).kind, 'device')
    await agent.revokeDevice(phone.device.id, 'reported lost')

    await assert.rejects(phone.client.me(), (e) => e instanceof StrongroomError && e.type === WIPED)
    assert.deepEqual(await phone.onRevoked, { confirmed: true })
    // Nothing left: the plain store is empty, the encrypted one's key is gone and its inner store emptied.
    assert.equal(await phone.plain.get('messages/1'), undefined)
    assert.deepEqual(phone.plain.values(), [])
    assert.deepEqual(phone.inner.values(), [])
    await assert.rejects(phone.secure.get('mls/group/cnv_one'), /wiped/)

    assert.ok((await auditActions(phone.device.id)).includes('device.wipe.confirmed'))
    const row = await server.ctx.db
      .selectFrom('devices')
      .select(['status', 'wiped_at'])
      .where('id', '=', phone.device.id)
      .executeTakeFirstOrThrow()
    assert.equal(row.status, 'revoked')
    assert.ok(row.wiped_at)
    // Still refused a token afterwards; a second confirmation is not audited again.
    const again = await renewalProblem(phone.client.credentials as DeviceKey)
    assert.equal(again.body.type, WIPED)
    const htu = `${server.url}/v1/devices/wipe-confirmation`
    const keys = (phone.client.credentials as DeviceKey).keys
    const second = await fetch(htu, {
      method: 'POST',
      headers: { dpop: await createDpopProof(keys, { htm: 'POST', htu }) },
    })
    assert.equal(second.status, 200)
    assert.equal((await auditActions(phone.device.id)).filter((a) => a === 'device.wipe.confirmed').length, 1)
  })

  test('an active device cannot confirm a wipe, and gets no command', async () => {
    const tablet = await enrolWithStores('tablet')
    const htu = `${server.url}/v1/devices/wipe-confirmation`
    const keys = (tablet.client.credentials as DeviceKey).keys
    const response = await fetch(htu, {
      method: 'POST',
      headers: { dpop: await createDpopProof(keys, { htm: 'POST', htu }) },
    })
    assert.equal(response.status, 403)
    const renewal = await renewalProblem(tablet.client.credentials as DeviceKey)
    assert.equal(renewal.status, 200)
    assert.equal(renewal.body.wipeCommand, undefined)
    assert.ok(!(await auditActions(tablet.device.id)).includes('device.wipe.confirmed'))
  })

  test('a forged command, or one for another device, wipes nothing', async () => {
    const mine = await enrolWithStores('mine')
    const other = await enrolWithStores('other')
    await agent.revokeDevice(other.device.id)
    const otherCommand = (await renewalProblem(other.client.credentials as DeviceKey)).body.wipeCommand as string
    assert.ok(await verifyWipeCommand(otherCommand, other.wipeKeys as never, other.target))

    // The other device's genuine command does not name this device.
    assert.equal(await verifyWipeCommand(otherCommand, mine.wipeKeys as never, mine.target), false)
    // A command with this device's claims, signed with a key that is not the server's.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const forged = await new SignJWT({
      tid: mine.target.tenantId,
      deviceId: mine.target.deviceId,
      jkt: mine.target.keyThumbprint,
      cmd: 'wipe',
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'strongroom-wipe+jwt', kid: 'wipe-command-1' })
      .setIssuer('strongroom')
      .setSubject(mine.target.deviceId)
      .setIssuedAt()
      .sign(privateKey)
    assert.equal(await verifyWipeCommand(forged, mine.wipeKeys as never, mine.target), false)

    for (const command of [otherCommand, forged, `${otherCommand.slice(0, -4)}AAAA`]) {
      const outcome = await executeRemoteWipe(command, {
        pinnedKeys: mine.wipeKeys as never,
        device: mine.target,
        stores: [mine.secure, mine.plain],
        baseUrl: server.url,
        keys: (mine.client.credentials as DeviceKey).keys,
      })
      assert.deepEqual(outcome, { wiped: false, confirmed: false })
    }
    // Also through the client, as if the server (or someone in between) had sent them.
    for (const command of [otherCommand, forged]) {
      const problem = { type: WIPED, title: 'wiped', status: 401, wipeCommand: command }
      assert.equal(await mine.client.obeyWipeCommand(problem), false)
    }
    assert.deepEqual(await mine.secure.get('mls/group/cnv_one'), bytes('group state'))
    assert.deepEqual(await mine.plain.get('messages/1'), bytes('hello'))
    assert.equal((await mine.client.me()).kind, 'device')
  })

  test('a revoked device opening the stream with its old token gets the command on the stream and wipes', async () => {
    const phone = await enrolWithStores('stream phone')
    await phone.client.me()
    await agent.revokeDevice(phone.device.id)
    const errors: string[] = []
    const stream = phone.client.stream({
      onError: (e) => errors.push(e instanceof StrongroomError ? e.type : e.message),
    })
    assert.deepEqual(await phone.onRevoked, { confirmed: true })
    assert.deepEqual(phone.plain.values(), [])
    await assert.rejects(phone.secure.get('mls/group/cnv_one'), /wiped/)
    stream.close()
    assert.ok(errors.includes(WIPED))
    assert.ok((await auditActions(phone.device.id)).includes('device.wipe.confirmed'))
  })

  test('the stream answers an old token of a revoked key with the command and closes 4003', async () => {
    const phone = await enrolWithStores('raw socket phone')
    await phone.client.me()
    await agent.revokeDevice(phone.device.id)
    // The old token, still cached by the device, with a fresh proof of its key.
    const httpUrl = `${server.url}/v1/stream`
    const auth = await (phone.client.credentials as DeviceKey).authorize('GET', httpUrl)
    const socket = new WebSocket(httpUrl.replace(/^http/, 'ws'))
    const frames: { type: string; problem?: { type: string; wipeCommand?: string } }[] = []
    socket.on('message', (data) => frames.push(JSON.parse(String(data))))
    socket.on('open', () => socket.send(JSON.stringify({ type: 'auth', ...auth })))
    const code = await new Promise<number>((resolve) => socket.on('close', (c) => resolve(c)))
    assert.equal(code, 4003)
    const problem = frames.find((f) => f.type === 'error')?.problem
    assert.equal(problem?.type, WIPED)
    assert.ok(await verifyWipeCommand(problem?.wipeCommand as string, phone.wipeKeys as never, phone.target))

    // The same token with a proof from another key (a stolen token) gets the plain refusal and no command.
    const thief = await enrolWithStores('thief')
    const stolen = await createDpopProof((thief.client.credentials as DeviceKey).keys, {
      htm: 'GET',
      htu: httpUrl,
      accessToken: auth.authorization.slice('DPoP '.length),
    })
    const second = new WebSocket(httpUrl.replace(/^http/, 'ws'))
    const secondFrames: { type: string; problem?: { type: string; wipeCommand?: string } }[] = []
    second.on('message', (data) => secondFrames.push(JSON.parse(String(data))))
    second.on('open', () =>
      second.send(JSON.stringify({ type: 'auth', authorization: auth.authorization, dpop: stolen })),
    )
    assert.equal(await new Promise<number>((resolve) => second.on('close', (c) => resolve(c))), 4001)
    const refusal = secondFrames.find((f) => f.type === 'error')?.problem
    assert.notEqual(refusal?.type, WIPED)
    assert.equal(refusal?.wipeCommand, undefined)
  })

  test('a phone revoked while connected asks for its command at once and wipes', async () => {
    const phone = await enrolWithStores('connected phone')
    const stream = phone.client.stream({})
    await stream.ready()
    await agent.revokeDevice(phone.device.id, 'stolen')
    assert.deepEqual(await phone.onRevoked, { confirmed: true })
    assert.deepEqual(phone.plain.values(), [])
    assert.equal(stream.state, 'closed')
  })

  test('the wipe keys are published for pinning', async () => {
    const response = await fetch(`${server.url}/.well-known/strongroom-wipe-keys`)
    const jwks = (await response.json()) as { keys: { kty: string; crv: string; kid: string; d?: string }[] }
    assert.ok(jwks.keys.length >= 1)
    for (const key of jwks.keys) {
      assert.equal(key.kty, 'EC')
      assert.equal(key.crv, 'P-256')
      assert.equal(key.d, undefined)
    }
  })
})
