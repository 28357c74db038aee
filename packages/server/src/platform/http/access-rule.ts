import type { Principal } from './principal.ts'
import { Problem } from './problems.ts'
import type { Scope } from './roles.ts'

/**
 * Who may call a route, written next to its handler as `config: { access: allow.… }`. A route without a rule stops
 * the server from starting (deny by default); the rules of every module make the one access table that
 * `strongroom routes` prints. Conversation membership and tenant scope are then checked by the capability, on the
 * row itself.
 */
export type AccessRule =
  | { who: 'anyone' }
  | { who: 'device-key' } // the handler verifies a DPoP proof: enrolment and token renewal
  | { who: 'stream'; browser?: BrowserUse } // authenticates in its first frame, with the same credentials as HTTP
  | { who: 'staff'; scope: Scope; or?: readonly Scope[]; membership?: Membership } // staff or a bank backend holding the scope (or one of `or`)
  | { who: 'any'; scope: Scope } // a device, or staff or a bank backend holding the scope
  | { who: 'member'; staffScope: Scope; membership?: Membership; browser?: BrowserUse } // a device, or staff with the scope
  | { who: 'device'; integrity?: 'exempt'; browser?: BrowserUse } // an enrolled device, proving its key; exempt: it obtains the token
  | { who: 'attested-device' } // an enrolled device with a full-scope integrity token, even where tokens are optional
  | { who: 'staff-member' } // any staff member, acting on their own account (no scope needed); not a bank backend
  | { who: 'authenticated' } // any valid credentials

/**
 * The route acts on the conversation its `:conversationId` names: the caller must be a member of it (or hold
 * conversations:all), checked after the request is validated; anyone else gets 404, as for a conversation that does
 * not exist.
 */
type Membership = 'conversationId'

/**
 * What a browser (the secure chat a pivot link opened, a device that can hold no integrity token) may do on a route
 * beyond reading, where apps need their integrity token: `chat` while the tenant's integrity policy lets browsers chat
 * (the secure chat's messages, markers, stream and end-to-end group), `always` for what keeps a browser safe to use
 * (its passkey, redeeming its pivot link, declining a payment, approving one with a passkey, which the step-up policy
 * then limits). A route without it is for apps only; a GET is open to browsers unless the route is for attested apps.
 */
export type BrowserUse = 'chat' | 'always'

/** The rule, with what a browser may do on the route: `config: { access: forBrowsers('chat', allow.member(…)) }`. */
export function forBrowsers<Rule extends Extract<AccessRule, { who: 'device' | 'member' | 'stream' }>>(
  use: BrowserUse,
  rule: Rule,
): Rule & { browser: BrowserUse } {
  return { ...rule, browser: use }
}

/** The rule, for a route that acts on the conversation its `:conversationId` names (see `Membership`). */
export function inConversation<Rule extends Extract<AccessRule, { who: 'staff' | 'member' }>>(
  rule: Rule,
): Rule & { membership: Membership } {
  return { ...rule, membership: 'conversationId' }
}

/**
 * The rules, by name: `config: { access: allow.staff('customers:write') }`. `allow.staff(scope, ...or)` admits a holder
 * of any of the scopes: for a read that each of them already implies (the holder could get as much another way).
 */
export const allow = {
  anyone: { who: 'anyone' },
  deviceKey: { who: 'device-key' },
  stream: { who: 'stream' },
  staff: (scope: Scope, ...or: Scope[]) => (or.length === 0 ? { who: 'staff', scope } : { who: 'staff', scope, or }),
  any: (scope: Scope) => ({ who: 'any', scope }),
  member: (staffScope: Scope) => ({ who: 'member', staffScope }),
  device: { who: 'device' },
  /** A device's request that works without an integrity token: the ones that obtain it. */
  deviceWithoutIntegrityToken: { who: 'device', integrity: 'exempt' },
  attestedDevice: { who: 'attested-device' },
  staffMember: { who: 'staff-member' },
  authenticated: { who: 'authenticated' },
} as const satisfies Record<string, AccessRule | ((scope: Scope) => AccessRule)>

