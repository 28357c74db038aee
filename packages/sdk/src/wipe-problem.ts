// Apart from remote-wipe.ts (which verifies with jose): the stream recognises the problem without importing it.
import { type ProblemKind, problemKindOf } from './problems.ts'
import type { ProblemDocument } from './protocol.ts'

export const DEVICE_WIPED_PROBLEM: ProblemKind = 'identity/device-wiped'

/** The problem is the server's answer to a revoked device: it carries a wipe command. */
export function isDeviceWipedProblem(problem: ProblemDocument | undefined): problem is ProblemDocument & {
  wipeCommand: string
} {
  return !!problem && problemKindOf(problem.type) === DEVICE_WIPED_PROBLEM && typeof problem.wipeCommand === 'string'
}

export const DEVICE_SUSPENDED_PROBLEM: ProblemKind = 'identity/device-suspended'

/** The problem is the server's answer to a suspended device: stop trying until it is resumed; erase nothing. */
export function isDeviceSuspendedProblem(problem: ProblemDocument | undefined): boolean {
  return !!problem && problemKindOf(problem.type) === DEVICE_SUSPENDED_PROBLEM
}
