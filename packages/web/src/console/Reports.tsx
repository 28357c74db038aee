import './ops.css'
import './reports.css'
import { type ReportOutcome, StrongroomError, type SuspiciousReport } from '@strongroom/sdk'
import { useCallback, useEffect, useState } from 'preact/hooks'
import type { ConsoleSession } from './session.ts'

const dayAndTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })
const problemText = (e: unknown) =>
  e instanceof StrongroomError ? (e.problem.detail ?? e.problem.title) : (e as Error).message

const sourceNames: Record<SuspiciousReport['source'], string> = {
  sms: 'Forwarded by SMS',
  'secure-chat': 'Reported in the secure chat',
}
const verdictNames: Record<string, string> = {
  lookalike: 'lookalike of the bank’s domain',
  shortener: 'link shortener',
  bank: 'the bank’s own domain',
  other: 'other site',
}
const outcomes: [ReportOutcome, string][] = [
  ['smishing', 'Smishing'],
  ['genuine', 'Genuine'],
  ['unclear', 'Unclear'],
]

/**
 * Customers' reports of suspicious messages, the open ones first: each with what the customer received (masked), its
 * links and their verdicts; staff who may answer close each one with what they found.
 */
export function Reports(props: { session: ConsoleSession }) {
  const { session } = props
  const [reports, setReports] = useState<SuspiciousReport[] | undefined>(undefined)
  const [problem, setProblem] = useState<string | undefined>(undefined)
  const load = useCallback(async () => {
    try {
      setReports(await session.client.listSuspiciousReports('open'))
      setProblem(undefined)
    } catch (e) {
      setProblem(problemText(e))
    }
  }, [session])
  useEffect(() => {
    void load()
  }, [load])
  const resolve = async (report: SuspiciousReport, outcome: ReportOutcome) => {
    try {
      await session.client.resolveSuspiciousReport(report.id, outcome)
    } catch (e) {
      setProblem(problemText(e))
    }
    await load()
  }
  return (
    <main class="compliance reports" aria-labelledby="reports-heading">
      <section class="panel">
        <h2 id="reports-heading">Reported messages</h2>
        <button type="button" class="secondary" onClick={() => void load()}>
          Refresh
        </button>
        {problem && (
          <p class="alert" role="alert">
            {problem}
          </p>
        )}
        {reports === undefined && !problem && <p role="status">Loading…</p>}
        {reports?.length === 0 && <p role="status">No open reports.</p>}
        <ul class="report-list">
          {reports?.map((report) => (
            <li key={report.id} class="panel">
              <p class="meta">
                {sourceNames[report.source]} ·{' '}
                <time dateTime={report.createdAt}>{dayAndTime.format(new Date(report.createdAt))}</time>
              </p>
              <blockquote>{report.text}</blockquote>
              {report.links.length > 0 && (
                <ul class="report-links" aria-label="Links in the message">
                  {report.links.map((link) => (
                    <li key={link.host} class={`badge ${link.verdict === 'bank' ? 'ok' : 'risk'}`}>
                      {link.host}: {verdictNames[link.verdict] ?? link.verdict}
                    </li>
                  ))}
                </ul>
              )}
              {session.can('conversations:write') && (
                <fieldset>
                  <legend>Close as</legend>
                  {outcomes.map(([outcome, label]) => (
                    <button key={outcome} type="button" class="secondary" onClick={() => void resolve(report, outcome)}>
                      {label}
                    </button>
                  ))}
                </fieldset>
              )}
            </li>
          ))}
        </ul>
      </section>
    </main>
  )
}
