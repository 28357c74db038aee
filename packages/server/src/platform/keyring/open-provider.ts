import { archiveKeyFileOf, type Config, ConfigError } from '../config.ts'
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
 * The compliance archive's own key provider, never the live keyring's keys: its key file, or KEKs of its own in the
 * HSM (`hsm-archive-kek-N`, in the live keyring's token or the archive's own, STRONGROOM_ARCHIVE_PKCS11_TOKEN_LABEL).
 */
export async function openArchiveKeyProvider(config: Config, options: { create: boolean }): Promise<KeyProvider> {
  if (config.archiveKeyProvider === 'pkcs11') {
    const { Pkcs11Provider, ARCHIVE_KEK_LABEL } = await loadPkcs11Provider()
    const ownToken = config.archivePkcs11TokenLabel !== undefined
    return Pkcs11Provider.open(
      {
        module: config.pkcs11Module as string,
        tokenLabel: ownToken ? config.archivePkcs11TokenLabel : config.pkcs11TokenLabel,
        slot: ownToken ? undefined : config.pkcs11Slot,
        pinFile: config.archivePkcs11PinFile ?? (config.pkcs11PinFile as string),
        kekLabel: ARCHIVE_KEK_LABEL,
      },
      options,
    )
  }
  return LocalKeyFileProvider.open(archiveKeyFileOf(config), options)
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
