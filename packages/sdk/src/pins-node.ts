/** Certificate pinning for Node: verify a pin set and make a fetch that enforces it. Browsers pin nothing themselves. */
export { PIN_SET_TYPE, type PinSet, PinSetError, verifyPinSet } from './pin-set.ts'
export { pinnedFetch, spkiPin } from './pinned-fetch.ts'
