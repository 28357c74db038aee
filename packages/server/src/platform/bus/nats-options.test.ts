import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { makeLocalCertificate } from '../../../cluster/local-cluster.ts'
import { ConfigError } from '../config.ts'
import { connectNatsBus } from './nats-bus.ts'
import { type NatsSettings, natsConnectionOptions } from './nats-options.ts'

const natsServer = ['/usr/sbin/nats-server', 'nats-server'].find((bin) => !spawnSync(bin, ['--version']).error)
// Under CI a missing nats-server fails these tests instead of skipping them.
const skip = process.env.CI === 'true' || natsServer ? false : 'needs nats-server (apt-get install nats-server)'

const none: Omit<NatsSettings, 'natsUrl'> = {
  natsCredentialsFile: undefined,
  natsTlsCaFile: undefined,
  natsTlsCertFile: undefined,
  natsTlsKeyFile: undefined,
}

describe('NATS connection settings', () => {
  test('user and password come from NATS_URL, decoded, and the server address goes without them', () => {
    const options = natsConnectionOptions({ ...none, natsUrl: 'nats://strong%40room:p%3Ass@nats.internal:4333' })
    assert.equal(options.servers, 'nats.internal:4333')
    assert.equal(options.user, 'strong@room')
    assert.equal(options.pass, 'p:ss')
    assert.equal(options.tls, undefined, 'nats:// without a CA is plain')
  })

  test('tls:// or a CA file asks for TLS; bad combinations stop with the setting named', () => {
    assert.deepEqual(natsConnectionOptions({ ...none, natsUrl: 'tls://nats.internal' }).tls, {})
    const refuses = (settings: Partial<typeof none>, setting: string) =>
      assert.throws(
        () => natsConnectionOptions({ ...none, ...settings, natsUrl: 'nats://u:p@nats.internal' }),
        (error) => error instanceof ConfigError && error.setting === setting,
      )
    refuses({ natsCredentialsFile: '/etc/strongroom/nats.creds' }, 'NATS_CREDENTIALS_FILE')
    refuses({ natsTlsCertFile: '/etc/strongroom/client.pem' }, 'NATS_TLS_KEY_FILE')
    refuses({ natsTlsCaFile: '/nonexistent/ca.pem' }, 'NATS_TLS_CA_FILE')
  })
})

describe('NATS with a password and TLS', { skip }, () => {
  let dir: string
  let port: number
  let server: ChildProcess

  before(async () => {
    assert.ok(natsServer, 'nats-server is not installed')
    dir = mkdtempSync(path.join(os.tmpdir(), 'sr-nats-'))
    makeLocalCertificate(path.join(dir, 'server.pem'), 'DNS:localhost')
    port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number }
        probe.close(() => resolve(port))
      })
    })
    writeFileSync(
      path.join(dir, 'nats.conf'),
      `listen: 127.0.0.1:${port}
tls { cert_file: "${dir}/server.pem.crt", key_file: "${dir}/server.pem.key" }
authorization { users: [ { user: strongroom, password: "right-password" } ] }
`,
    )
    server = spawn(natsServer as string, ['-c', path.join(dir, 'nats.conf')], { stdio: 'ignore' })
    for (let i = 0; i < 100; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const socket = createServer().listen(port, '127.0.0.1', () => socket.close(() => resolve(false)))
        socket.on('error', () => resolve(true))
      })
      if (up) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })

  after(async () => {
    if (server && server.exitCode === null) {
      const exited = once(server, 'exit')
      server.kill('SIGTERM')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  })

  // A certificate names the server by DNS name, as a bank's NATS certificate does.
  const settings = (natsUrl: string, trustTheCa = true) => ({
    ...none,
    natsUrl,
    natsTlsCaFile: trustTheCa ? path.join(dir, 'server.pem.crt') : undefined,
  })

  test('the right user and password over TLS to a server whose certificate chains to the CA: connected', async () => {
    const bus = await connectNatsBus(settings(`tls://strongroom:right-password@localhost:${port}`))
    try {
      assert.equal(bus.connected(), true)
    } finally {
      await bus.close()
    }
  })

  test('a wrong password is refused, and the error names the host, never the password', async () => {
    await assert.rejects(connectNatsBus(settings(`tls://strongroom:wrong-password@localhost:${port}`)), (error) => {
      assert.match((error as Error).message, new RegExp(`^NATS_URL: cannot connect to localhost:${port} \\(`))
      assert.doesNotMatch((error as Error).message, /password/)
      return true
    })
  })

  test('a server certificate the CA did not sign is refused', async () => {
    await assert.rejects(
      connectNatsBus(settings(`tls://strongroom:right-password@localhost:${port}`, false)),
      /NATS_URL: cannot connect/,
    )
  })
})
