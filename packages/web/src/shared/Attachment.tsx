import { AttachmentError, type AttachmentRef } from '@strongroom/sdk'
import { useEffect, useState } from 'preact/hooks'

/** What the file pickers accept: the SDK's list (pictures a browser shows safely, and PDFs). */
export const ATTACHMENT_ACCEPT = 'image/png,image/jpeg,image/gif,image/webp,application/pdf'

const size = (bytes: number) =>
  bytes < 1024 * 1024 ? `${Math.max(1, Math.round(bytes / 1024))} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`

/**
 * An encrypted attachment in a secure conversation: downloaded, checked against the hash its message carries and
 * decrypted in this browser; a picture shows inline, a PDF is a link that saves it. Nothing is shown from a file that
 * fails the check.
 */
export function AttachmentView(props: { attachment: AttachmentRef; open: () => Promise<Uint8Array<ArrayBuffer>> }) {
  const { attachment } = props
  const [url, setUrl] = useState<string | undefined>(undefined)
  const [problem, setProblem] = useState<string | undefined>(undefined)
  useEffect(() => {
    let made: string | undefined
    let gone = false
    props
      .open()
      .then((bytes) => {
        if (gone) return
        made = URL.createObjectURL(new Blob([bytes], { type: attachment.type }))
        setUrl(made)
      })
      .catch((error: unknown) => {
        if (!gone) {
          setProblem(error instanceof AttachmentError ? error.message : 'This file could not be downloaded. Try later.')
        }
      })
    return () => {
      gone = true
      if (made) URL.revokeObjectURL(made)
    }
  }, [attachment.id])
  const label = `${attachment.name} (${attachment.type === 'application/pdf' ? 'PDF' : 'picture'}, ${size(attachment.size)})`
  if (problem) return <p class="placeholder attachment">{`${attachment.name}: ${problem}`}</p>
  if (!url) return <p class="placeholder attachment">{`Decrypting ${label}…`}</p>
  if (attachment.type === 'application/pdf') {
    return (
      <p class="attachment">
        <a href={url} download={attachment.name}>
          Download {label}
        </a>
      </p>
    )
  }
  return (
    <figure class="attachment">
      <img src={url} alt={attachment.name} />
      <figcaption>{label}</figcaption>
    </figure>
  )
}
