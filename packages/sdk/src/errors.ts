import type { ProblemDocument } from './protocol.ts'

/**
 * A request the server refused, with its problem document (RFC 9457). Switch on `type`, which is stable; `title` is
 * fixed per type and `detail` says what was wrong with this request.
 */
export class StrongroomError extends Error {
  readonly status: number
  readonly type: string
  readonly problem: ProblemDocument

  constructor(problem: ProblemDocument) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title)
    this.name = 'StrongroomError'
    this.status = problem.status
    this.type = problem.type
    this.problem = problem
  }
}
