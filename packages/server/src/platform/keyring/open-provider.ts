import type { Config } from '../config.ts'
import type { KeyProvider } from './key-provider.ts'
import { LocalKeyFileProvider } from './local-key-file.ts'
import { Pkcs11Provider } from './pkcs11-provider.ts'

/**
 * The live keyring's key provider, as configured: the local key file (dev, and deployments without an HSM) or a
 * PKCS#11 token (STRONGROOM_KEY_PROVIDER=pkcs11). With `create`, its first KEK is made when there is none.
 */
export function openKeyProvider(config: Config, options: { create: boolean }): Promise<KeyProvider> {
  if (config.keyProvider === 'pkcs11') {
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
