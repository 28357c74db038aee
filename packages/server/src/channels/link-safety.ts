import { domainToUnicode } from 'node:url'
import { distance } from 'fastest-levenshtein'
import { LinkifyIt } from 'linkify-it'
import { parse } from 'tldts'
import unhomoglyph from 'unhomoglyph'
import { normalizeForDlp } from './dlp-normalize.ts'

/**
 * Smishing defence: the links in a public message, each judged against the bank's registered domains. A link is the
 * bank's when its registrable domain (public-suffix list, tldts) is one of them; a lookalike when, decoded from
 * punycode, it has the same Unicode TR39 confusable skeleton as one of them (`exаmple-bank.com` with a Cyrillic а,
 * `examp1e-bank.com`), is within two edits of one, or carries one's name inside another domain; a shortener hides
 * where it leads. The text is read as DLP reads it (NFKC, no zero-width characters), so that a link cannot hide
 * behind fullwidth dots or invisible joiners.
 */
export type LinkVerdict = 'bank' | 'lookalike' | 'shortener' | 'other'

export interface LinkFinding {
  /** The host as a person reads it (punycode decoded). */
  host: string
  verdict: LinkVerdict
}

/** Link shorteners hide where a link leads: a bank never needs one, a smisher often does. */
const SHORTENERS = new Set([
  'bit.ly',
  'bitly.com',
  'tinyurl.com',
  't.co',
  'goo.gl',
  'ow.ly',
  'is.gd',
  'v.gd',
  'buff.ly',
  'rebrand.ly',
  'cutt.ly',
  'shorturl.at',
  'rb.gy',
  't.ly',
  'tiny.cc',
  'bl.ink',
  's.id',
  'lnkd.in',
  'qr.ae',
  'x.co',
  'shorte.st',
  'clck.ru',
  'urlz.fr',
])

/** Top-level domains smishers favour, beside linkify-it's defaults (which know com, net, org and every country's). */
const MORE_TLDS =
  'xyz top online site app club live click link support help bank vip icu store tech website space fun page dev cloud life world today services secure login account info shop'.split(
    ' ',
  )

const linkify = new LinkifyIt({ fuzzyLink: true, fuzzyEmail: false }).tlds(MORE_TLDS, true)

/** The TR39 skeleton of a domain label, case folded: the confusables mapping (unhomoglyph) between two NFD passes. */
export function skeleton(label: string): string {
  return unhomoglyph(label.toLowerCase().normalize('NFD')).normalize('NFD').toLowerCase()
}

/** A registrable domain in a comparable form: lower case, punycode decoded. */
export function registrableDomain(host: string): string | undefined {
  const unicode = domainToUnicode(host.toLowerCase()) || host.toLowerCase()
  return parse(unicode).domain ?? undefined
}

function judge(host: string, bankDomains: readonly string[]): LinkVerdict {
  const domain = registrableDomain(host)
  if (!domain) return 'other'
  if (bankDomains.includes(domain)) return 'bank'
  if (SHORTENERS.has(domain)) return 'shortener'
  const label = parse(domain).domainWithoutSuffix ?? domain
  const whole = skeleton(domainToUnicode(host.toLowerCase()) || host)
  for (const bank of bankDomains) {
    const bankLabel = parse(bank).domainWithoutSuffix ?? bank
    if (skeleton(label) === skeleton(bankLabel) || skeleton(domain) === skeleton(bank)) return 'lookalike'
    if (distance(label, bankLabel) <= 2 || distance(domain, bank) <= 2) return 'lookalike'
    // The bank's name inside another domain, or in front of it: example-bank-secure.xyz, example-bank.com.evil.top.
    if (bankLabel.length >= 4 && whole.includes(skeleton(bankLabel))) return 'lookalike'
  }
  return 'other'
}

/**
 * A user name (and password) before the host: linkify-it ends the link at the `@` of `https://bank.example@evil.top`,
 * while phones' own link detection opens the whole of it, at the host after the `@`.
 */
const USERINFO_AFTER_LINK = /^(?::[^\s@/?#]*)?@[^\s/?#@]+/

/** Every link in a text, with its host and verdict against the bank's registered domains (lower case). */
export function analyzeLinks(text: string, bankDomains: readonly string[]): LinkFinding[] {
  const readable = normalizeForDlp(text).text
  return (linkify.match(readable) ?? []).flatMap((match) => {
    const userinfo = USERINFO_AFTER_LINK.exec(readable.slice(match.lastIndex))?.[0] ?? ''
    let url: URL
    try {
      url = new URL(match.url + userinfo)
    } catch {
      return []
    }
    const host = domainToUnicode(url.hostname) || url.hostname
    // A link that puts a name in front of its host is dressed up as another site: no bank sends one.
    const verdict = url.username || url.password ? 'lookalike' : judge(url.hostname, bankDomains)
    return [{ host, verdict }]
  })
}
