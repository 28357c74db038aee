/**
 * Staff enrol a passkey from a single-use invitation link, with no token pasted anywhere (issue 23, item 2): the
 * administrator's `strongroom staff invite` prints the link, the staff member's browser registers a passkey with it, and
 * they sign in with the passkey. Forged, expired, replayed, superseded and deactivated members' links are refused alike
 * with problem+json, and change nothing.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  enrolStaffPasskey,
  type PasskeyCreationOptions,
  StaffClient,
  StaffToken,
  StrongroomError,
  signInStaffWithPasskey,
  staffInvitationPasskeyOptions,
  staffPasskeySignInOptions,
} from '@strongroom/sdk'
import { operator } from '../audit/events.ts'
import { secretHash } from '../platform/ids.ts'
import { findStaff } from '../tenancy/staff.ts'
import { inviteStaff } from '../tenancy/staff-invitations.ts'
import { cliHarness } from '../testing/cli.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import { needsPostgres } from '../testing/requirements.ts'
import { SoftwareAuthenticator } from '../testing/software-authenticator.ts'

const PROBLEMS = 'https://strongroom.dev/problems/'
const isProblem = (kind: string) => (e: unknown) => {
  assert.ok(e instanceof StrongroomError, String(e))
  assert.equal(e.type, PROBLEMS + kind)
  return true
}

describe('staff passkey enrolment from an invitation link (no token)', () => {
  let server: TestServer
  let bank: TestBank
  let otherBank: TestBank
  const key = () =>
    new SoftwareAuthenticator({
      origin: (server.config.rpOrigins as string).split(',')[0] as string,
      rpId: server.config.rpId as string,
    })
  const secretOf = (url: string) => new URL(url).hash.replace(/^#invite=/, '')
  const invite = async (target: TestBank, name: string, ttlSeconds = 3600) => {
    const staff = (await findStaff(server.ctx, target.tenantId, { name })) as NonNullable<
      Awaited<ReturnType<typeof findStaff>>
    >
    return inviteStaff(server.ctx, staff, { ttlSeconds, consoleBase: server.url }, operator)
  }
  /** Enrols a new software passkey with the link's secret; gives the authenticator. */
  const enrol = async (invitation: string, tenantId = bank.tenantId, authenticator = key()) => {
    const options = await staffInvitationPasskeyOptions({ baseUrl: server.url, tenantId, invitation })
    await enrolStaffPasskey({
      baseUrl: server.url,
      tenantId,
      invitation,
      credential: authenticator.register(options as PasskeyCreationOptions),
    })
    return authenticator
  }
  const passkeysOf = async (staffId: string) =>
    server.ctx.db.selectFrom('passkey_credentials').select('id').where('owner_id', '=', staffId).execute()

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    otherBank = await createTestBank(server, 'Other Bank')
  })
  after(() => server?.stop())

  test('the invited member registers a passkey with the link and signs in with it; the link is stored hashed', async () => {
    const { staffId } = await bank.staffToken('agent', 'ivy')
    const invitation = await invite(bank, 'ivy')
    assert.match(invitation.url, new RegExp(`^${server.url}/console/\\?tenant=${bank.tenantId}#invite=sri_`))
    const secret = secretOf(invitation.url)
    const stored = await server.ctx.db
      .selectFrom('staff_invitations')
      .selectAll()
      .where('staff_id', '=', staffId)
      .execute()
    assert.equal(stored.length, 1)
    assert.deepEqual(Buffer.from(stored[0]?.secret_hash as Uint8Array), secretHash(secret))
    assert.ok(!JSON.stringify(stored).includes(secret.slice(4)), 'the secret itself is nowhere in the row')

    const authenticator = await enrol(secret)
    const assertion = authenticator.assert(
      await staffPasskeySignInOptions({ baseUrl: server.url, tenantId: bank.tenantId }),
    )
    const signedIn = await signInStaffWithPasskey({ baseUrl: server.url, tenantId: bank.tenantId, assertion })
    const me = await new StaffClient({ baseUrl: server.url, credentials: signedIn.credentials }).me()
    assert.deepEqual([me.kind, me.staffId, me.role], ['staff', staffId, 'agent'])
  })

  test('a replayed link is refused with problem+json, and no second passkey is made', async () => {
    const { staffId } = await bank.staffToken('agent', 'rex')
    const secret = secretOf((await invite(bank, 'rex')).url)
    await enrol(secret)
    await assert.rejects(enrol(secret), isProblem('auth/invitation-invalid'))
    const response = await fetch(`${server.url}/v1/staff/invitation/passkey/options`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tenantId: bank.tenantId, invitation: secret }),
    })
    assert.equal(response.status, 401)
    assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8')
    assert.equal((await passkeysOf(staffId)).length, 1)
  })

  test('forged links are refused: unknown secret, another bank’s link, a malformed one', async () => {
    await bank.staffToken('agent', 'fay')
    const real = secretOf((await invite(bank, 'fay')).url)
    const forged = `sri_${Buffer.alloc(32, 7).toString('base64url')}`
    await assert.rejects(enrol(forged), isProblem('auth/invitation-invalid'))
    await assert.rejects(enrol(real, otherBank.tenantId), isProblem('auth/invitation-invalid'))
    await assert.rejects(enrol('not-a-link'), isProblem('auth/invitation-invalid'))
    // The real link still works after all that: the refusals used nothing up.
    await enrol(real)
  })

  test('an expired link is refused at both steps', async () => {
    const { staffId } = await bank.staffToken('agent', 'eve')
    const secret = secretOf((await invite(bank, 'eve')).url)
    const options = await staffInvitationPasskeyOptions({
      baseUrl: server.url,
      tenantId: bank.tenantId,
      invitation: secret,
    })
    await server.ctx.db
      .updateTable('staff_invitations')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('staff_id', '=', staffId)
      .execute()
    await assert.rejects(
      enrolStaffPasskey({
        baseUrl: server.url,
        tenantId: bank.tenantId,
        invitation: secret,
        credential: key().register(options as PasskeyCreationOptions),
      }),
      isProblem('auth/invitation-invalid'),
    )
    await assert.rejects(enrol(secret), isProblem('auth/invitation-invalid'))
    assert.equal((await passkeysOf(staffId)).length, 0)
  })

  test('a new link replaces the earlier one; a deactivated member’s link is refused', async () => {
    await bank.staffToken('agent', 'sam')
    const first = secretOf((await invite(bank, 'sam')).url)
    const second = secretOf((await invite(bank, 'sam')).url)
    await assert.rejects(enrol(first), isProblem('auth/invitation-invalid'))
    const { staffId } = await bank.staffToken('agent', 'dee')
    const dees = secretOf((await invite(bank, 'dee')).url)
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    await admin.request('POST', `/v1/staff/${staffId}/deactivate`)
    await assert.rejects(enrol(dees), isProblem('auth/invitation-invalid'))
    await enrol(second)
  })

  test('of ten registrations racing with one link, exactly one makes a passkey', async () => {
    const { staffId } = await bank.staffToken('agent', 'ray')
    const secret = secretOf((await invite(bank, 'ray')).url)
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => enrol(secret)))
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1)
    for (const o of outcomes) if (o.status === 'rejected') isProblem('auth/invitation-invalid')(o.reason)
    assert.equal((await passkeysOf(staffId)).length, 1)
  })

  test('a registration that does not verify uses the link up (tampered: wrong origin)', async () => {
    const { staffId } = await bank.staffToken('agent', 'tom')
    const secret = secretOf((await invite(bank, 'tom')).url)
    const options = await staffInvitationPasskeyOptions({
      baseUrl: server.url,
      tenantId: bank.tenantId,
      invitation: secret,
    })
    const tampered = key().register(options as PasskeyCreationOptions, { origin: 'https://evil.example' })
    await assert.rejects(
      enrolStaffPasskey({ baseUrl: server.url, tenantId: bank.tenantId, invitation: secret, credential: tampered }),
      isProblem('auth/passkey-registration-invalid'),
    )
    await assert.rejects(enrol(secret), isProblem('auth/invitation-invalid'))
    assert.equal((await passkeysOf(staffId)).length, 0)
  })

  test('admins invite over the API (link on this server); an agent may not', async () => {
    const { staffId } = await bank.staffToken('supervisor', 'una')
    const admin = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.adminToken) })
    const invitation = await admin.request<{ url: string; staffId: string }>(
      'POST',
      `/v1/staff/${staffId}/invitations`,
      {},
    )
    assert.equal(invitation.staffId, staffId)
    await enrol(secretOf(invitation.url))
    const agent = new StaffClient({ baseUrl: server.url, credentials: new StaffToken(bank.agentToken) })
    await assert.rejects(agent.request('POST', `/v1/staff/${staffId}/invitations`, {}), isProblem('auth/forbidden'))
  })
})

