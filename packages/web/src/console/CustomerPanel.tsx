import {
  type Customer,
  type CustomerFactor,
  type Device,
  type DeviceVerdict,
  type SimSwapRisk,
  StrongroomError,
} from '@strongroom/sdk'
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import type { ConsoleSession } from './session.ts'

/** A device enrolled this recently is new: fraud often starts on a phone added the same week. */
export const NEW_DEVICE_DAYS = 7

const day = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' })
const problemText = (e: unknown) =>
  e instanceof StrongroomError ? (e.problem.detail ?? e.problem.title) : (e as Error).message

type Loaded<T> = { value: T } | { error: string } | undefined

interface Risk {
  customer: Loaded<Customer>
  devices: Loaded<Device[]>
  verdicts: Loaded<DeviceVerdict[]>
  factors: Loaded<CustomerFactor[]>
  simSwap: Loaded<SimSwapRisk | 'no-number'>
}

const isNew = (device: Device) => Date.now() - Date.parse(device.createdAt) < NEW_DEVICE_DAYS * 86_400_000
const severity = { allow: 0, limited: 1, deny: 2 } as const

/**
 * The open conversation's customer: risk badges (a SIM swapped recently, a newly enrolled device, the integrity
 * verdicts of their devices) and their devices, each with a revoke that asks for confirmation first.
 */
export function CustomerPanel(props: { session: ConsoleSession; customerId: string }) {
  const { session, customerId } = props
  const [risk, setRisk] = useState<Risk>({
    customer: undefined,
    devices: undefined,
    verdicts: undefined,
    factors: undefined,
    simSwap: undefined,
  })
  const [announcement, setAnnouncement] = useState('')

  const load = useCallback(async () => {
    const settle = <T,>(promise: Promise<T>): Promise<Loaded<T>> =>
      promise.then(
        (value) => ({ value }),
        (error) => ({ error: problemText(error) }),
      )
    const [customer, devices, verdicts, factors] = await Promise.all([
      settle(session.client.getCustomer(customerId)),
      settle(session.client.listDevices(customerId).then((r) => r.devices)),
      settle(session.client.deviceVerdicts(customerId)),
      settle(session.client.customerFactors(customerId)),
    ])
    setRisk((r) => ({ ...r, customer, devices, verdicts, factors }))
    const phone = customer && 'value' in customer ? customer.value.phoneNumber : undefined
    const simSwap = phone
      ? await settle(session.client.checkSimSwap(phone))
      : customer && 'value' in customer
        ? { value: 'no-number' as const }
        : customer
    setRisk((r) => ({ ...r, simSwap }))
  }, [session, customerId])

  useEffect(() => {
    void load()
  }, [load])

  const devices = risk.devices && 'value' in risk.devices ? risk.devices.value : []
  const verdicts = risk.verdicts && 'value' in risk.verdicts ? risk.verdicts.value : []
  const active = devices.filter((d) => d.status === 'active')
  const verdictOf = (deviceId: string) => verdicts.find((v) => v.deviceId === deviceId)
  // A browser cannot attest: its verdict is the bank's policy for browsers, not an attestation it never makes.
  const browsers = active.filter((d) => d.kind === 'web')
  const worst = active
    .filter((d) => d.kind !== 'web')
    .map((d) => verdictOf(d.id))
    .reduce<DeviceVerdict | undefined>(
      (w, v) => (v && (!w || severity[v.decision] > severity[w.decision]) ? v : w),
      undefined,
    )
  const customer = risk.customer && 'value' in risk.customer ? risk.customer.value : undefined

  return (
    <section class="panel" aria-labelledby="customer-heading">
      <h2 id="customer-heading">Customer</h2>
      {risk.customer && 'error' in risk.customer && (
        <p class="alert" role="alert">
          The customer could not be loaded: {risk.customer.error}
        </p>
      )}
      {customer && (
        <p class="customer-name">
          {customer.displayName} <span class="muted">· {customer.externalRef}</span>
        </p>
      )}
      <ul class="badges" aria-label="Risk signals">
        <SimSwapBadge simSwap={risk.simSwap} />
        {active.some(isNew) && <li class="badge warn">New device: enrolled in the last {NEW_DEVICE_DAYS} days</li>}
        {risk.devices && 'value' in risk.devices && !active.some(isNew) && <li class="badge ok">No new device</li>}
        <FactorBadge factors={risk.factors} />
        {browsers.length > 0 && (
          <li class="badge warn">
            Browser device: no attestation; payments by passkey only, up to the bank’s limit for browsers
          </li>
        )}
        {worst ? (
          <li class={`badge ${worst.decision === 'allow' ? 'ok' : worst.decision === 'limited' ? 'warn' : 'danger'}`}>
            {verdictLabel(worst)}
          </li>
        ) : (
          risk.verdicts && browsers.length < active.length && <li class="badge muted">Integrity: no attestation yet</li>
        )}
      </ul>
      <h3>Devices</h3>
      {risk.devices === undefined && <p class="help">Loading…</p>}
      {risk.devices && 'error' in risk.devices && (
        <p class="alert" role="alert">
          The devices could not be loaded: {risk.devices.error}
        </p>
      )}
      {risk.devices && 'value' in risk.devices && devices.length === 0 && <p class="help">No device enrolled.</p>}
      {devices.length > 0 && (
        <ul class="devices">
          {devices.map((device) => (
            <DeviceRow
              key={device.id}
              session={session}
              device={device}
              verdict={verdictOf(device.id)}
              onRevoked={(label) => {
                setAnnouncement(`${label} was revoked.`)
                void load()
              }}
            />
          ))}
        </ul>
      )}
      <p class="visually-hidden" role="status">
        {announcement}
      </p>
      <button type="button" class="secondary small" onClick={() => void load()}>
        Check again
      </button>
    </section>
  )
}

