import { DEFAULT_MAX_ATTACHMENT_BYTES } from '@strongroom/sdk'
import type { ComponentChildren } from 'preact'
import { useRef, useState } from 'preact/hooks'
import { ATTACHMENT_ACCEPT } from './Attachment.tsx'

/** A text the composer offers in place of the draft. */
export interface Suggestion {
  key: string
  label: string
  text: string
}

/**
 * A labelled text box that sends on Enter (Shift+Enter starts a new line), keeps the text until it is sent, and says
 * in an alert why a send failed, until the text is changed. `className` names the form; its row is `<className>-row`. `waiting`, when set, says
 * in place of the help why nothing can be sent yet.
 */
export function MessageComposer(props: {
  id: string
  className: string
  label: string
  help: ComponentChildren
  maxLength: number
  send: (text: string) => Promise<void>
  whyNotSent: (error: unknown) => string
  waiting?: string | undefined
  /** Texts the draft may become (the console's canned replies after "/"): Enter takes the first, a click any. */
  suggestions?: ((draft: string) => readonly Suggestion[]) | undefined
  /**
   * Files: `send` encrypts and sends one (a refusal shows in the alert, through `whyNotSent`); `refused` says instead
   * why no file goes here (a public channel).
   */
  attach?: { send: (file: File) => Promise<void> } | { refused: string } | undefined
  /** Told on every keystroke that leaves text in the box (a typing indicator, which paces itself). */
  typing?: (() => void) | undefined
}) {
  const [text, setText] = useState('')
  const box = useRef<HTMLTextAreaElement>(null)
  const suggested = props.suggestions?.(text) ?? []
  const take = (suggestion: Suggestion) => {
    setText(suggestion.text)
    box.current?.focus()
  }
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | undefined>(undefined)
  const helpId = `${props.id}-help`
  const send = async () => {
    const body = text.trim()
    if (!body || busy || props.waiting !== undefined) return
    setBusy(true)
    setError(undefined)
    try {
      await props.send(body)
      setText('')
    } catch (e) {
      setError(props.whyNotSent(e))
    } finally {
      setBusy(false)
    }
  }
  const attachFile = async (input: HTMLInputElement) => {
    const file = input.files?.[0]
    const attach = props.attach
    if (!file || !attach || !('send' in attach) || busy || props.waiting !== undefined) return
    setBusy(true)
    setError(undefined)
    try {
      await attach.send(file)
    } catch (e) {
      setError(props.whyNotSent(e))
    } finally {
      input.value = ''
      setBusy(false)
    }
  }
  return (
    <form
      class={props.className}
      onSubmit={(event) => {
        event.preventDefault()
        void send()
      }}
    >
      <label for={props.id}>{props.label}</label>
      <div class={`${props.className}-row`}>
        <textarea
          id={props.id}
          ref={box}
          rows={2}
          value={text}
          maxLength={props.maxLength}
          aria-describedby={helpId}
          onInput={(event) => {
            const value = (event.target as HTMLTextAreaElement).value
            setText(value)
            if (value.trim() !== '') props.typing?.()
            // The refusal was about the text as it was: editing it clears the alert.
            setError(undefined)
          }}
          onKeyDown={(event) => {
            if (event.key === 'Enter' && !event.shiftKey) {
              event.preventDefault()
              if (suggested[0]) take(suggested[0])
              else void send()
            }
          }}
        />
        {props.attach && 'send' in props.attach && (
          // A button-sized label beside Send keeps the composer one row high (at 360 px the chat needs the room);
          // the input itself is hidden but focusable, and the label shows its focus.
          <label class={busy || props.waiting !== undefined ? 'attach disabled' : 'attach'}>
            <input
              class="visually-hidden"
              type="file"
              accept={ATTACHMENT_ACCEPT}
              aria-label="Send a file securely"
              aria-describedby={`${props.id}-file-help`}
              disabled={busy || props.waiting !== undefined}
              onChange={(event) => void attachFile(event.target as HTMLInputElement)}
            />
            File
            <span id={`${props.id}-file-help`} class="visually-hidden">
              Pictures or PDF, up to {DEFAULT_MAX_ATTACHMENT_BYTES / 1024 / 1024} MB, end-to-end encrypted.
            </span>
          </label>
        )}
        <button type="submit" disabled={busy || props.waiting !== undefined || text.trim() === ''}>
          Send
        </button>
      </div>
      {suggested.length > 0 && (
        <ul class="suggestions" aria-label="Canned replies">
          {suggested.map((suggestion) => (
            <li key={suggestion.key}>
              <button type="button" class="secondary" onClick={() => take(suggestion)}>
                {suggestion.label}
              </button>
            </li>
          ))}
        </ul>
      )}
      {props.attach && 'refused' in props.attach && <p class="help attach-refused">{props.attach.refused}</p>}
      <p id={helpId} class="help" role="status">
        {props.waiting ?? (suggested[0] ? `Enter inserts ${suggested[0].label}.` : props.help)}
      </p>
      {error && (
        <p class="alert" role="alert">
          {error}
        </p>
      )}
    </form>
  )
}
