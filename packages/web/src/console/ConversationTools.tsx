import './ops.css'
import { AssignmentPanel } from './AssignmentPanel.tsx'
import { ConsentPanel } from './ConsentPanel.tsx'
import { CustomerPanel } from './CustomerPanel.tsx'
import { NotesPanel } from './Desk.tsx'
import { OutreachPanel } from './OutreachPanel.tsx'
import { PayeeBlocksPanel } from './PayeeBlocksPanel.tsx'
import type { ConsoleSession, InboxEntry } from './session.ts'

/** Beside the open conversation: its customer and their devices, payment confirmations, and (supervisors) assignment. */
export function ConversationTools(props: { session: ConsoleSession; entry: InboxEntry }) {
  const { session, entry } = props
  const { customerId, id } = entry.conversation
  return (
    <aside class="tools" aria-label={`Customer, payments, assignment and notes for ${entry.customerName}`}>
      {customerId === null ? (
        <section class="panel">
          <h2>Customer</h2>
          <p>This sender is not linked to a customer yet: link them to see their devices and ask for payments.</p>
        </section>
      ) : (
        <>
          {session.can('customers:write') && <CustomerPanel session={session} customerId={customerId} />}
          {session.can('conversations:write') && (
            <OutreachPanel
              session={session}
              customerId={customerId}
              customerName={entry.customerName}
              // The new channel joins the customer's timeline; the reply box stays where the agent was.
              onStarted={() => void session.open(id)}
            />
          )}
          {session.can('consents:unblock') && <PayeeBlocksPanel session={session} customerId={customerId} />}
          {session.can('consents:write') && (
            <ConsentPanel session={session} conversationId={id} customerId={customerId} />
          )}
        </>
      )}
      {session.can('conversations:assign') && <AssignmentPanel session={session} entry={entry} />}
      <NotesPanel session={session} conversationId={id} />
    </aside>
  )
}
