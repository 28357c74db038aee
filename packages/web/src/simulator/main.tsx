import { render } from 'preact'
import '../shared/base.css'

/** Dev only: plays the customer's phone on the public channels. This first slice only holds its place. */
function Simulator() {
  return (
    <main class="centered">
      <div class="card">
        <h1>Channel simulator</h1>
        <p>Dev mode only. Sending as a customer over SMS, WhatsApp or Messenger comes with the channel connectors.</p>
      </div>
    </main>
  )
}

render(<Simulator />, document.getElementById('app') as HTMLElement)
