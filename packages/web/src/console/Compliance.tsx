import './ops.css'
import {
  type ArchiveRecord,
  type ArchiveSearch,
  type ArchiveVerification,
  type CaseScope,
  StrongroomError,
} from '@strongroom/sdk'
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks'
import type { ConsoleSession } from './session.ts'

const dayAndTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' })
const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`
const problemText = (e: unknown) =>
  e instanceof StrongroomError ? (e.problem.detail ?? e.problem.title) : (e as Error).message

/** The compliance officer's screen: the archive chain's verification, search, and case export. */
export function Compliance(props: { session: ConsoleSession }) {
  return (
    <main class="compliance" aria-labelledby="compliance-heading">
      <h2 id="compliance-heading" class="visually-hidden">
        Compliance archive
      </h2>
      <ChainVerification session={props.session} />
      <ArchiveExplorer session={props.session} />
    </main>
  )
}

function ChainVerification(props: { session: ConsoleSession }) {
  const [result, setResult] = useState<{ value: ArchiveVerification } | { error: string } | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const verify = useCallback(async () => {
    setBusy(true)
    try {
      setResult({ value: await props.session.client.verifyArchive() })
    } catch (e) {
      setResult({ error: problemText(e) })
    } finally {
      setBusy(false)
    }
  }, [props.session])
  useEffect(() => {
    void verify()
  }, [verify])

  const verification = result && 'value' in result ? result.value : undefined
  return (
    <section class="panel" aria-labelledby="verification-heading">
      <h3 id="verification-heading">Archive chain</h3>
      <p
        class={`verification ${verification ? (verification.ok ? 'ok' : 'broken') : ''}`}
        role="status"
        aria-busy={busy ? 'true' : undefined}
      >
        {busy
          ? 'Verifying the chain…'
          : result === undefined
            ? ''
            : 'error' in result
              ? `The chain could not be verified: ${result.error}`
              : verification?.ok
                ? `Verification OK: ${count(verification.records, 'record')} and ${count(verification.checkpoints, 'signed checkpoint')} hold.`
                : `Verification FAILED at record ${verification?.failure?.seq}: ${verification?.failure?.reason}.`}
      </p>
      {verification && (
        <p class="help">
          Checked <time dateTime={verification.verifiedAt}>{dayAndTime.format(new Date(verification.verifiedAt))}</time>
          {verification.pending > 0 && ` · ${count(verification.pending, 'new record')} not linked yet`}
          {verification.deleted > 0 &&
            ` · content of ${count(verification.deleted, 'record')} deleted by retention, as recorded`}
        </p>
      )}
      <button type="button" class="secondary" disabled={busy} onClick={() => void verify()}>
        Verify again
      </button>
    </section>
  )
}

interface Criteria {
  customerId: string
  conversationId: string
  from: string
  to: string
  text: string
}

const fields: { name: keyof Criteria; label: string; type: string; pattern?: string; help?: string }[] = [
  { name: 'customerId', label: 'Customer id', type: 'text', pattern: 'cus_[A-Za-z0-9_\\-]{22}', help: 'cus_…' },
  { name: 'conversationId', label: 'Conversation id', type: 'text', pattern: 'cnv_[A-Za-z0-9_\\-]{22}', help: 'cnv_…' },
  { name: 'from', label: 'From', type: 'datetime-local' },
  { name: 'to', label: 'Until', type: 'datetime-local' },
  { name: 'text', label: 'Text', type: 'search' },
]

/** The criteria as the API takes them: empty fields left out, local times as instants. */
function scopeOf(criteria: Criteria): ArchiveSearch {
  const search: ArchiveSearch = {}
  if (criteria.customerId.trim()) search.customerId = criteria.customerId.trim()
  if (criteria.conversationId.trim()) search.conversationId = criteria.conversationId.trim()
  if (criteria.from) search.from = new Date(criteria.from)
  if (criteria.to) search.to = new Date(criteria.to)
  if (criteria.text.trim()) search.text = criteria.text.trim()
  return search
}

function ArchiveExplorer(props: { session: ConsoleSession }) {
  const { session } = props
  const [criteria, setCriteria] = useState<Criteria>({ customerId: '', conversationId: '', from: '', to: '', text: '' })
  const [found, setFound] = useState<{ records: ArchiveRecord[]; next: number | null; search: ArchiveSearch }>()
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | undefined>(undefined)
  const [exporting, setExporting] = useState<ExportState | undefined>(undefined)

  const search = async (more: boolean) => {
    setBusy(true)
    setError(undefined)
    try {
      const query = more && found ? { ...found.search, after: found.next ?? 0 } : scopeOf(criteria)
      const page = await session.client.searchArchive(query)
      setFound({
        records: more && found ? [...found.records, ...page.records] : page.records,
        next: page.next,
        search: more && found ? found.search : query,
      })
    } catch (e) {
      setError(`The search failed: ${problemText(e)}`)
    } finally {
      setBusy(false)
    }
  }

  const exportCase = async () => {
    const { customerId, conversationId, from, to } = scopeOf(criteria)
    if (!customerId && !conversationId) {
      setExporting({ error: 'Name a customer or a conversation to export a case.' })
      return
    }
    const scope: CaseScope = { customerId, conversationId, from, to }
    setExporting({ done: 0, total: undefined })
    try {
      const bundle = await session.client.exportArchiveCase(scope, {
        onProgress: (done, total) => setExporting({ done, total }),
      })
      setExporting({ bundle, name: `case-${conversationId ?? customerId}.jsonl` })
    } catch (e) {
      setExporting({ error: `The export failed: ${problemText(e)}` })
    }
  }

  return (
    <>
      <section class="panel" aria-labelledby="search-heading">
        <h3 id="search-heading">Search the archive</h3>
        <form
          class="archive-form"
          onSubmit={(event) => {
            event.preventDefault()
            void search(false)
          }}
        >
          {fields.map((field) => (
            <div key={field.name}>
              <label for={`archive-${field.name}`}>{field.label}</label>
              <input
                id={`archive-${field.name}`}
                type={field.type}
                pattern={field.pattern}
                placeholder={field.help}
                autocomplete="off"
                spellcheck={false}
                value={criteria[field.name]}
                onInput={(e) => setCriteria({ ...criteria, [field.name]: (e.target as HTMLInputElement).value })}
              />
            </div>
          ))}
          <div class="archive-actions">
            <button type="submit" disabled={busy}>
              Search
            </button>
            <button
              type="button"
              class="secondary"
              disabled={exporting !== undefined && 'done' in exporting}
              onClick={() => void exportCase()}
            >
              Export as a signed case
            </button>
          </div>
        </form>
        {error && (
          <p class="alert" role="alert">
            {error}
          </p>
        )}
        <p role="status" class="help">
          {busy
            ? 'Searching…'
            : found
              ? `${count(found.records.length, 'record')} found${found.next !== null ? ' so far: load more to search further' : ''}.`
              : ''}
        </p>
        {found && found.records.length > 0 && <Records session={session} records={found.records} />}
        {found && found.next !== null && (
          <button type="button" class="secondary" disabled={busy} onClick={() => void search(true)}>
            Load more
          </button>
        )}
      </section>
      {exporting && <CaseExport state={exporting} />}
    </>
  )
}

/**
 * The names of the customers these records name, read once each: an officer reviews people, while the id stays beside
 * the name as the evidence names them. A customer erased since shows by id alone.
 */
function useCustomerNames(session: ConsoleSession, records: ArchiveRecord[]): ReadonlyMap<string, string> {
  const [names, setNames] = useState<ReadonlyMap<string, string>>(new Map())
  const ids = useMemo(
    () => [...new Set(records.map((record) => record.customerId).filter((id): id is string => id !== null))],
    [records],
  )
  useEffect(() => {
    let current = true
    void Promise.all(ids.map(async (id) => [id, await session.customerName(id)] as const)).then((found) => {
      // A name that could not be read comes back as the id, which the row shows already.
      if (current) setNames(new Map(found.filter(([id, name]) => name !== id)))
    })
    return () => {
      current = false
    }
  }, [session, ids])
  return names
}

function Records(props: { session: ConsoleSession; records: ArchiveRecord[] }) {
  const names = useCustomerNames(props.session, props.records)
  return (
    <table class="records">
      <caption class="visually-hidden">Archive records found</caption>
      <thead>
        <tr>
          <th scope="col">#</th>
          <th scope="col">When</th>
          <th scope="col">Kind</th>
          <th scope="col">Customer</th>
          <th scope="col">Conversation</th>
          <th scope="col">Content</th>
        </tr>
      </thead>
      <tbody>
        {props.records.map((record) => (
          <tr key={record.seq}>
            <td>{record.seq}</td>
            <td>
              <time dateTime={record.occurredAt}>{dayAndTime.format(new Date(record.occurredAt))}</time>
            </td>
            <td>{record.recordClass}</td>
            <td>
              {record.customerId === null ? (
                '—'
              ) : (
                <>
                  {names.get(record.customerId)}
                  <span class="id">{record.customerId}</span>
                </>
              )}
            </td>
            <td class="id">
              {record.conversationId ?? '—'}
              {record.conversationSeq !== null && ` #${record.conversationSeq}`}
            </td>
            <td>{contentOf(record)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

function contentOf(record: ArchiveRecord): string {
  if (record.status === 'deleted') return 'Deleted by retention (recorded in the chain)'
  if (record.status === 'erased') return 'Erased (customer key destroyed)'
  if (!record.content) return '—'
  return typeof record.content.text === 'string' ? record.content.text : JSON.stringify(record.content)
}

type ExportState = { done: number; total: number | undefined } | { bundle: string; name: string } | { error: string }

function CaseExport(props: { state: ExportState }) {
  const { state } = props
  const bundle = 'bundle' in state ? state.bundle : undefined
  const download = useMemo(
    () =>
      bundle === undefined ? undefined : URL.createObjectURL(new Blob([bundle], { type: 'application/x-ndjson' })),
    [bundle],
  )
  useEffect(() => () => (download ? URL.revokeObjectURL(download) : undefined), [download])
  const link = useRef<HTMLAnchorElement>(null)
  useEffect(() => link.current?.focus(), [download])
  const records = bundle === undefined ? 0 : bundle.trimEnd().split('\n').length - 1
  return (
    <section class="panel" aria-labelledby="export-heading">
      <h3 id="export-heading">Case export</h3>
      {'error' in state && (
        <p class="alert" role="alert">
          {state.error}
        </p>
      )}
      {'done' in state && (
        <>
          <progress
            id="export-progress"
            max={state.total ?? 1}
            {...(state.total === undefined ? {} : { value: state.done })}
            aria-label="Records exported"
          />
          <p aria-live="polite">
            {state.total === undefined ? 'Preparing the case…' : `${state.done} of ${state.total} records exported…`}
          </p>
        </>
      )}
      {'bundle' in state && download && (
        <>
          <p role="status">
            Signed bundle ready: {records} of {records} records, with the signed manifest last.
          </p>
          <a ref={link} class="button-link" href={download} download={state.name}>
            Download {state.name}
          </a>
          <p class="help">
            Verify it offline with <code>verifyBundle</code> (<code>archive/bundle.ts</code>) and the archive’s public
            keys, which the manifest lists.
          </p>
        </>
      )}
    </section>
  )
}
