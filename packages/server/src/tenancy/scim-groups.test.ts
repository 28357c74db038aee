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

const { user: USER, group: GROUP, patch: PATCH } = SCIM_SCHEMAS
/** The object id Entra ID gives a group, sent as its externalId: the mapping may name a group by it. */
const ENTRA_SUPERVISORS_OID = '5b8c2f3e-0d4a-4c77-9e21-7a1f0e6d3c90'

describe('SCIM 2.0 /scim/v2/Groups: roles follow group membership', () => {
  let server: TestServer
  let bank: TestBank
  let idp: ScimProvisioner
  const scim = (method: string, path: string, body?: unknown) => idp.scim(method, path, body)

  async function call(token: string, method: string, path: string, body?: unknown) {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : {} }
  }

  const scimError = (status: number, scimType?: string) => (r: Awaited<ReturnType<typeof scim>>) =>
    assertScimError(r, status, scimType)

  /** A user as Entra ID creates one when a group is assigned to the app: no roles, they come with the group. */
  async function entraUser(userName: string) {
    const created = await scim('POST', '/Users', {
      schemas: [USER, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
      externalId: `oid-${userName}`,
      userName: `${userName}@bank.example`,
      active: true,
      displayName: userName,
      emails: [{ primary: true, type: 'work', value: `${userName}@bank.example` }],
      meta: { resourceType: 'User' },
      name: { formatted: userName, familyName: userName, givenName: userName },
    })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    return created.body.id as string
  }

  /** A staff token for the member (issued by an admin) and a stream it opened. */
  async function signedIn(staffId: string) {
    const issued = await call(bank.adminToken, 'POST', `/v1/staff/${staffId}/tokens`, {})
    assert.equal(issued.status, 201, JSON.stringify(issued.body))
    const { closed } = await staffStream(server, issued.body.token)
    return { token: issued.body.token as string, closed }
  }

  before(async () => {
    server = await startTestServer()
    bank = await createTestBank(server)
    idp = await connectScimProvisioner(server, bank)
    const mapped = await call(bank.adminToken, 'PUT', '/v1/policies/scim-roles', {
      roles: {
        'Strongroom Admins': 'admin',
        'Strongroom Agents': 'agent',
        [ENTRA_SUPERVISORS_OID]: 'supervisor',
        'Strongroom.Agent': 'agent',
      },
    })
    assert.equal(mapped.status, 200)
  })
  after(() => server.stop())

  test('Entra ID: a user made without roles gets admin from a group, and loses admin access at once when removed', async () => {
    const id = await entraUser('ada')
    const ada = await scim('GET', `/Users/${id}`)
    assert.deepEqual([ada.body.roles, ada.body.groups], [[], undefined])
    // No role yet: nobody issues them a token.
    assert.equal((await call(bank.adminToken, 'POST', `/v1/staff/${id}/tokens`, {})).status, 403)

    // Entra ID's group creation, then its check by name without members.
    const created = await scim('POST', '/Groups', {
      schemas: [GROUP, 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group'],
      externalId: '8aa1a0c0-c4c3-4bc0-a4a5-2ef676900159',
      displayName: 'Strongroom Admins',
      meta: { resourceType: 'Group' },
    })
    assert.equal(created.status, 201)
    const groupId = created.body.id
    assert.match(groupId, /^grp_/)
    assert.deepEqual(
      { ...created.body, meta: { ...created.body.meta, created: 'x', lastModified: 'x' } },
      {
        schemas: [GROUP],
        id: groupId,
        externalId: '8aa1a0c0-c4c3-4bc0-a4a5-2ef676900159',
        displayName: 'Strongroom Admins',
        members: [],
        meta: {
          resourceType: 'Group',
          created: 'x',
          lastModified: 'x',
          location: `${server.url}/scim/v2/Groups/${groupId}`,
        },
      },
    )
    const found = await scim(
      'GET',
      `/Groups?excludedAttributes=members&filter=${encodeURIComponent('displayName eq "Strongroom Admins"')}`,
    )
    assert.equal(found.body.totalResults, 1)
    assert.equal(found.body.Resources[0].id, groupId)
    assert.equal(found.body.Resources[0].members, undefined)

    const added = await scim('PATCH', `/Groups/${groupId}`, {
      schemas: [PATCH],
      Operations: [{ op: 'Add', path: 'members', value: [{ $ref: null, value: id }] }],
    })
    assert.equal(added.status, 200, JSON.stringify(added.body))
    assert.deepEqual(added.body.members, [
      { value: id, display: 'ada@bank.example', $ref: `${server.url}/scim/v2/Users/${id}`, type: 'User' },
    ])
    const admin = await scim('GET', `/Users/${id}`)
    assert.deepEqual(admin.body.roles, [{ value: 'admin', primary: true }])
    assert.deepEqual(admin.body.groups, [
      { value: groupId, display: 'Strongroom Admins', $ref: `${server.url}/scim/v2/Groups/${groupId}`, type: 'direct' },
    ])

    const session = await signedIn(id)
    assert.equal((await call(session.token, 'GET', '/v1/policies/scim-roles')).status, 200)

    // Entra ID removes a member with the member as value.
    const removed = await scim('PATCH', `/Groups/${groupId}`, {
      schemas: [PATCH],
      Operations: [{ op: 'Remove', path: 'members', value: [{ $ref: null, value: id }] }],
    })
    assert.equal(removed.status, 200)
    assert.deepEqual(removed.body.members, [])
    // At once: the next request is refused and the stream is closed, as a deactivation does.
    assert.equal((await call(session.token, 'GET', '/v1/policies/scim-roles')).status, 401)
    assert.equal((await session.closed).code, 4001)
    assert.deepEqual((await scim('GET', `/Users/${id}`)).body.roles, [])
    assert.equal((await call(bank.adminToken, 'POST', `/v1/staff/${id}/tokens`, {})).status, 403)

    await server.flushAudit()
    const events = await server.ctx.db
      .selectFrom('audit_events')
      .select(['action', 'reason', 'details'])
      .where('target_id', 'in', [id, groupId])
      .where('action', 'in', ['staff.update', 'scim.group.create', 'scim.group.update'])
      .orderBy('id')
      .execute()
    assert.deepEqual(
      events.map((e) => [e.action, e.reason, JSON.parse(e.details)]),
      [
        ['scim.group.create', null, { added: 0, removed: 0 }],
        ['scim.group.update', null, { added: 1, removed: 0 }],
        ['staff.update', 'SCIM group membership', { role: 'admin', revokedTokens: 0 }],
        ['scim.group.update', null, { added: 0, removed: 1 }],
        ['staff.update', 'SCIM group membership', { role: null, revokedTokens: 1 }],
      ],
    )
  })

  test('Okta: members added with display, removed by filter, replaced; renamed; a group named by its external id', async () => {
    const grace = await entraUser('grace')
    const linus = await entraUser('linus')
    const group = await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Strongroom Agents', members: [] })
    const groupId = group.body.id
    const add = await scim('PATCH', `/Groups/${groupId}`, {
      schemas: [PATCH],
      Operations: [
        {
          op: 'add',
          path: 'members',
          value: [
            { value: grace, display: 'grace@bank.example' },
            { value: linus, display: 'linus@bank.example' },
          ],
        },
      ],
    })
    assert.deepEqual(
      add.body.members.map((m: { value: string }) => m.value),
      [grace, linus],
    )
    assert.equal((await scim('GET', `/Users/${grace}`)).body.roles[0].value, 'agent')
    const session = await signedIn(grace)

    await scim('PATCH', `/Groups/${groupId}`, {
      schemas: [PATCH],
      Operations: [{ op: 'remove', path: `members[value eq "${linus}"]` }],
    })
    assert.deepEqual((await scim('GET', `/Users/${linus}`)).body.roles, [])
    const replaced = await scim('PATCH', `/Groups/${groupId}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'members', value: [{ value: linus }, { value: grace }] }],
    })
    assert.equal(replaced.body.members.length, 2)
    // Okta's lookup by name, members included.
    const listed = await scim('GET', `/Groups?filter=${encodeURIComponent('displayName eq "Strongroom Agents"')}`)
    assert.deepEqual(
      listed.body.Resources.map((g: { members: { value: string }[] }) => g.members.map((m) => m.value).sort()),
      [[grace, linus].sort()],
    )
    assert.equal((await scim('GET', `/Users/${linus}`)).body.roles[0].value, 'agent')
    // Grace kept agent throughout: her session goes on.
    assert.equal((await call(session.token, 'GET', '/v1/me')).status, 200)

    // Okta renames with a value object that repeats the id: the group no longer maps, its members hold no role.
    const renamed = await scim('PATCH', `/Groups/${groupId}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', value: { id: groupId, displayName: 'Former agents' } }],
    })
    assert.equal(renamed.body.displayName, 'Former agents')
    assert.equal((await call(session.token, 'GET', '/v1/me')).status, 401)
    assert.equal((await session.closed).code, 4001)

    // Mapped by the group's external id (Entra ID's object id, what its groups claim carries): supervisors.
    const byOid = await scim('PUT', `/Groups/${groupId}`, {
      schemas: [GROUP],
      displayName: 'Bank supervisors',
      externalId: ENTRA_SUPERVISORS_OID,
      members: [{ value: grace }],
    })
    assert.equal(byOid.status, 200)
    assert.deepEqual(
      byOid.body.members.map((m: { value: string }) => m.value),
      [grace],
    )
    assert.equal((await scim('GET', `/Users/${grace}`)).body.roles[0].value, 'supervisor')
    assert.deepEqual((await scim('GET', `/Users/${linus}`)).body.roles, [])

    assert.equal((await scim('DELETE', `/Groups/${groupId}`)).status, 204)
    scimError(404)(await scim('GET', `/Groups/${groupId}`))
    assert.deepEqual((await scim('GET', `/Users/${grace}`)).body.roles, [])
  })

  test('a group the mapping does not name leaves roles alone; two groups giving two roles are refused', async () => {
    const created = await scim('POST', '/Users', {
      schemas: [USER],
      userName: 'babbage',
      roles: [{ value: 'Strongroom.Agent' }],
    })
    const babbage = created.body.id
    const everyone = await scim('POST', '/Groups', {
      schemas: [GROUP],
      displayName: 'All staff',
      members: [{ value: babbage }],
    })
    assert.equal(everyone.status, 201)
    assert.equal((await scim('GET', `/Users/${babbage}`)).body.roles[0].value, 'agent')

    const admins = {
      body: (await scim('GET', `/Groups?filter=${encodeURIComponent('displayName eq "Strongroom Admins"')}`)).body
        .Resources[0],
    }
    const agents = await scim('POST', '/Groups', {
      schemas: [GROUP],
      displayName: 'Strongroom Agents',
      members: [{ value: babbage }],
    })
    assert.equal(agents.status, 201, JSON.stringify(agents.body))
    scimError(
      400,
      'invalidValue',
    )(
      await scim('PATCH', `/Groups/${admins.body.id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'Add', path: 'members', value: [{ value: babbage }] }],
      }),
    )
    assert.deepEqual((await scim('GET', `/Groups/${admins.body.id}`)).body.members, [])
    assert.equal((await scim('GET', `/Users/${babbage}`)).body.roles[0].value, 'agent')
  })

  test('the mapping changed: members of a group no longer mapped to admin lose admin access at once', async () => {
    const turing = await entraUser('turing')
    const group = await scim('POST', '/Groups', {
      schemas: [GROUP],
      displayName: 'Strongroom Operators',
      members: [{ value: turing }],
    })
    const mapping = (await call(bank.adminToken, 'GET', '/v1/policies/scim-roles')).body
    assert.equal(
      (
        await call(bank.adminToken, 'PUT', '/v1/policies/scim-roles', {
          roles: { ...mapping.roles, 'Strongroom Operators': 'admin' },
        })
      ).status,
      200,
    )
    assert.equal((await scim('GET', `/Users/${turing}`)).body.roles[0].value, 'admin')
    const session = await signedIn(turing)
    // A mapping that would give a member two roles through their groups is refused, and changes nothing.
    const agents = await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Operators (agents)' })
    await scim('PATCH', `/Groups/${agents.body.id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'Add', path: 'members', value: [{ value: turing }] }],
    })
    const two = await call(bank.adminToken, 'PUT', '/v1/policies/scim-roles', {
      roles: { ...mapping.roles, 'Strongroom Operators': 'admin', 'Operators (agents)': 'agent' },
    })
    assert.equal(two.status, 400)
    assert.equal(two.body.type, 'https://strongroom.dev/problems/request/invalid')
    assert.equal((await call(session.token, 'GET', '/v1/policies/scim-roles')).status, 200)

    assert.equal((await call(bank.adminToken, 'PUT', '/v1/policies/scim-roles', mapping)).status, 200)
    assert.equal((await call(session.token, 'GET', '/v1/policies/scim-roles')).status, 401)
    assert.equal((await session.closed).code, 4001)
    assert.deepEqual((await scim('GET', `/Users/${turing}`)).body.roles, [])

    // A user deleted leaves their groups.
    assert.equal((await scim('DELETE', `/Users/${turing}`)).status, 204)
    assert.deepEqual((await scim('GET', `/Groups/${group.body.id}`)).body.members, [])
  })

  test('a member removed from their only role group is listed without a role and given no conversation, until a group gives one back', async () => {
    const lovelace = await entraUser('lovelace')
    const group = await scim('POST', '/Groups', {
      schemas: [GROUP],
      displayName: 'Strongroom.Agent',
      members: [{ value: lovelace }],
    })
    assert.equal(group.status, 201, JSON.stringify(group.body))
    const listed = async () =>
      (await call(bank.adminToken, 'GET', '/v1/staff')).body.staff.find((s: { id: string }) => s.id === lovelace)
    const present = async () =>
      (await call(bank.adminToken, 'GET', '/v1/staff/presence')).body.staff.some(
        (p: { staffId: string }) => p.staffId === lovelace,
      )
    const name = 'lovelace@bank.example'
    assert.deepEqual(await listed(), { id: lovelace, tenantId: bank.tenantId, name, role: 'agent', active: true })
    assert.equal(await present(), true)
    const conversation = await call(bank.agentToken, 'POST', '/v1/conversations', { customerId: bank.customerId })
    assert.equal(conversation.status, 201, JSON.stringify(conversation.body))
    const conversationId = conversation.body.id
    // A supervisor's console is open: it hears of each role change, and reads its staff list again.
    const supervisor = await staffStream(server, (await bank.staffToken('supervisor', 'sally')).token)
    after(() => supervisor.socket.close())
    const toldOfLovelace = (times: number) =>
      eventually(
        () => supervisor.frames.filter((f) => f.type === 'staff' && f.staffId === lovelace).length,
        (n) => n === times,
      )

    await scim('PATCH', `/Groups/${group.body.id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'remove', path: `members[value eq "${lovelace}"]` }],
    })
    // Listed as holding no role, not as the agent they were; absent from presence, as a deactivated member is.
    assert.deepEqual(await listed(), { id: lovelace, tenantId: bank.tenantId, name, role: null, active: true })
    assert.equal(await present(), false)
    await toldOfLovelace(1)
    const refused = (what: string) => (r: { status: number; body: { type: string; detail: string } }) => {
      assert.equal(r.status, 400, JSON.stringify(r.body))
      assert.equal(r.body.type, 'https://strongroom.dev/problems/request/invalid')
      assert.equal(r.body.detail, `${name} holds no role and cannot ${what}`)
    }
    refused('take conversations')(
      await call(bank.adminToken, 'POST', '/v1/conversations', {
        customerId: bank.customerId,
        assignedStaffId: lovelace,
      }),
    )
    const assignment = `/v1/conversations/${conversationId}/assignment`
    refused('take conversations')(
      await call(bank.adminToken, 'PUT', assignment, { staffId: lovelace, mode: 'reassign' }),
    )
    refused('join conversations')(
      await call(bank.agentToken, 'POST', `/v1/conversations/${conversationId}/members`, {
        kind: 'staff',
        id: lovelace,
      }),
    )
    const unchanged = await call(bank.agentToken, 'GET', `/v1/conversations/${conversationId}`)
    assert.equal(unchanged.body.assignedStaffId, bank.agentId)

    // A group gives the role back: listed as an agent again, and given the conversation.
    await scim('PATCH', `/Groups/${group.body.id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'add', path: 'members', value: [{ value: lovelace }] }],
    })
    assert.deepEqual(await listed(), { id: lovelace, tenantId: bank.tenantId, name, role: 'agent', active: true })
    assert.equal(await present(), true)
    await toldOfLovelace(2)
    const given = await call(bank.adminToken, 'PUT', assignment, { staffId: lovelace, mode: 'transfer' })
    assert.equal(given.status, 200, JSON.stringify(given.body))
    assert.equal(given.body.assignedStaffId, lovelace)
  })

  test('failures answer in SCIM’s error format and change nothing', async () => {
    const hopper = await entraUser('hopper')
    const group = await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Strongroom Auditors' })
    const groupId = group.body.id
    const patch = (...Operations: unknown[]) => scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH], Operations })

    const unknown = `stf_${'x'.repeat(22)}`
    scimError(400, 'invalidValue')(await patch({ op: 'Add', path: 'members', value: [{ value: unknown }] }))
    scimError(
      400,
      'invalidValue',
    )(await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Ghosts', members: [{ value: unknown }] }))
    scimError(400, 'invalidValue')(await patch({ op: 'Add', path: 'members', value: [hopper] }))
    scimError(400, 'invalidValue')(await patch({ op: 'Add', path: 'members', value: [{ id: hopper }] }))
    scimError(400, 'invalidSyntax')(await patch({ op: 'Merge', path: 'members', value: [{ value: hopper }] }))
    scimError(400, 'invalidSyntax')(await patch({ op: 'Add', value: 'members' }))
    scimError(400, 'invalidPath')(await patch({ op: 'Add', path: `members[value eq "${hopper}"]`, value: {} }))
    scimError(400, 'invalidPath')(await patch({ op: 'Remove', path: 'members[display eq "hopper"]' }))
    scimError(400, 'invalidValue')(await patch({ op: 'Remove', path: 'displayName' }))
    scimError(400, 'invalidValue')(await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH], Operations: [] }))
    const malformed = await fetch(`${server.url}/scim/v2/Groups/${groupId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${idp.token}`, 'content-type': SCIM },
      body: '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":',
    })
    assert.equal(malformed.status, 400)
    assert.equal((await malformed.json()).scimType, 'invalidSyntax')
    // A valid operation next to a bad one: the whole PATCH is refused.
    scimError(
      400,
      'invalidValue',
    )(
      await patch(
        { op: 'Add', path: 'members', value: [{ value: hopper }] },
        { op: 'Add', path: 'members', value: [{ value: unknown }] },
      ),
    )
    assert.deepEqual((await scim('GET', `/Groups/${groupId}`)).body.members, [])

    scimError(
      409,
      'uniqueness',
    )(await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Strongroom Auditors' }))
    scimError(404)(await scim('GET', `/Groups/grp_${'x'.repeat(22)}`))
    scimError(404)(await scim('DELETE', `/Groups/grp_${'x'.repeat(22)}`))
    for (const filter of ['displayName co "Strong"', 'members eq "x"', 'displayName eq Admins']) {
      scimError(400, 'invalidFilter')(await scim('GET', `/Groups?filter=${encodeURIComponent(filter)}`))
    }
    // A user's groups are read-only: changed through the group.
    scimError(
      400,
      'mutability',
    )(
      await scim('PATCH', `/Users/${hopper}`, {
        schemas: [PATCH],
        Operations: [{ op: 'add', path: 'groups', value: [{ value: groupId }] }],
      }),
    )
    assert.equal((await scim('GET', `/Users/${hopper}`)).body.groups, undefined)
    // Only the identity provider or an admin.
    assert.equal((await call(bank.agentToken, 'GET', '/scim/v2/Groups')).status, 403)
  })
})
