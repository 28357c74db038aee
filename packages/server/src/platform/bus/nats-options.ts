import { readFileSync } from 'node:fs'
import { type ConnectionOptions, credsAuthenticator } from 'nats'
import { type Config, ConfigError } from '../config.ts'

export type NatsSettings = Pick<
  Config,
  'natsUrl' | 'natsCredentialsFile' | 'natsTlsCaFile' | 'natsTlsCertFile' | 'natsTlsKeyFile'
>

/**
 * How a node connects to NATS: the server from NATS_URL, user and password from its `user:password@` part, a
 * credentials file (NATS_CREDENTIALS_FILE) for servers in operator mode, and TLS (required, never downgraded) when
 * the URL is `tls://` or a CA or client certificate is given. Files are read here, at start, so that a missing one
 * stops the node with one line naming its setting.
 */
export function natsConnectionOptions(settings: NatsSettings & { natsUrl: string }): Partial<ConnectionOptions> {
  const url = new URL(settings.natsUrl)
  const options: Partial<ConnectionOptions> = { servers: `${url.hostname}:${url.port || '4222'}` }
  if (url.username) {
    if (settings.natsCredentialsFile) {
      throw new ConfigError('NATS_CREDENTIALS_FILE', 'cannot be used with a user and password in NATS_URL')
    }
    options.user = decodeURIComponent(url.username)
    options.pass = decodeURIComponent(url.password)
  }
  if (settings.natsCredentialsFile) {
    options.authenticator = credsAuthenticator(readSetting('NATS_CREDENTIALS_FILE', settings.natsCredentialsFile))
  }
  if (!settings.natsTlsCertFile !== !settings.natsTlsKeyFile) {
    throw new ConfigError(
      settings.natsTlsCertFile ? 'NATS_TLS_KEY_FILE' : 'NATS_TLS_CERT_FILE',
      'must be set with the other',
    )
  }
  const wantsTls = url.protocol === 'tls:' || settings.natsTlsCaFile || settings.natsTlsCertFile
  if (wantsTls) {
    options.tls = {
      ...(settings.natsTlsCaFile && { ca: text('NATS_TLS_CA_FILE', settings.natsTlsCaFile) }),
      ...(settings.natsTlsCertFile && { cert: text('NATS_TLS_CERT_FILE', settings.natsTlsCertFile) }),
      ...(settings.natsTlsKeyFile && { key: text('NATS_TLS_KEY_FILE', settings.natsTlsKeyFile) }),
    }
  }
  return options
}

function readSetting(setting: string, file: string): Uint8Array {
  try {
    return readFileSync(file)
  } catch {
    throw new ConfigError(setting, `cannot be read: ${file}`)
  }
}

function text(setting: string, file: string): string {
  return Buffer.from(readSetting(setting, file)).toString('utf8')
}
