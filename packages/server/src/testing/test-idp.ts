import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider, { type ClientMetadata } from 'oidc-provider'

/** A user of the test identity provider: their subject, login name and the values of their role claim. */
export interface TestIdpUser {
  sub: string
  username: string
  roles: string[]
  groups?: string[]
}

export interface TestIdp {
  issuer: string
  /** The users who can sign in (by username, on the provider's own login form); tests add and change them. */
  users: Map<string, TestIdpUser>
  close(): Promise<void>
}

const htmlEscape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const loginPage = (uid: string, problem?: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test identity provider</title></head>
<body><main><h1>Bank identity provider (test)</h1>
<form method="post" action="/interaction/${htmlEscape(uid)}">
<label for="login">Username</label> <input id="login" name="login" autocomplete="username" required>
${problem ? `<p role="alert">${htmlEscape(problem)}</p>` : ''}
<button type="submit">Sign in to the bank</button>
</form></main></body></html>`

async function formOf(request: IncomingMessage): Promise<URLSearchParams> {
  let body = ''
  for await (const chunk of request) body += chunk
  return new URLSearchParams(body)
}

/**
 * A real OpenID provider for tests (panva's `oidc-provider`, certified): authorization code with PKCE, client secret
 * or private_key_jwt clients, RP-initiated and back-channel logout, and a login form of its own where a test types a username. Consent
 * is granted as a bank's provider does for its own apps. ID tokens carry `preferred_username`, `roles` and `groups`.
 */
export async function startTestIdp(clients: ClientMetadata[]): Promise<TestIdp> {
  const users = new Map<string, TestIdpUser>()
  const bySub = (sub: string) => [...users.values()].find((u) => u.sub === sub)
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const provider = new Provider(issuer, {
    clients,
    cookies: { keys: ['test-idp-cookie-key'] },
    claims: { openid: ['sub'], profile: ['preferred_username', 'roles', 'groups'], email: ['email'] },
    // The role and group claims in the ID token itself (Entra ID and Okta put them there).
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true },
      // Clients with a backchannel_logout_uri get a logout token when the user signs out here.
      backchannelLogout: { enabled: true },
    },
    pkce: { required: () => true },
    // Its back-channel logout reaches Strongroom on 127.0.0.1, an address oidc-provider's guard against server-side
    // request forgery refuses: the test provider drops that guard (a real provider calls a public https URL).
    fetch: (url, options) => globalThis.fetch(url, { ...options, dispatcher: undefined } as RequestInit),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const user = bySub(sub)
      if (!user) return undefined
      return {
        accountId: sub,
        claims: async () => ({
          sub,
          preferred_username: user.username,
          email: `${user.username}@bank.example`,
          roles: user.roles,
          groups: user.groups ?? [],
        }),
      }
    },
    async loadExistingGrant(ctx) {
      const { client, session } = ctx.oidc
      if (!client || !session?.accountId) return undefined
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId })
      grant.addOIDCScope('openid profile email')
      await grant.save()
      return grant
    },
  })
  provider.on('server_error', () => {})
  const callback = provider.callback()
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const interaction = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(request.url ?? '')
    if (!interaction) {
      callback(request, response)
      return
    }
    void (async () => {
      const uid = interaction[1] as string
      if (request.method === 'GET') {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(loginPage(uid))
        return
      }
      const user = users.get((await formOf(request)).get('login') ?? '')
      if (!user) {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(loginPage(uid, 'Unknown user'))
        return
      }
      await provider.interactionFinished(request, response, { login: { accountId: user.sub } })
    })().catch(() => response.writeHead(500).end())
  })
  return {
    issuer,
    users,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
