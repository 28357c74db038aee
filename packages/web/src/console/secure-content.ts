import type { StaffClient } from '@strongroom/sdk'
import { openBrowserSecureStore } from '@strongroom/sdk/mls'
import { BrowserMlsMember } from '../shared/mls-member.ts'
import type { SecureContent, StaffIdentity } from './session.ts'

/** The agent's browser as the MLS member of its secure conversations, with a store of its own per tenant and agent. */
export const BrowserSecureContent = {
  async open(client: StaffClient, me: StaffIdentity): Promise<SecureContent> {
    return BrowserMlsMember.open(client, {
      store: await openBrowserSecureStore(`strongroom-mls:${me.tenantId}:${me.staffId}`),
      self: { kind: 'staff', id: me.staffId },
    })
  },
}
