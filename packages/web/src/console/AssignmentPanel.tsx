import { type AssignmentMode, type StaffMember, StrongroomError } from '@strongroom/sdk'
import { useState } from 'preact/hooks'
import { PresenceBadge, presenceLabels } from './presence.tsx'
import type { ConsoleSession, InboxEntry } from './session.ts'

/** Roles that answer conversations, and so can be given one: not compliance, nor no role at all (`null`). */
const ANSWERING = new Set<StaffMember['role']>(['agent', 'supervisor', 'admin'])

/**
 * A supervisor gives the open conversation to another agent: reassign (whoever had it stays a member) or transfer
 * (whoever had it leaves it, live).
 */
export function AssignmentPanel(props: { session: ConsoleSession; entry: InboxEntry }) {
  const { session, entry } = props
  const conversation = entry.conversation
  // The staff and their presence, kept live by the session (the stream says when a colleague's presence changes).
  const { directory } = session
  const staff = directory.staff
  const [chosen, setChosen] = useState('')
  const [busy, setBusy] = useState(false)
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | undefined>(undefined)

  const nameOf = (id: string | null) =>
    id === null ? 'nobody' : id === session.me.staffId ? 'you' : (staff?.find((s) => s.id === id)?.name ?? id)
  const candidates = (staff ?? []).filter(
    (s) => s.active && ANSWERING.has(s.role) && s.id !== conversation.assignedStaffId,
  )

  const assign = async (mode: AssignmentMode) => {
    if (!chosen || busy) return
    setBusy(true)
    setOutcome(undefined)
    try {
      const updated = await session.client.assignConversation(conversation.id, { staffId: chosen, mode })
      setOutcome({
        ok: true,
        text: `${mode === 'transfer' ? 'Transferred' : 'Reassigned'} to ${nameOf(updated.assignedStaffId)}.`,
      })
      setChosen('')
      session.updateConversation(updated)
    } catch (e) {
      setOutcome({
        ok: false,
        text: `Not assigned: ${e instanceof StrongroomError ? (e.problem.detail ?? e.problem.title) : (e as Error).message}`,
      })
    } finally {
      setBusy(false)
    }
  }

  return (
    <section class="panel" aria-labelledby="assignment-heading">
      <h2 id="assignment-heading">Assignment</h2>
      <p>
        Assigned to <strong>{nameOf(conversation.assignedStaffId)}</strong>
        {conversation.assignedStaffId !== null && conversation.assignedStaffId !== session.me.staffId && (
          <> ({<PresenceBadge presence={directory.presenceOf(conversation.assignedStaffId)} />})</>
        )}
        .
      </p>
      <label for="assign-to">Give to</label>
      <select
        id="assign-to"
        value={chosen}
        disabled={staff === undefined}
        onChange={(e) => setChosen((e.target as HTMLSelectElement).value)}
      >
        <option value="">{staff === undefined ? 'Loading staff…' : 'Choose someone'}</option>
        {candidates.map((s) => (
          <option key={s.id} value={s.id}>
            {s.name} ({s.role}) · {presenceLabels[directory.presenceOf(s.id)]}
          </option>
        ))}
      </select>
      <div class="assign-actions">
        <button type="button" disabled={!chosen || busy} onClick={() => void assign('reassign')}>
          Reassign
        </button>
        <button type="button" class="secondary" disabled={!chosen || busy} onClick={() => void assign('transfer')}>
          Transfer
        </button>
      </div>
      <p class="help">Reassign keeps the previous agent in the conversation; transfer takes them out of it.</p>
      <p class={outcome && !outcome.ok ? 'alert' : 'help'} role="status">
        {outcome?.text}
      </p>
    </section>
  )
}