function SimSwapBadge(props: { simSwap: Risk['simSwap'] }) {
  const { simSwap } = props
  if (simSwap === undefined) return <li class="badge muted">SIM: checking…</li>
  if ('error' in simSwap) return <li class="badge muted">SIM swap: the carrier did not answer</li>
  if (simSwap.value === 'no-number') return <li class="badge muted">SIM swap: no phone number on file</li>
  return simSwap.value.swapped ? (
    <li class="badge danger">SIM swapped in the last {simSwap.value.windowHours} hours</li>
  ) : (
    <li class="badge ok">SIM unchanged for {simSwap.value.windowHours} hours</li>
  )
}

const factorNames = { totp: 'Authenticator app', passkey: 'Passkey' } as const
const moment = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })

/**
 * A factor the customer added within the bank's cooling-off period: it cannot yet approve a large payment, and a
 * swapped-in factor is how an account takeover starts.
 */
function FactorBadge(props: { factors: Risk['factors'] }) {
  const { factors } = props
  if (factors === undefined || 'error' in factors) return null
  const cooling = factors.value.filter((f) => f.coolingOffUntil !== null)
  if (cooling.length === 0) return <li class="badge ok">No new authenticator</li>
  return (
    <>
      {cooling.map((f) => (
        <li key={f.id} class="badge warn">
          New {factorNames[f.kind].toLowerCase()}: cooling off until{' '}
          {moment.format(new Date(f.coolingOffUntil as string))}
        </li>
      ))}
    </>
  )
}

function verdictLabel(verdict: DeviceVerdict): string {
  if (verdict.decision === 'allow') return `Integrity: passed (${verdict.format}, ${verdict.securityLevel})`
  const flags = verdict.flags.length > 0 ? `; ${verdict.flags.join(', ')}` : ''
  return `Integrity: ${verdict.decision === 'limited' ? 'limited' : 'denied'} (${verdict.reason}${flags})`
}

function DeviceRow(props: {
  session: ConsoleSession
  device: Device
  verdict: DeviceVerdict | undefined
  onRevoked: (label: string) => void
}) {
  const { session, device, verdict } = props
  const [confirming, setConfirming] = useState(false)
  const [reason, setReason] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | undefined>(undefined)
  const cancel = useRef<HTMLButtonElement>(null)
  const revokeButton = useRef<HTMLButtonElement>(null)
  const idBase = `device-${device.id}`
  // A pending device (an enrolment code not used yet) has no name of its own.
  const name = device.label ?? 'Device awaiting enrolment'

  useEffect(() => {
    if (confirming) cancel.current?.focus()
  }, [confirming])

  const revoke = async () => {
    setBusy(true)
    setError(undefined)
    try {
      await session.client.revokeDevice(device.id, reason.trim() || undefined)
      setConfirming(false)
      props.onRevoked(name)
    } catch (e) {
      setError(`Not revoked: ${problemText(e)}`)
    } finally {
      setBusy(false)
    }
  }

  return (
    <li class={`device status-${device.status}`}>
      <p class="device-head">
        <strong>{name}</strong> <span class="muted">{device.status}</span>{' '}
        <span class="muted">· {device.kind === 'web' ? 'browser' : 'app'}</span>
      </p>
      <p class="help">
        Enrolled <time dateTime={device.createdAt}>{day.format(new Date(device.createdAt))}</time>
        {device.status === 'active' && isNew(device) && ' · new'}
        {verdict && ` · ${verdictLabel(verdict)}`}
      </p>
      {device.status === 'active' && session.can('devices:revoke') && !confirming && (
        <button
          ref={revokeButton}
          type="button"
          class="secondary small"
          aria-label={`Revoke ${name}`}
          onClick={() => setConfirming(true)}
        >
          Revoke
        </button>
      )}
      {confirming && (
        <fieldset class="confirm" aria-labelledby={`${idBase}-confirm`}>
          <p id={`${idBase}-confirm`}>
            Revoke <strong>{name}</strong>? It is signed out at once, leaves every conversation and erases what
            Strongroom stored on it the next time it connects. This cannot be undone.
          </p>
          <label for={`${idBase}-reason`}>Reason (kept in the audit log)</label>
          <input
            id={`${idBase}-reason`}
            maxLength={200}
            value={reason}
            onInput={(e) => setReason((e.target as HTMLInputElement).value)}
          />
          <div class="confirm-actions">
            <button type="button" class="danger" disabled={busy} onClick={() => void revoke()}>
              {busy ? 'Revoking…' : 'Revoke device'}
            </button>
            <button
              ref={cancel}
              type="button"
              class="secondary"
              onClick={() => {
                setConfirming(false)
                setTimeout(() => revokeButton.current?.focus())
              }}
            >
              Cancel
            </button>
          </div>
        </fieldset>
      )}
      {error && (
        <p class="alert" role="alert">
          {error}
        </p>
      )}
    </li>
  )
}
