import { useState } from 'preact/hooks'

/**
 * The message box of a conversation: Enter sends, Shift+Enter starts a new line; the text stays when sending fails,
 * with the reason. `waiting`, when set, says why nothing can be sent yet.
 */
export function Composer(props: {
  id: string
  label: string
  onSend: (text: string) => Promise<void>
  waiting?: string | undefined
}) {
  const [text, setText] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | undefined>(undefined)
  const ready = props.waiting === undefined
  const send = async () => {
    const body = text.trim()
    if (!body || busy || !ready) return
    setBusy(true)
    setError(undefined)
    try {
      await props.onSend(body)
      setText('')
    } catch (e) {
      setError(`Not sent: ${(e as Error).message}`)
    } finally {
      setBusy(false)
    }
  }
  const helpId = `${props.id}-help`
  return (
    <form
      class="composer"
      onSubmit={(event) => {
        event.preventDefault()
        void send()
      }}
    >
      <label for={props.id}>{props.label}</label>
      <div class="composer-row">
        <textarea
          id={props.id}
          rows={2}
          value={text}
          maxLength={4000}
          aria-describedby={helpId}
          onInput={(event) => setText((event.target as HTMLTextAreaElement).value)}
          onKeyDown={(event) => {
            if (event.key === 'Enter' && !event.shiftKey) {
              event.preventDefault()
              void send()
            }
          }}
        />
        <button type="submit" disabled={busy || !ready || text.trim() === ''}>
          Send
        </button>
      </div>
      <p id={helpId} class="help" role="status">
        {props.waiting ?? 'Enter sends; Shift+Enter starts a new line.'}
      </p>
      {error && (
        <p class="alert" role="alert">
          {error}
        </p>
      )}
    </form>
  )
}
