import { type ProblemKind, problemKindOf } from './problems.ts'
import type { ProblemDocument } from './protocol.ts'

/**
 * A request the server refused, with its problem document (RFC 9457). Switch on `kind` (the catalogue's name for the
 * stable `type`, undefined for a type that is not Strongroom's); `title` is fixed per type and `detail` says what was
 * wrong with this request.
 */
export class StrongroomError extends Error {
  readonly status: number
  readonly type: string
  readonly kind: ProblemKind | undefined
  readonly problem: ProblemDocument

  constructor(problem: ProblemDocument) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title)
    this.name = 'StrongroomError'
    this.status = problem.status
    this.type = problem.type
    this.kind = problemKindOf(problem.type)
    this.problem = problem
  }
}

/** The catalogue kind a call was refused with (`pivot/token-used`), or undefined for any other error. */
export function problemKind(error: unknown): ProblemKind | undefined {
  return error instanceof StrongroomError ? error.kind : undefined
}
