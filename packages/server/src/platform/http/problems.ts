import {
  problemKinds as catalogue,
  PROBLEM_BASE,
  type ProblemDocument,
  type ProblemKind,
} from '@strongroom/sdk/protocol'
import { isDatabaseUnavailable, isDataException } from '../db/database.ts'

export { PROBLEM_BASE, type ProblemKind }

/** The catalogue as the OpenAPI document lists it: each problem type's URI, status and title. */
export const problemCatalogue = Object.entries(catalogue).map(([kind, p]) => ({
  type: PROBLEM_BASE + kind,
  status: p.status,
  title: p.title,
}))

export type ProblemBody = ProblemDocument

/** A failure with a place in the catalogue. Routes throw it; the error handler renders it as problem+json. */
export class Problem extends Error {
  readonly kind: ProblemKind
  readonly status: number
  readonly detail: string | undefined
  readonly errors: ProblemBody['errors']
  /** Facts the client acts on (the current MLS epoch on a conflict); never a secret. */
  readonly extensions: Pick<ProblemBody, 'currentEpoch' | 'wipeCommand'> | undefined

  constructor(
    kind: ProblemKind,
    detail?: string,
    errors?: ProblemBody['errors'],
    extensions?: Pick<ProblemBody, 'currentEpoch' | 'wipeCommand'>,
  ) {
    super(catalogue[kind].title)
    this.name = 'Problem'
    this.kind = kind
    this.status = catalogue[kind].status
    this.detail = detail
    this.errors = errors
    this.extensions = extensions
  }

  toBody(instance?: string): ProblemBody {
    const body: ProblemBody = { type: PROBLEM_BASE + this.kind, title: this.message, status: this.status }
    if (this.detail) body.detail = this.detail
    if (instance) body.instance = instance
    if (this.errors) body.errors = this.errors
    if (this.extensions) Object.assign(body, this.extensions)
    return body
  }
}

/**
 * The problem to answer for any error: a Problem as it is, a lost or unreachable database as 503 (the client tries
 * again; nothing was half-written, since every write that matters is one transaction), a value the database cannot
 * hold as 400 (schemas refuse these first; this is the net under them), anything else as 500.
 */
export function asProblem(error: unknown): Problem {
  if (error instanceof Problem) return error
  if (isDatabaseUnavailable(error)) return new Problem('server/unavailable', 'the database is unavailable; try again')
  if (isDataException(error)) return new Problem('request/unstorable-value')
  return new Problem('server/internal')
}
