import type { ArchiveRecord } from '@strongroom/sdk'
import { useEffect, useState } from 'preact/hooks'
import type { ConsoleSession } from './session.ts'

const dayAndTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })
const senderLabels: Record<string, string> = { customer: 'Customer', staff: 'Agent', archive: 'Bank archive' }

/**
 * For staff holding `archive:read`, below the desk's results: secure messages holding what was searched, found through
 * the compliance archive (the desk's own search never sees secure text) and marked as such. A hit whose conversation
 * the staff member may open is a button to it.
 */
export function ArchiveHits(props: { session: ConsoleSession; q: string }) {
  const { session, q } = props
  const [page, setPage] = useState<{ records: ArchiveRecord[]; next: number | null } | undefined>(undefined)
  const [problem, setProblem] = useState<string | undefined>(undefined)
  const load = async (after: number | undefined, shown: ArchiveRecord[]) => {
    setProblem(undefined)
    try {
      const found = await session.desk.archiveSearch(q, after)
      const conversations = [...new Set(found.records.flatMap((r) => r.conversationId ?? []))]
      await session.addConversations(conversations).catch(() => undefined)
      setPage({ records: [...shown, ...found.records], next: found.next })
    } catch {
      setProblem('The archive could not be searched just now. Try again, or use the Compliance screen.')
    }
  }
  useEffect(() => {
    setPage(undefined)
    void load(undefined, [])
  }, [session, q])

  return (
    <section class="archive-hits" aria-labelledby="archive-hits-heading">
      <h3 id="archive-hits-heading">Secure messages, from the archive</h3>
      <p class="help">
        Found in the compliance archive, which holds the secure conversations' text. Your search is recorded in the
        audit log.
      </p>
      {problem && <p class="alert">{problem}</p>}
      {page === undefined && !problem && <p class="help">Searching the archive…</p>}
      {page?.records.length === 0 && page.next === null && <p>No secure message holds “{q}”.</p>}
      {page && page.records.length > 0 && (
        <ul class="hit-list">
          {page.records.map((record) => (
            <li key={record.seq}>
              <ArchiveHit session={session} record={record} />
            </li>
          ))}
        </ul>
      )}
      {page?.next != null && (
        <button type="button" class="secondary" onClick={() => void load(page.next as number, page.records)}>
          Search further back in the archive
        </button>
      )}
    </section>
  )
}

function ArchiveHit(props: { session: ConsoleSession; record: ArchiveRecord }) {
  const { session, record } = props
  const entry = record.conversationId ? session.entries.get(record.conversationId) : undefined
  const sender = (record.content?.sender as { kind?: string } | undefined)?.kind ?? ''
  const body = (
    <>
      <span class="who">{entry?.customerName ?? 'A customer'}</span>
      <span class="when">
        <time dateTime={record.occurredAt}>{dayAndTime.format(new Date(record.occurredAt))}</time>
      </span>
      <span class="archive-mark">
        <span class="badge">From the archive</span> {senderLabels[sender] ?? 'Member'} wrote
      </span>
      <span class="preview">{String(record.content?.text ?? '')}</span>
    </>
  )
  if (!entry) return <div class="inbox-item hit">{body}</div>
  return (
    <button type="button" class="inbox-item hit" onClick={() => void session.open(entry.conversation.id)}>
      {body}
    </button>
  )
}
