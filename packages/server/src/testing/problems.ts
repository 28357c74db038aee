import assert from 'node:assert/strict'
import { StrongroomError } from '@strongroom/sdk'

/** Where the problem types live; a refusal's `type` is this plus its kind (`pivot/token-used`). */
export { PROBLEM_BASE as PROBLEMS } from '@strongroom/sdk/protocol'

/** The problem a call was refused with; fails the test if the call succeeded or failed otherwise. */
export async function problemOf(promise: Promise<unknown>): Promise<StrongroomError> {
  try {
    await promise
  } catch (error) {
    if (error instanceof StrongroomError) return error
    throw error
  }
  assert.fail('expected a problem')
}
