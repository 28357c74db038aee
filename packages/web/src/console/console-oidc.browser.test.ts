/**
 * Staff sign in to the console through the bank's identity provider (issue 15), in Chromium, on two nodes sharing
 * PostgreSQL and NATS: the provider is a real one (panva's `oidc-provider`) with its own login page; the staff member,
 * provisioned over SCIM, lands in the console with the role the provider's role claim maps to. Deactivated through
 * SCIM on one node, their console sessions on both nodes end; signing out ends the provider's session too.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  createTestBank,
  createTestDatabase,
  needsPostgresAndNats,
  startTestIdp,
  startTestServer,
  type TestBank,
  type TestDatabase,
  type TestIdp,
  type TestServer,
} from '@strongroom/server/testing'
import { type Browser, chromium, type Page } from 'playwright-core'
import { buildWeb } from '../../build.ts'
import { CHROMIUM, consoleLive, outputDir, watchPage, withoutChromium } from '../browser-testing.ts'

const SECRET = 'console-test-client-secret-0123456789'

describe('the console signs in through the bank’s identity provider, on two nodes', {
  skip: withoutChromium || needsPostgresAndNats(),
}, () => {
  let database: TestDatabase
  let webDir: string
  let a: TestServer
  let b: TestServer
  let bank: TestBank
  let idp: TestIdp
  let browser: Browser
  let staffId: string
  const pageProblems: string[] = []

  const consoleOf = (node: TestServer) => `${node.url}/console/?tenant=${bank.tenantId}`
  async function admin(method: string, url: string, body: unknown, contentType = 'application/json') {
    const response = await fetch(`${a.url}${url}`, {
      method,
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': contentType },
      body: JSON.stringify(body),
    })
    const answer = { status: response.status, body: await response.json() }
    assert.ok(response.ok, `${method} ${url}: ${JSON.stringify(answer)}`)
    return answer.body
  }

  /** A fresh browser context on a node's console, signed in through the provider's own login page. */
  async function signIn(node: TestServer, username: string): Promise<Page> {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage()
    watchPage(page, pageProblems)
    await page.goto(consoleOf(node))
    await page.getByRole('button', { name: 'Sign in with your bank account' }).click()
    await page.getByLabel('Username').fill(username)
    await page.getByRole('button', { name: 'Sign in to the bank' }).click()
    await page.getByRole('heading', { name: 'Inbox' }).waitFor()
    return page
  }

  before(async () => {
    database = await createTestDatabase()
    webDir = mkdtempSync(path.join(os.tmpdir(), 'sr-oidc-web-'))
    await buildWeb({ outDir: webDir, quiet: true })
    // Heartbeats far apart: only the bus can end the other node's stream.
    a = await startTestServer({ webDir, streamHeartbeatMs: 300_000 }, database)
    b = await startTestServer(
      {
        webDir,
        keyFile: a.config.keyFile,
        archiveKeyFile: a.config.archiveKeyFile,
        archiveMember: false,
        streamHeartbeatMs: 300_000,
      },
      database,
    )
    bank = await createTestBank(a)
    idp = await startTestIdp([
      {
        client_id: 'strongroom-console',
        client_secret: SECRET,
        redirect_uris: [a, b].map((node) => `${node.url}/sign-in/oidc/callback`),
        post_logout_redirect_uris: [a, b].map((node) => consoleOf(node)),
        token_endpoint_auth_method: 'client_secret_post',
      },
    ])
    idp.users.set('grace', { sub: 'entra-oid-grace', username: 'grace', roles: ['Strongroom.Supervisor'] })
    idp.users.set('nobody', { sub: 'entra-oid-nobody', username: 'nobody', roles: ['Marketing'] })
    // The README's steps: the role mapping, the provider, and the staff member provisioned over SCIM.
    await admin('PUT', '/v1/policies/scim-roles', {
      roles: { 'Strongroom.Agent': 'agent', 'Strongroom.Supervisor': 'supervisor' },
    })
    await admin('PUT', '/v1/staff-sign-in/oidc', {
      issuer: idp.issuer,
      clientId: 'strongroom-console',
      authMethod: 'client_secret_post',
      clientSecret: SECRET,
      subjectClaim: 'sub',
      roleClaim: 'roles',
    })
    const user = await admin(
      'POST',
      '/scim/v2/Users',
      {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        userName: 'grace',
        externalId: 'entra-oid-grace',
        active: true,
        roles: [{ value: 'Strongroom.Agent' }],
      },
      'application/scim+json',
    )
    staffId = user.id
    browser = await chromium.launch({ executablePath: CHROMIUM })
  })

  after(async () => {
    await browser?.close()
    await idp?.close()
    await b?.stop()
    await a?.stop()
    await database?.drop()
    if (webDir) rmSync(webDir, { recursive: true, force: true })
  })

  test('a staff member signs in at the provider and lands in the console with the mapped role', async () => {
    const page = await signIn(a, 'grace')
    // The provider says supervisor (SCIM said agent): the console offers what a supervisor has.
    await page.getByRole('checkbox', { name: 'Whole team' }).waitFor()
    assert.equal(new URL(page.url()).hash, '', 'the handoff code is taken out of the address')
    await page.screenshot({ path: path.join(outputDir, 'console-oidc-signed-in.png') })

    // Signing out ends the provider's session too (RP-initiated logout), which sends the browser back.
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('button', { name: 'Yes, sign me out' }).click()
    await page.getByRole('button', { name: 'Sign in with your bank account' }).waitFor()
    assert.equal(new URL(page.url()).pathname, '/console/')
    await page.context().close()
  })

  test('a member whose claim maps to no role is told so and gets no session', async () => {
    const page = await (await browser.newContext()).newPage()
    await page.goto(consoleOf(b))
    await page.getByRole('button', { name: 'Sign in with your bank account' }).click()
    await page.getByLabel('Username').fill('nobody')
    await page.getByRole('button', { name: 'Sign in to the bank' }).click()
    await page.getByRole('alert').getByText('Your account has no role in this console').waitFor()
    await page.context().close()
  })

  test('deactivated through SCIM on one node, their console sessions on both nodes end', async () => {
    const onA = await signIn(a, 'grace')
    const onB = await signIn(b, 'grace')
    for (const page of [onA, onB]) await consoleLive(page).waitFor()
    const started = performance.now()
    const response = await fetch(`${b.url}/scim/v2/Users/${staffId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${bank.adminToken}`, 'content-type': 'application/scim+json' },
      body: JSON.stringify({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
      }),
    })
    assert.equal(response.status, 200)
    const ended = [onA, onB].map(async (page) => {
      await page.getByRole('alert').getByText('Your session has ended. Sign in again.').waitFor()
      return performance.now() - started
    })
    const [msA, msB] = await Promise.all(ended)
    console.log(`console sessions ended ${msA?.toFixed(0)} ms (node A) and ${msB?.toFixed(0)} ms (node B) after it`)
    await onA.screenshot({ path: path.join(outputDir, 'console-oidc-session-ended.png') })
    // And the provider's session does not bring them back.
    await onA.getByRole('button', { name: 'Sign in with your bank account' }).click()
    await onA.getByRole('alert').getByText('Your account is deactivated').waitFor()
    const unexpected = pageProblems.filter((p) => !/^401 |refused the stream credentials/.test(p))
    assert.deepEqual(unexpected, [])
  })
})
