import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  enrolDevice,
  type MemberClient,
  type PasskeyCreationOptions,
  type PasskeyRequestOptions,
  StaffClient,
  StaffToken,
  StrongroomError,
  signInStaffWithPasskey,
  staffPasskeySignInOptions,
} from '@strongroom/sdk'
import { loadConfig } from '../platform/config.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { SoftwareAuthenticator, tamperSignature } from '../testing/software-authenticator.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const isProblem = (kind: string, detail?: string) => (e: unknown) => {
  assert.ok(e instanceof StrongroomError, String(e))
  assert.equal(e.type, PROBLEMS + kind)
  if (detail !== undefined) assert.equal(e.problem.detail, detail)
  return true
}

describe('passkeys for customers and staff', () => {
  let server: TestServer
  let bank: TestBank
  let otherBank: TestBank
  let phone: Awaited<ReturnType<typeof enrolDevice>>
  let otherPhone: Awaited<ReturnType<typeof enrolDevice>>
  let origin: string
  let rpId: string

  const authenticator = (options: { backupEligible?: boolean; counting?: boolean } = {}) =>
    new SoftwareAuthenticator({ origin, rpId, ...options })

  /** The customer's first passkey: once they hold one, adding another is proven with it (issue 15). */
  let held: SoftwareAuthenticator | undefined
  const customerStepUp = async () =>
    held ? { passkey: held.assert(await phone.client.passkeyAuthenticationOptions()) } : undefined

  /** Registers a new software passkey through a client (a device's customer's, or a staff member's own). */
  const register = async (client: MemberClient, key = authenticator()) => {
    const options = await client.passkeyRegistrationOptions()
    await client.registerPasskey(key.register(options), client === phone.client ? await customerStepUp() : undefined)
    return key
  }

  const staffClient = (token: string) => new StaffClient({ baseUrl: server.url, credentials: new StaffToken(token) })

  const auditEvents = async (action: string) => {
    await server.flushAudit()
    const rows = await server.ctx.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', action)
      .orderBy('id')
      .execute()
    return rows.map((row) => ({ ...row, details: JSON.parse(row.details) as Record<string, unknown> }))
  }

  before(async () => {
    server = await startTestServer()
    origin = (server.config.rpOrigins as string).split(',')[0] as string
    rpId = server.config.rpId as string
    bank = await createTestBank(server)
    otherBank = await createTestBank(server, 'Other Bank')
    phone = await enrolDevice({ baseUrl: server.url, enrolmentCode: await bank.enrolmentCode(), label: 'phone' })
    otherPhone = await enrolDevice({
      baseUrl: server.url,
      enrolmentCode: await otherBank.enrolmentCode(),
      label: 'other phone',
    })
  })
  after(() => server.stop())

  test('dev mode names localhost as the relying party; production names its own or passkeys stay off', () => {
    assert.equal(rpId, 'localhost')
    assert.match(origin, /^http:\/\/localhost:\d+$/)
    assert.throws(
      () => loadConfig({ STRONGROOM_RP_ID: 'bank.example', STRONGROOM_RP_ORIGINS: 'https://evil.example' }),
      /STRONGROOM_RP_ORIGINS has https:\/\/evil.example, which is not on bank.example/,
    )
    assert.throws(() => loadConfig({ STRONGROOM_RP_ORIGINS: 'https://chat.bank.example' }), /STRONGROOM_RP_ID/)
    const config = loadConfig({
      STRONGROOM_RP_ID: 'bank.example',
      STRONGROOM_RP_ORIGINS: 'https://chat.bank.example,https://bank.example',
    })
    assert.deepEqual(
      [config.rpId, config.rpOrigins],
      ['bank.example', 'https://chat.bank.example,https://bank.example'],
    )
  })

  test('a customer registers a passkey from an enrolled device and then verifies with it', async () => {
    const options = await phone.client.passkeyRegistrationOptions()
    assert.equal(options.rp.id, 'localhost')
    assert.equal(options.rp.name, 'Test Bank')
    assert.equal(options.user.name, 'Ada Customer')
    assert.equal(Buffer.from(options.user.id, 'base64url').toString(), bank.customerId)
    assert.equal(options.authenticatorSelection?.userVerification, 'required')
    assert.equal(options.attestation, 'none')
    const key = authenticator({ backupEligible: true })
    const passkey = await phone.client.registerPasskey(key.register(options))
    held = key
    assert.deepEqual([passkey.credentialId, passkey.backupEligible, passkey.backedUp], [key.id, true, true])
    assert.deepEqual(
      (await phone.client.listPasskeys()).map((p) => p.id),
      [passkey.id],
    )

    const request = await phone.client.passkeyAuthenticationOptions()
    assert.equal(request.userVerification, 'required')
    assert.deepEqual(
      request.allowCredentials?.map((c) => c.id),
      [key.id],
    )
    const verified = await phone.client.verifyPasskey(key.assert(request))
    assert.deepEqual(verified, { factor: 'passkey', passkeyId: passkey.id, userVerified: true, backedUp: true })
    const [listed] = await phone.client.listPasskeys()
    assert.ok(listed?.lastUsedAt)

    const registered = (await auditEvents('passkey.register')).find((e) => e.target_id === passkey.id)
    assert.equal(registered?.outcome, 'success')
    assert.equal(registered?.actor_id, phone.device.id)
    assert.deepEqual(registered?.details.backupEligible, true)
    assert.ok(
      (await auditEvents('passkey.authenticate')).some((e) => e.target_id === passkey.id && e.outcome === 'success'),
    )
    // Nothing of the key or the ceremony lands in the audit log.
    for (const event of await auditEvents('passkey.register')) {
      assert.doesNotMatch(JSON.stringify(event.details), /challenge|publicKey|clientData/)
    }
  })

  test('a staff member registers a passkey with their token and signs in with it, without a token', async () => {
    const { staffId, token } = await bank.staffToken('supervisor', 'sue')
    const key = authenticator()
    const options = await staffClient(token).passkeyRegistrationOptions()
    assert.equal(options.authenticatorSelection?.residentKey, 'required')
    assert.equal(options.user.name, 'sue')
    await staffClient(token).registerPasskey(key.register(options))

    const signInOptions = await staffPasskeySignInOptions({ baseUrl: server.url, tenantId: bank.tenantId })
    assert.equal(signInOptions.allowCredentials?.length ?? 0, 0, 'discoverable: the passkey says who signs in')
    const signedIn = await signInStaffWithPasskey({
      baseUrl: server.url,
      tenantId: bank.tenantId,
      assertion: key.assert(signInOptions),
      scopes: ['conversations:read'],
    })
    assert.equal(signedIn.staffId, staffId)
    assert.deepEqual(signedIn.scopes, ['conversations:read'])
    assert.match(signedIn.token, /^srs_/)
    const me = await new StaffClient({ baseUrl: server.url, credentials: signedIn.credentials }).me()
    assert.deepEqual([me.kind, me.staffId, me.scopes], ['staff', staffId, ['conversations:read']])

    const issued = (await auditEvents('staff.token.issue')).find((e) => e.details.tokenId === signedIn.tokenId)
    assert.equal(issued?.actor_id, staffId)
    assert.equal(issued?.details.signIn, 'passkey')
    const signInEvent = (await auditEvents('staff.passkey.sign-in')).find((e) => e.details.tokenId === signedIn.tokenId)
    assert.deepEqual([signInEvent?.outcome, signInEvent?.actor_id], ['success', staffId])

    // Scopes are still bounded by the role, whatever the sign-in asks.
    await assert.rejects(
      signInStaffWithPasskey({
        baseUrl: server.url,
        tenantId: bank.tenantId,
        assertion: key.assert(await staffPasskeySignInOptions({ baseUrl: server.url, tenantId: bank.tenantId })),
        scopes: ['staff:admin'],
      }),
      isProblem('auth/forbidden'),
    )
  })

  test('staff passkey routes are for staff members, customer passkey routes for devices', async () => {
    const asDevice = await phone.client
      .request('POST', '/v1/staff/passkey/registration/options')
      .catch((e: unknown) => e)
    assert.ok(asDevice instanceof StrongroomError && asDevice.type === `${PROBLEMS}auth/forbidden`)
    const anonymous = await fetch(`${server.url}/v1/staff/passkey/registration/options`, { method: 'POST' })
    assert.equal(anonymous.status, 401)
    const agentOnCustomerRoute = await staffClient(bank.agentToken)
      .request('POST', '/v1/passkeys/registration/options')
      .catch((e: unknown) => e)
    assert.ok(agentOnCustomerRoute instanceof StrongroomError && agentOnCustomerRoute.status === 403)
  })

  describe('refusals', () => {
    let key: SoftwareAuthenticator
    let staffKey: SoftwareAuthenticator
    let staffToken: string

    const customerOptions = () => phone.client.passkeyAuthenticationOptions()
    const verifyAsCustomer = (assertion: ReturnType<SoftwareAuthenticator['assert']>) =>
      phone.client.verifyPasskey(assertion)
    const staffSignIn = async (
      assertion: (options: PasskeyRequestOptions) => ReturnType<SoftwareAuthenticator['assert']>,
      tenantId = bank.tenantId,
    ) => {
      const options = await staffPasskeySignInOptions({ baseUrl: server.url, tenantId })
      return signInStaffWithPasskey({ baseUrl: server.url, tenantId, assertion: assertion(options) })
    }

    before(async () => {
      key = await register(phone.client)
      staffToken = (await bank.staffToken('agent')).token
      staffKey = await register(staffClient(staffToken))
    })

    test('a registration from another origin, for another RP id, or without user verification is refused', async () => {
      for (const [overrides, reason] of [
        [{ origin: 'https://evil.example' }, 'wrong-origin'],
        [{ rpId: 'evil.example' }, 'wrong-rp-id'],
        [{ userVerified: false }, 'user-not-verified'],
        [{ type: 'webauthn.get' }, 'wrong-ceremony'],
      ] as const) {
        const options = await phone.client.passkeyRegistrationOptions()
        await assert.rejects(
          phone.client.registerPasskey(authenticator().register(options, overrides), await customerStepUp()),
          isProblem('auth/passkey-registration-invalid', reason),
        )
      }
      assert.ok((await auditEvents('passkey.register')).some((e) => e.reason === 'wrong-rp-id'))
    })

    test('a registration challenge works once, for its owner only, and not after two minutes', async () => {
      const options = await phone.client.passkeyRegistrationOptions()
      await phone.client.registerPasskey(authenticator().register(options), await customerStepUp())
      await assert.rejects(
        phone.client.registerPasskey(authenticator().register(options), await customerStepUp()),
        isProblem('auth/passkey-registration-invalid', 'challenge-invalid'),
      )
      const agents = await staffClient(bank.agentToken).passkeyRegistrationOptions()
      await assert.rejects(
        phone.client.registerPasskey(authenticator().register(agents), await customerStepUp()),
        isProblem('auth/passkey-registration-invalid', 'challenge-invalid'),
      )
      const late = await phone.client.passkeyRegistrationOptions()
      await expireChallenges()
      await assert.rejects(
        phone.client.registerPasskey(authenticator().register(late), await customerStepUp()),
        isProblem('auth/passkey-registration-invalid', 'challenge-invalid'),
      )
    })

    test('a credential id belongs to one owner: another customer or a staff member cannot register it', async () => {
      const otherCustomer = await enrolDevice({
        baseUrl: server.url,
        enrolmentCode: await otherCustomerCode(),
        label: 'other',
      })
      const replayed = (client: MemberClient) => async () =>
        client.registerPasskey(key.register((await client.passkeyRegistrationOptions()) as PasskeyCreationOptions))
      await assert.rejects(replayed(otherCustomer.client)(), isProblem('auth/passkey-in-use'))
      await assert.rejects(replayed(staffClient(bank.agentToken))(), isProblem('auth/passkey-in-use'))
      assert.ok((await auditEvents('passkey.register')).some((e) => e.reason === 'credential-in-use'))
    })

    test('an assertion from another origin, for another RP id, or without user verification is refused', async () => {
      for (const [overrides, reason] of [
        [{ origin: 'https://evil.example' }, 'wrong-origin'],
        [{ rpId: 'evil.example' }, 'wrong-rp-id'],
        [{ userVerified: false }, 'user-not-verified'],
        [{ userPresent: false, userVerified: false }, 'user-not-present'],
      ] as const) {
        await assert.rejects(
          verifyAsCustomer(key.assert(await customerOptions(), overrides)),
          isProblem('auth/passkey-invalid'),
        )
        await assert.rejects(
          staffSignIn((o) => staffKey.assert(o, overrides)),
          isProblem('auth/passkey-invalid'),
        )
        const refused = (await auditEvents('staff.passkey.sign-in')).at(-1)
        assert.equal(refused?.reason, reason)
      }
      // The genuine authenticator still works afterwards.
      await verifyAsCustomer(key.assert(await customerOptions()))
    })

    test('a challenge works once and not after two minutes; an assertion cannot be replayed', async () => {
      const options = await customerOptions()
      const assertion = key.assert(options)
      await verifyAsCustomer(assertion)
      await assert.rejects(verifyAsCustomer(assertion), isProblem('auth/passkey-invalid'))
      await assert.rejects(verifyAsCustomer(key.assert(options)), isProblem('auth/passkey-invalid'))
      const late = await customerOptions()
      await expireChallenges()
      await assert.rejects(verifyAsCustomer(key.assert(late)), isProblem('auth/passkey-invalid'))
      // A staff sign-in challenge is not a customer's, nor the other way round.
      const signIn = await staffPasskeySignInOptions({ baseUrl: server.url, tenantId: bank.tenantId })
      await assert.rejects(verifyAsCustomer(key.assert(signIn)), isProblem('auth/passkey-invalid'))
      const reasons = (await auditEvents('passkey.authenticate')).map((e) => e.reason)
      assert.ok(reasons.includes('challenge-invalid'))
    })

    test('a sign counter that goes backwards is refused and audited as a possible clone', async () => {
      const clone = key
      await verifyAsCustomer(key.assert(await customerOptions()))
      const counted = clone.counter
      await assert.rejects(
        verifyAsCustomer(clone.assert(await customerOptions(), { counter: counted - 1 })),
        isProblem('auth/passkey-invalid'),
      )
      await assert.rejects(
        verifyAsCustomer(clone.assert(await customerOptions(), { counter: counted })),
        isProblem('auth/passkey-invalid'),
      )
      const suspicions = await auditEvents('passkey.clone-suspected')
      assert.deepEqual(
        suspicions.map((e) => [e.outcome, e.details.storedCounter, e.details.presentedCounter]),
        [
          ['denied', counted, counted - 1],
          ['denied', counted, counted],
        ],
      )
      // A forged assertion with a low counter is a bad signature, not a clone: only signed regressions count.
      await assert.rejects(
        verifyAsCustomer(tamperSignature(clone.assert(await customerOptions(), { counter: 1 }))),
        isProblem('auth/passkey-invalid'),
      )
      assert.equal((await auditEvents('passkey.clone-suspected')).length, 2)
      await verifyAsCustomer(key.assert(await customerOptions()))
    })

    test('an authenticator that does not count (counter always 0) keeps working', async () => {
      const synced = await register(phone.client, authenticator({ counting: false, backupEligible: true }))
      const first = await customerOptions()
      await verifyAsCustomer(synced.assert(first))
      await verifyAsCustomer(synced.assert(await customerOptions()))
    })

    test('an unknown credential and a wrong signature get the identical answer', async () => {
      const answer = async (assertion: unknown) => {
        const response = await phone.client
          .request('POST', '/v1/passkeys/authentication', { assertion })
          .catch((e) => e)
        assert.ok(response instanceof StrongroomError)
        return response.problem
      }
      const tampered = await answer(tamperSignature(key.assert(await customerOptions())))
      const unknown = await answer(authenticator().assert(await customerOptions()))
      assert.deepEqual(unknown, tampered)
      assert.deepEqual(unknown, {
        type: `${PROBLEMS}auth/passkey-invalid`,
        title: 'The passkey could not be verified',
        status: 401,
        instance: '/v1/passkeys/authentication',
      })
      const reasons = (await auditEvents('passkey.authenticate')).slice(-2).map((e) => e.reason)
      assert.deepEqual(reasons, ['signature-invalid', 'unknown-credential'])

      const signInTampered = await staffSignIn((o) => tamperSignature(staffKey.assert(o))).catch((e) => e.problem)
      const signInUnknown = await staffSignIn((o) => authenticator().assert(o)).catch((e) => e.problem)
      assert.deepEqual(signInUnknown, signInTampered)
    })

    test("another tenant's or another owner's credential signs nobody in", async () => {
      // The staff passkey of this bank, at another bank's sign-in, and at a tenant that does not exist.
      await assert.rejects(
        staffSignIn((o) => staffKey.assert(o), otherBank.tenantId),
        isProblem('auth/passkey-invalid'),
      )
      await assert.rejects(
        staffSignIn((o) => staffKey.assert(o), 'ten_AAAAAAAAAAAAAAAAAAAAAA'),
        isProblem('auth/passkey-invalid'),
      )
      // A customer's passkey is not a staff sign-in.
      await assert.rejects(
        staffSignIn((o) => key.assert(o)),
        isProblem('auth/passkey-invalid'),
      )
      // Another bank's customer cannot use this customer's passkey, nor this one the other's staff's.
      const theirs = await otherPhone.client.passkeyAuthenticationOptions()
      await assert.rejects(otherPhone.client.verifyPasskey(key.assert(theirs)), isProblem('auth/passkey-invalid'))
      await assert.rejects(
        verifyAsCustomer(staffKey.assert(await customerOptions())),
        isProblem('auth/passkey-invalid'),
      )
      // A user handle that names someone else is refused too.
      await assert.rejects(
        staffSignIn((o) => staffKey.assert(o, { userHandle: Buffer.from(bank.agentId).toString('base64url') })),
        isProblem('auth/passkey-invalid'),
      )
      await staffSignIn((o) => staffKey.assert(o))
    })

    test('a changed backup eligibility means another authenticator: refused', async () => {
      await assert.rejects(
        verifyAsCustomer(key.assert(await customerOptions(), { backupEligible: true, backedUp: true })),
        isProblem('auth/passkey-invalid'),
      )
      assert.equal((await auditEvents('passkey.authenticate')).at(-1)?.reason, 'backup-eligibility-changed')
    })
  })

  const expireChallenges = () =>
    server.ctx.db
      .updateTable('passkey_challenges')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('used_at', 'is', null)
      .execute()

  const otherCustomerCode = async () => {
    const admin = staffClient(bank.adminToken)
    const customer = await admin.createCustomer({ externalRef: 'REF-second', displayName: 'Bob Customer' })
    return (await admin.issueEnrolmentCode(customer.id)).code
  }
})
