/**
 * An operator configures a tenant's staff sign-in through the bank's OpenID provider from the command line (issue 15):
 * the client secret or private key comes from a file (in no shell history or process list), is sealed at rest and
 * never shown again; the role claim's values map to roles; bad input stops with the usage and changes nothing.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, test } from 'node:test'
import pg from 'pg'
import { cliHarness } from '../testing/cli.ts'
import { needsPostgres } from '../testing/requirements.ts'

describe('`strongroom staff oidc`', { skip: needsPostgres() }, () => {
  const cli = cliHarness()
  const json = (args: string[]) => {
    const result = cli.run(args)
    assert.equal(result.status, 0, result.stderr)
    return JSON.parse(result.stdout)
  }

  test('sets, shows and removes the provider; the secret stays sealed; bad input changes nothing', async () => {
    const tenantId = json(['tenant', 'create', '--name', 'OIDC Bank']).id as string
    const secretFile = path.join(cli.dir, 'client-secret')
    writeFileSync(secretFile, 'top-secret-client-secret-value\n', { mode: 0o600 })
    const base = ['staff', 'oidc', 'set', '--tenant', tenantId, '--issuer', 'https://idp.example/tenant/v2.0']

    const refused = cli.run([...base, '--client-id', 'app-1', '--auth-method', 'client_secret_post'])
    assert.equal(refused.status, 1, 'a client secret method with no secret')
    assert.match(refused.stderr, /client_secret_post needs a clientSecret/)
    const badMethod = cli.run([...base, '--client-id', 'app-1', '--auth-method', 'password'])
    assert.equal(badMethod.status, 2)
    assert.match(badMethod.stderr, /authMethod/)
    const badMap = cli.run([...base, '--client-id', 'a', '--auth-method', 'private_key_jwt', '--role-map', 'X=root'])
    assert.equal(badMap.status, 2)
    assert.match(badMap.stderr, /--role-map takes VALUE=ROLE pairs/)
    assert.equal(cli.run(['staff', 'oidc', 'show', '--tenant', tenantId]).status, 2, 'nothing was saved')

    const set = json([
      ...base,
      '--client-id',
      'app-1',
      '--auth-method',
      'client_secret_post',
      '--client-secret-file',
      secretFile,
      '--subject-claim',
      'oid',
      '--session',
      '4h',
      '--role-map',
      'Strongroom.Agent=agent,Strongroom.Admin=admin',
    ])
    assert.deepEqual(
      [set.issuer, set.clientId, set.authMethod, set.subjectClaim, set.roleClaim, set.sessionSeconds],
      ['https://idp.example/tenant/v2.0', 'app-1', 'client_secret_post', 'oid', 'roles', 4 * 3600],
    )
    assert.deepEqual(set.roleMap, { 'Strongroom.Agent': 'agent', 'Strongroom.Admin': 'admin' })
    assert.ok(!JSON.stringify(set).includes('top-secret'), 'the secret is not shown')
    const db = new pg.Client({ connectionString: cli.database.url })
    await db.connect()
    try {
      const { rows } = await db.query('select credential from staff_oidc_providers where tenant_id = $1', [tenantId])
      assert.equal(rows.length, 1)
      assert.ok(!Buffer.from(rows[0].credential).toString('latin1').includes('top-secret'), 'sealed at rest')
    } finally {
      await db.end()
    }

    // private_key_jwt with no key: one is made, and only its public half is shown.
    const keyed = json([...base, '--client-id', 'app-1', '--auth-method', 'private_key_jwt'])
    assert.equal(keyed.publicJwk.kty, 'RSA')
    assert.equal(keyed.publicJwk.d, undefined)
    assert.deepEqual(json(['staff', 'oidc', 'show', '--tenant', tenantId]).publicJwk, keyed.publicJwk)
    assert.deepEqual(json(['staff', 'oidc', 'remove', '--tenant', tenantId]), { removed: tenantId })
    assert.equal(cli.run(['staff', 'oidc', 'show', '--tenant', tenantId]).status, 2)
  })
})