/** A rule that names its caller: everything but the routes that authenticate in their own way. */
export type PrincipalRule = Exclude<AccessRule, { who: 'anyone' | 'device-key' | 'stream' }>

/**
 * Why the principal may not act under this rule, if it may not. HTTP requests and stream frames ask this one
 * question, with the rule their action declares.
 */
export function refusalFor(access: PrincipalRule, principal: Principal): Problem | undefined {
  if (access.who === 'authenticated') return undefined
  if (access.who === 'staff-member') {
    return principal.kind === 'staff' ? undefined : new Problem('auth/forbidden', 'this is for staff members')
  }
  if (principal.kind === 'device') {
    return access.who === 'staff' ? new Problem('auth/forbidden', 'this is for staff and bank backends') : undefined
  }
  if (access.who === 'device' || access.who === 'attested-device') {
    return new Problem('auth/forbidden', 'this is for devices')
  }
  if (access.who === 'member' && principal.kind === 'client') {
    return new Problem('auth/forbidden', 'bank backends are not conversation members')
  }
  const accepted = scopesOf(access)
  return accepted.some((scope) => principal.scopes.includes(scope))
    ? undefined
    : new Problem('auth/forbidden', `this needs the ${accepted.join(' or ')} scope`)
}

/** The scopes a rule admits a holder of any of (none: the rule asks for no scope). */
function scopesOf(access: AccessRule): readonly Scope[] {
  if (access.who === 'member') return [access.staffScope]
  if (access.who === 'staff') return [access.scope, ...(access.or ?? [])]
  return access.who === 'any' ? [access.scope] : []
}

/** What a device's integrity token allows: everything, or (a rooted device, an emulator) reading only. */
export type IntegrityScope = 'full' | 'read-only'

/**
 * Why a device holding a token of this scope may not make a request with this method, if it may not: a limited token
 * reads; it neither writes nor (`fullScopeOnly`) receives secrets. A stream frame that writes counts as a POST.
 */
export function integrityRefusal(scope: IntegrityScope, method: string, fullScopeOnly = false): Problem | undefined {
  return scope === 'read-only' && (method !== 'GET' || fullScopeOnly) ? new Problem('integrity/limited') : undefined
}

/**
 * An action taken other than by its own HTTP request (a stream frame), and the route whose rule it obeys: `route` is
 * that route's `METHOD /path`, as the access table and the integrity policy name it.
 */
export interface GuardedAction {
  route: string
  access: PrincipalRule
}

/**
 * Admits an action of a signed-in stream on a conversation by its route's rule, or throws the Problem the route would
 * answer. `joined`: the stream is a member already (it joined the conversation), so membership needs no lookup.
 */
export type ActionGuard = (action: GuardedAction, conversation: { id: string; joined: boolean }) => Promise<void>

/** One row of the access table: a route and its rule. */
export interface AccessTableRow {
  method: string
  url: string
  access: AccessRule
}

/**
 * The access table as a reviewer reads it: method, path, who, scope, and the notes: the integrity exemption, the
 * conversation membership, what a browser may do there.
 */
export function formatAccessTable(rows: readonly AccessTableRow[]): string {
  const cells = rows.map(({ method, url, access }) => [
    method,
    url,
    access.who,
    scopesOf(access).join(' | '),
    [
      'integrity' in access && access.integrity ? `integrity ${access.integrity}` : '',
      'membership' in access && access.membership ? `member of :${access.membership}` : '',
      'browser' in access && access.browser ? `browser ${access.browser}` : '',
    ]
      .filter(Boolean)
      .join(', '),
  ])
  const header = ['METHOD', 'PATH', 'WHO', 'SCOPE', 'NOTE']
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((row) => row[column]?.length ?? 0)))
  return [header, ...cells]
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (required: the server refuses to start on a route without it). */
    access?: AccessRule
  }
}
