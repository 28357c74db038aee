/** Certificate pinning for Node: verify a pin set and make a fetch that enforces it. A page enforces what it can through `@strongroom/sdk/pins`. */
export {
  acceptPinSet,
  memoryPinSetVersionStore,
  PIN_SET_TYPE,
  type PinSet,
  PinSetError,
  type PinSetVersionStore,
  verifyPinSet,
} from './pin-set.ts'
export { pinnedFetch, spkiPin } from './pinned-fetch.ts'
