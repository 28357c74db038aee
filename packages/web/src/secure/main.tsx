import { pivotTokenOf } from '@strongroom/sdk'
import { render } from 'preact'
import '../shared/base.css'
import './secure.css'
import { App } from './App.tsx'

const root = document.getElementById('app') as HTMLElement
let visit = 0

/**
 * The pivot link's token travels in the URL fragment (`/secure/#t=<token>`), which browsers never send to a server or
 * in a Referer. It is taken out of the address bar before anything else happens, so that no history entry, bookmark or
 * shared address keeps it; the page holds it in memory only.
 */
function arrive(): void {
  const token = pivotTokenOf(location.href)
  if (location.hash) history.replaceState(null, '', location.pathname + location.search)
  render(<App key={++visit} token={token} />, root)
}

arrive()
// A link opened while the page is already open changes only the fragment, and the page does not load again.
addEventListener('hashchange', arrive)
