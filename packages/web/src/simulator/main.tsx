import { render } from 'preact'
import '../shared/base.css'
import './simulator.css'
import { Simulator } from './Simulator.tsx'

render(<Simulator />, document.getElementById('app') as HTMLElement)