describe('`strongroom staff invite`', { skip: needsPostgres() }, () => {
  const cli = cliHarness()

  test('prints a link on the public URL that enrols the new member’s passkey on the running server', async () => {
    const server = await startTestServer({ keyFile: path.join(cli.dir, 'keyring.json') }, cli.database)
    try {
      const bank = await createTestBank(server)
      const env = { STRONGROOM_PUBLIC_URL: server.url }
      const missingRole = cli.run(['staff', 'invite', '--tenant', bank.tenantId, '--name', 'newbie'], env)
      assert.equal(missingRole.status, 2)
      assert.match(missingRole.stderr, /give --role/)
      const tooLong = cli.run([
        'staff',
        'invite',
        '--tenant',
        bank.tenantId,
        '--name',
        'n',
        '--role',
        'agent',
        '--ttl',
        '8d',
      ])
      assert.equal(tooLong.status, 2)
      const invited = cli.run(
        ['staff', 'invite', '--tenant', bank.tenantId, '--name', 'newbie', '--role', 'agent'],
        env,
      )
      assert.equal(invited.status, 0, invited.stderr)
      const { url, staffId, role, expiresAt } = JSON.parse(invited.stdout)
      assert.equal(role, 'agent')
      assert.ok(Date.parse(expiresAt) - Date.now() > 23 * 3600_000, 'a day by default')
      assert.match(url, new RegExp(`^${server.url}/console/\\?tenant=${bank.tenantId}#invite=sri_`))
      const invitation = new URL(url).hash.replace('#invite=', '')
      const authenticator = new SoftwareAuthenticator({
        origin: (server.config.rpOrigins as string).split(',')[0] as string,
        rpId: server.config.rpId as string,
      })
      const options = await staffInvitationPasskeyOptions({ baseUrl: server.url, tenantId: bank.tenantId, invitation })
      const enrolled = await enrolStaffPasskey({
        baseUrl: server.url,
        tenantId: bank.tenantId,
        invitation,
        credential: authenticator.register(options as PasskeyCreationOptions),
      })
      assert.equal(enrolled.staffId, staffId)
    } finally {
      await server.stop()
    }
  })
})
