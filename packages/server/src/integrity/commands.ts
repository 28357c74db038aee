import { operator, recordAudit, SYSTEM_CHAIN } from '../audit/events.ts'
import { type Command, command, out, UsageError, withStorage } from '../platform/command.ts'
import { openSigningKey } from '../platform/keyring/signing-keys.ts'
import { PinSetRotationError, pinSetKeys, publishPinSet } from './pin-sets.ts'

/** The signed pin sets apps pin the bank's hosts with. */
export const integrityCommands: readonly Command[] = [
  command({
    name: 'pins set',
    synopsis: '--host H --pin P [--pin P2] [--days 30] [--force]',
    summary:
      "publish a signed pin set pinning host H to these SPKI SHA-256 pins (base64);\nthe new pins must keep one of the host's current ones unless --force",
    options: {
      host: { type: 'string' },
      pin: { type: 'string', multiple: true },
      days: { type: 'string' },
      force: { type: 'boolean' },
    },
    async run(values, { config }) {
      if (!values.host || !values.pin?.length) throw new UsageError('pins set needs --host and at least one --pin')
      const input = {
        host: values.host,
        pins: values.pin,
        days: Number(values.days ?? 30),
        force: values.force ?? false,
      }
      if (!Number.isInteger(input.days) || input.days < 1 || input.days > 400) {
        throw new UsageError('--days is a whole number of days from 1 to 400')
      }
      const set = await withStorage(config(), async ({ db, provider }) => {
        try {
          const published = await publishPinSet(db, await openSigningKey(db, provider, 'pin-set'), input)
          await recordAudit(db, {
            tenantId: SYSTEM_CHAIN,
            actor: operator,
            action: 'pins.publish',
            outcome: 'success',
            details: { version: published.version, host: input.host, pins: input.pins, forced: input.force },
          })
          return published
        } catch (error) {
          if (error instanceof PinSetRotationError) throw new UsageError(error.message)
          throw error
        }
      })
      out(set)
    },
  }),
  command({
    name: 'pins keys',
    summary: 'print the public keys apps verify pin sets with (ship them in the app)',
    async run(_values, { config }) {
      out({
        keys: await withStorage(config(), async ({ db, provider }) => {
          await openSigningKey(db, provider, 'pin-set')
          return pinSetKeys(db)
        }),
      })
    },
  }),
]
