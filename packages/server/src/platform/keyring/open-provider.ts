import { type Config, ConfigError } from '../config.ts'
import type { KeyProvider } from './key-provider.ts'
import { LocalKeyFileProvider } from './local-key-file.ts'

/**
 * The live keyring's key provider, as configured: the local key file (dev, and deployments without an HSM) or a
 * PKCS#11 token (STRONGROOM_KEY_PROVIDER=pkcs11). With `create`, its first KEK is made when there is none.
 */
export async function openKeyProvider(config: Config, options: { create: boolean }): Promise<KeyProvider> {
  if (config.keyProvider === 'pkcs11') {
    const { Pkcs11Provider } = await loadPkcs11Provider()
    return Pkcs11Provider.open(
      {
        module: config.pkcs11Module as string,
        tokenLabel: config.pkcs11TokenLabel,
        slot: config.pkcs11Slot,
        pinFile: config.pkcs11PinFile as string,
      },
      options,
    )
  }
  return LocalKeyFileProvider.open(config.keyFile, options)
}

/**
 * The PKCS#11 provider is loaded only when configured: its native addon (`pkcs11js`) is an optional dependency, built
 * at install where a C++ compiler is present, so a machine without one still installs and runs on the key file.
 */
async function loadPkcs11Provider() {
  try {
    return await import('./pkcs11-provider.ts')
  } catch (error) {
    throw new ConfigError(
      'STRONGROOM_KEY_PROVIDER',
      `is pkcs11, but the pkcs11js addon cannot be loaded (${(error as Error).message.split('\n')[0]}): install a C++ compiler and Python, then run \`npm rebuild pkcs11js\``,
    )
  }
}
