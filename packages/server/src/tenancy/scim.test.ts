import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { eventually } from '../testing/eventually.ts'
import { createTestBank, startTestServer, type TestBank, type TestServer } from '../testing/harness.ts'
import {
  assertScimError,
  connectScimProvisioner,
  SCIM_MEDIA_TYPE as SCIM,
  SCIM_SCHEMAS,
  type ScimProvisioner,
} from '../testing/scim-provisioner.ts'
import { staffStream } from '../testing/staff-stream.ts'

const USER = SCIM_SCHEMAS.user
const PATCH = SCIM_SCHEMAS.patch

describe('SCIM 2.0 /scim/v2/Users for the bank’s identity provider', () => {
  let server: TestServer
  let bank: TestBank
  /** The identity provider: a bank backend with staff:provision, from client credentials. */
  let idp: ScimProvisioner
  const scim = (method: string, path: string, body?: unknown, token?: string) => idp.scim(method, path, body, token)

  async function admin(method: string, path: string, body?: unknown) {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: response.status, body: await response.json() }
  }

  const user = (userName: string, extra: Record<string, unknown> = {}) => ({
    schemas: [USER],
    userName,
    // What identity providers send beside: kept by them, ignored here.
    name: { givenName: 'Grace', familyName: 'Hopper' },
    emails: [{ value: `${userName}@bank.example`, primary: true }],
    ...extra,
  })

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    idp = await connectScimProvisioner(server, bank)
    // The bank's identity provider names its app roles its own way.
    const mapped = await admin('PUT', '/v1/policies/scim-roles', {
      roles: { 'Strongroom.Agent': 'agent', 'Strongroom.Supervisor': 'supervisor', 'Strongroom.Admin': 'admin' },
    })
    assert.equal(mapped.status, 200)
  })
  after(() => server.stop())

  test('create, get, find by userName, replace, patch and delete a user', async () => {
    const created = await scim(
      'POST',
      '/Users',
      user('grace', { externalId: 'entra-1', displayName: 'Grace H', roles: [{ value: 'Strongroom.Agent' }] }),
    )
    assert.equal(created.status, 201)
    assert.equal(created.type, `${SCIM}; charset=utf-8`)
    const id = created.body.id
    assert.match(id, /^stf_/)
    assert.equal(created.location, `${server.url}/scim/v2/Users/${id}`)
    assert.deepEqual(
      { ...created.body, meta: { ...created.body.meta, created: 'x', lastModified: 'x' } },
      {
        schemas: [USER],
        id,
        externalId: 'entra-1',
        userName: 'grace',
        displayName: 'Grace H',
        active: true,
        roles: [{ value: 'agent', primary: true }],
        meta: { resourceType: 'User', created: 'x', lastModified: 'x', location: created.location },
      },
    )
    assert.deepEqual((await scim('GET', `/Users/${id}`)).body, created.body)

    const found = await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "grace"')}`)
    assert.equal(found.body.totalResults, 1)
    assert.deepEqual(found.body.Resources, [created.body])
    const byExternal = await scim('GET', `/Users?filter=${encodeURIComponent('ExternalId EQ "entra-1"')}`)
    assert.equal(byExternal.body.Resources[0].id, id)
    const none = await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "nobody"')}`)
    assert.deepEqual([none.body.totalResults, none.body.Resources], [0, []])

    const replaced = await scim(
      'PUT',
      `/Users/${id}`,
      user('grace.hopper', { roles: [{ value: 'Strongroom.Supervisor' }] }),
    )
    assert.equal(replaced.status, 200)
    assert.deepEqual(
      [replaced.body.userName, replaced.body.roles, replaced.body.externalId],
      ['grace.hopper', [{ value: 'supervisor', primary: true }], undefined],
    )
    // Entra ID's PATCH: "Replace", the value a string.
    const patched = await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [
        { op: 'Replace', path: 'displayName', value: 'Rear Admiral Hopper' },
        { op: 'Add', value: { externalId: 'entra-1', 'name.familyName': 'Hopper' } },
      ],
    })
    assert.equal(patched.status, 200)
    assert.deepEqual(
      [patched.body.displayName, patched.body.externalId, patched.body.roles[0].value],
      ['Rear Admiral Hopper', 'entra-1', 'supervisor'],
    )

    const deleted = await scim('DELETE', `/Users/${id}`)
    assert.equal(deleted.status, 204)
    assert.equal((await scim('GET', `/Users/${id}`)).status, 404)
    assert.equal(
      (await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "grace.hopper"')}`)).body.totalResults,
      0,
    )
  })

  test('a deleted user is gone for the bank: not listed, not assignable, never made active again or given a token', async () => {
    const created = await scim('POST', '/Users', user('hedy', { roles: [{ value: 'Strongroom.Agent' }] }))
    const id = created.body.id
    const conversation = await admin('POST', '/v1/conversations', { customerId: bank.customerId })
    assert.equal(conversation.status, 201)
    const assign = () =>
      admin('PUT', `/v1/conversations/${conversation.body.id}/assignment`, { staffId: id, mode: 'reassign' })
    const listed = async () => (await admin('GET', '/v1/staff')).body.staff.map((s: { id: string }) => s.id)
    const present = async () =>
      (await admin('GET', '/v1/staff/presence')).body.staff.map((s: { staffId: string }) => s.staffId)
    assert.ok((await listed()).includes(id))
    assert.ok((await present()).includes(id))

    assert.equal((await scim('DELETE', `/Users/${id}`)).status, 204)
    // Whom a supervisor can give a conversation to: the staff list and presence no longer show them.
    assert.equal((await listed()).includes(id), false)
    assert.equal((await present()).includes(id), false)
    const assigned = await assign()
    assert.deepEqual([assigned.status, assigned.body.detail], [404, 'no such staff member'])
    // An admin cannot bring back someone the identity provider deleted, nor issue them a token or an invitation.
    for (const path of ['activate', 'tokens', 'invitations']) {
      const answer = await admin('POST', `/v1/staff/${id}/${path}`, {})
      assert.deepEqual([path, answer.status], [path, 404])
    }
    assert.equal((await scim('GET', `/Users/${id}`)).status, 404)
  })

  test('PATCH active false ends the member’s tokens and streams; PATCH active true lets them get new ones', async () => {
    // A supervisor's console is open: told of the member each time they are added or (de)activated, not otherwise.
    const supervisor = await staffStream(server, (await bank.staffToken('supervisor', 'sol')).token)
    after(() => supervisor.socket.close())
    const staffTold = () => supervisor.frames.filter((f) => f.type === 'staff').map((f) => f.staffId)
    const created = await scim('POST', '/Users', user('linus', { roles: [{ value: 'Strongroom.Agent' }] }))
    const id = created.body.id
    const issued = await admin('POST', `/v1/staff/${id}/tokens`, {})
    assert.equal(issued.status, 201)
    const { closed } = await staffStream(server, issued.body.token)

    const off = await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
    })
    assert.equal(off.status, 200)
    assert.equal(off.body.active, false)
    assert.equal((await closed).code, 4001)
    const me = await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${issued.body.token}` } })
    assert.equal(me.status, 401)
    assert.equal((await admin('POST', `/v1/staff/${id}/tokens`, {})).status, 403)

    const on = await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', value: { active: true } }],
    })
    assert.equal(on.body.active, true)
    // A replacement that leaves active out keeps it: off again, then a PUT without it does not reactivate.
    await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    })
    const kept = await scim('PUT', `/Users/${id}`, user('linus', { roles: [{ value: 'Strongroom.Agent' }] }))
    assert.equal(kept.body.active, false)
    await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'active', value: true }],
    })
    assert.equal((await admin('POST', `/v1/staff/${id}/tokens`, {})).status, 201)
    // Told in order: once another member's addition is heard, the PUT that changed nothing has told nothing.
    const { body: next } = await admin('POST', '/v1/staff', { name: 'after-linus', role: 'agent' })
    await eventually(async () => staffTold().includes(next.id), Boolean)
    assert.equal(staffTold().filter((s) => s === id).length, 5)

    await server.flushAudit()
    const actions = await server.ctx.db
      .selectFrom('audit_events')
      .select(['action', 'actor_kind'])
      .where('target_id', '=', id)
      .orderBy('id')
      .execute()
    assert.deepEqual(
      actions.filter((a) => a.action !== 'staff.token.issue').map((a) => `${a.action}:${a.actor_kind}`),
      [
        'staff.create:client',
        'staff.deactivate:client',
        'staff.activate:client',
        'staff.deactivate:client',
        'staff.activate:client',
      ],
    )
  })

  test('failures answer in SCIM’s error format and change nothing', async () => {
    const scimError = (status: number, scimType?: string) => (r: Awaited<ReturnType<typeof scim>>) =>
      assertScimError(r, status, scimType)
    scimError(404)(await scim('GET', `/Users/stf_${'x'.repeat(22)}`))
    scimError(404)(
      await scim('PATCH', `/Users/stf_${'x'.repeat(22)}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'active', value: false }],
      }),
    )
    scimError(404)(await scim('DELETE', `/Users/stf_${'x'.repeat(22)}`))
    for (const filter of [
      'userName sw "gr"',
      'emails eq "a@b"',
      'userName eq grace',
      'userName eq "a" or userName eq "b"',
    ]) {
      scimError(400, 'invalidFilter')(await scim('GET', `/Users?filter=${encodeURIComponent(filter)}`))
    }
    await scim('POST', '/Users', user('ada', { roles: [{ value: 'Strongroom.Agent' }] }))
    scimError(409, 'uniqueness')(await scim('POST', '/Users', user('ada', { roles: [{ value: 'Strongroom.Agent' }] })))
    const other = await scim('POST', '/Users', user('babbage', { roles: [{ value: 'Strongroom.Agent' }] }))
    scimError(409, 'uniqueness')(await scim('PUT', `/Users/${other.body.id}`, user('ada')))
    // Roles that map to none, or two with none primary: nobody gets a role by accident. (Without roles, a user holds
    // none until a group gives them one: scim-groups.test.ts.)
    scimError(400, 'invalidValue')(await scim('POST', '/Users', user('nobody', { roles: [{ value: 'Everyone' }] })))
    scimError(
      400,
      'invalidValue',
    )(
      await scim(
        'POST',
        '/Users',
        user('nobody', { roles: [{ value: 'Strongroom.Agent' }, { value: 'Strongroom.Admin' }] }),
      ),
    )
    scimError(400, 'invalidValue')(await scim('POST', '/Users', { schemas: [USER] }))
    scimError(
      400,
      'invalidValue',
    )(
      await scim('PATCH', `/Users/${other.body.id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'active', value: 'maybe' }],
      }),
    )
    scimError(
      400,
      'invalidSyntax',
    )(
      await scim('PATCH', `/Users/${other.body.id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'move', path: 'active', value: false }],
      }),
    )
    const malformed = await fetch(`${server.url}/scim/v2/Users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${idp.token}`, 'content-type': SCIM },
      body: '{"userName":',
    })
    assert.equal(malformed.status, 400)
    assert.equal((await malformed.json()).scimType, 'invalidSyntax')
    assert.equal(
      (await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "nobody"')}`)).body.totalResults,
      0,
    )
    assert.equal((await scim('GET', `/Users/${other.body.id}`)).body.userName, 'babbage')

    // Only the identity provider (staff:provision) or an admin: an agent, a forged token are refused, in SCIM's format.
    scimError(403)(await scim('GET', '/Users', undefined, bank.agentToken))
    scimError(401)(await scim('GET', '/Users', undefined, `srb_${'x'.repeat(43)}`))
    assert.equal((await scim('GET', '/Users', undefined, bank.adminToken)).status, 200)
  })
})
