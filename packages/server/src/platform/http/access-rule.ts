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
  | { who: 'stream' } // authenticates in its first frame, with the same credentials as HTTP
  | { who: 'staff'; scope: Scope } // staff or a bank backend holding the scope
  | { who: 'any'; scope: Scope } // a device, or staff or a bank backend holding the scope
  | { who: 'member'; staffScope: Scope } // a device, or staff holding the scope
  | { who: 'device'; integrity?: 'exempt' } // an enrolled device, proving its key; exempt: it obtains the token
  | { who: 'attested-device' } // an enrolled device with a full-scope integrity token, even where tokens are optional
  | { who: 'staff-member' } // any staff member, acting on their own account (no scope needed); not a bank backend
  | { who: 'authenticated' } // any valid credentials

/** The rules, by name: `config: { access: allow.staff('customers:write') }`. */
export const allow = {
  anyone: { who: 'anyone' },
  deviceKey: { who: 'device-key' },
  stream: { who: 'stream' },
  staff: (scope: Scope) => ({ who: 'staff', scope }),
  any: (scope: Scope) => ({ who: 'any', scope }),
  member: (staffScope: Scope) => ({ who: 'member', staffScope }),
  device: { who: 'device' },
  /** A device's request that works without an integrity token: the ones that obtain it. */
  deviceWithoutIntegrityToken: { who: 'device', integrity: 'exempt' },
  attestedDevice: { who: 'attested-device' },
  staffMember: { who: 'staff-member' },
  authenticated: { who: 'authenticated' },
} as const satisfies Record<string, AccessRule | ((scope: Scope) => AccessRule)>

/** One row of the access table: a route and its rule. */
export interface AccessTableRow {
  method: string
  url: string
  access: AccessRule
}

/** The access table as a reviewer reads it: method, path, who, scope, and the integrity exemption where there is one. */
export function formatAccessTable(rows: readonly AccessTableRow[]): string {
  const cells = rows.map(({ method, url, access }) => [
    method,
    url,
    access.who,
    'scope' in access ? access.scope : 'staffScope' in access ? access.staffScope : '',
    'integrity' in access && access.integrity ? `integrity ${access.integrity}` : '',
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
