import type { PayeeBlock } from '@strongroom/sdk'
import { useEffect, useId, useState } from 'preact/hooks'
import type { ConsoleSession } from './session.ts'

const moment = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })

/**
 * Payees the customer blocked by declining a request as "This wasn't me" (supervisors and administrators): each block
 * in force can be lifted, with a reason for the audit log, once the bank is satisfied the payee is genuine.
 */
export function PayeeBlocksPanel(props: { session: ConsoleSession; customerId: string }) {
  const { session, customerId } = props
  const ids = useId()
  const [blocks, setBlocks] = useState<PayeeBlock[] | { error: string } | undefined>(undefined)
  const [lifting, setLifting] = useState<string | undefined>(undefined)
  const [reason, setReason] = useState('')
  const [busy, setBusy] = useState(false)
  const [said, setSaid] = useState<{ ok: boolean; text: string } | undefined>(undefined)

  const load = () =>
    session.client.listPayeeBlocks(customerId).then(setBlocks, (e: Error) => setBlocks({ error: e.message }))
  useEffect(() => {
    void load()
  }, [customerId])

  const lift = async (event: Event, block: PayeeBlock) => {
    event.preventDefault()
    setBusy(true)
    try {
      await session.client.liftPayeeBlock(block.consentId, reason.trim())
      setSaid({ ok: true, text: `Payments to ${block.payee.name} can be requested again.` })
      setLifting(undefined)
      setReason('')
      await load()
    } catch (e) {
      setSaid({ ok: false, text: `Not lifted: ${(e as Error).message}` })
    } finally {
      setBusy(false)
    }
  }

  const list = Array.isArray(blocks) ? blocks : []
  const inForce = list.filter((b) => b.liftedAt === null)
  // Several declines on one account are one block: shown once, by the newest.
  const shown = inForce.filter(
    (b, i) =>
      inForce.findIndex((o) => o.payee.account.replace(/\s+/g, '') === b.payee.account.replace(/\s+/g, '')) === i,
  )
  return (
    <section class="panel" aria-labelledby={`${ids}-heading`}>
      <h2 id={`${ids}-heading`}>Blocked payees</h2>
      {blocks && 'error' in blocks && (
        <p class="alert" role="alert">
          The blocks could not be loaded: {blocks.error}
        </p>
      )}
      {Array.isArray(blocks) && shown.length === 0 && <p class="help">No payee is blocked for this customer.</p>}
      <ul class="devices">
        {shown.map((block) => (
          <li key={block.consentId}>
            <p>
              <strong>{block.payee.name}</strong> <span class="muted">{block.payee.account}</span>
            </p>
            <p class="help">
              Blocked <time dateTime={block.blockedAt}>{moment.format(new Date(block.blockedAt))}</time> when the
              customer declined a request as not theirs.
            </p>
            {lifting === block.consentId ? (
              <form class="confirm" onSubmit={(event) => void lift(event, block)}>
                <label for={`${ids}-reason`}>Why lift it (kept in the audit log)</label>
                <input
                  id={`${ids}-reason`}
                  required
                  minLength={3}
                  maxLength={500}
                  value={reason}
                  onInput={(event) => setReason((event.target as HTMLInputElement).value)}
                />
                <div class="confirm-actions">
                  <button type="submit" class="danger" disabled={busy || reason.trim().length < 3}>
                    Lift block
                  </button>
                  <button type="button" class="secondary" onClick={() => setLifting(undefined)}>
                    Cancel
                  </button>
                </div>
              </form>
            ) : (
              <button
                type="button"
                class="secondary small"
                aria-label={`Lift the block on ${block.payee.name}`}
                onClick={() => {
                  setSaid(undefined)
                  setLifting(block.consentId)
                }}
              >
                Lift block
              </button>
            )}
          </li>
        ))}
      </ul>
      <p class={said && !said.ok ? 'alert' : 'help'} role="status">
        {said?.text}
      </p>
    </section>
  )
}
