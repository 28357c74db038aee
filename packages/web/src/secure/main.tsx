import { render } from 'preact'
import '../shared/base.css'

/** The customer's secure chat opens here from the pivot link; this first slice only shows where it will be. */
function SecureChat() {
  return (
    <main class="centered">
      <div class="card">
        <h1>Secure chat</h1>
        <p>Open the link your bank sent you to continue your conversation here, end-to-end encrypted.</p>
      </div>
    </main>
  )
}

render(<SecureChat />, document.getElementById('app') as HTMLElement)
