import type { Keyring } from './keyring.ts'

/** At most this many distinct words of one text are indexed, and a search uses at most this many. */
export const MAX_TERMS = 200
const MAX_WORD_LENGTH = 64
/** Bytes of the HMAC kept: enough that two words never share a term in practice. */
const TERM_BYTES = 16

const segmenter = new Intl.Segmenter('und', { granularity: 'word' })

/**
 * The words of a text as search matches them: Unicode word boundaries (so "Müller," gives "muller"), compatibility
 * forms folded, accents dropped, lower case, each word once, in order of first appearance.
 */
export function wordsOf(text: string): string[] {
  const words = new Set<string>()
  for (const { segment, isWordLike } of segmenter.segment(text.normalize('NFKC'))) {
    if (!isWordLike) continue
    const word = segment.normalize('NFKD').replace(/\p{M}/gu, '').toLocaleLowerCase('und').slice(0, MAX_WORD_LENGTH)
    words.add(word)
    if (words.size === MAX_TERMS) break
  }
  return [...words]
}

/**
 * Each word as a search term: the tenant's keyed blind index (HMAC) of it in `context`, shortened. The database then
 * holds which rows share a word, never the word: without the tenant's index key a term cannot be tested against a
 * dictionary.
 */
export async function searchTerms(keyring: Keyring, tenantId: string, context: string, words: string[]) {
  return Promise.all(
    words.map(async (word) => (await keyring.blindIndex(tenantId, context, word)).subarray(0, TERM_BYTES)),
  )
}
