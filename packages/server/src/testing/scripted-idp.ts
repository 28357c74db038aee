import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair } from 'jose'

/**
 * An OpenID provider whose ID tokens a test writes itself (forged ones included), where `test-idp.ts`'s real provider
 * would refuse to: discovery, a JWKS of one ES256 key (`kid` "k1"), an authorization endpoint that sends the browser
 * straight back with a code, and a token endpoint answering with `idToken(nonce)` (the nonce Strongroom sent).
 */
export async function startScriptedIdp(options: {
  idToken: (nonce: string) => Promise<string>
  /** More discovery fields (what the provider supports). */
  discovery?: Record<string, unknown>
}): Promise<{ issuer: string; signingKey: CryptoKey; close(): void }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
  let issuer = ''
  let nonce = ''
  const http = createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', issuer)
    const json = (body: unknown) =>
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    if (url.pathname === '/.well-known/openid-configuration') {
      return json({
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['ES256'],
        code_challenge_methods_supported: ['S256'],
        ...options.discovery,
      })
    }
    if (url.pathname === '/jwks') return json({ keys: [jwk] })
    if (url.pathname === '/authorize') {
      nonce = url.searchParams.get('nonce') as string
      const back = new URL(url.searchParams.get('redirect_uri') as string)
      back.searchParams.set('code', crypto.randomUUID())
      back.searchParams.set('state', url.searchParams.get('state') as string)
      return response.writeHead(303, { location: back.href }).end()
    }
    for await (const _ of request);
    return json({ access_token: 'at', token_type: 'Bearer', expires_in: 60, id_token: await options.idToken(nonce) })
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  issuer = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  return { issuer, signingKey: privateKey, close: () => http.close() }
}
