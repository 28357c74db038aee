import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * String equality whose time depends on neither the contents nor the lengths: both sides are hashed to a fixed
 * length first, because timingSafeEqual itself throws (early) on a length mismatch.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const digestA = createHash('sha256').update(a, 'utf8').digest()
  const digestB = createHash('sha256').update(b, 'utf8').digest()
  return timingSafeEqual(digestA, digestB)
}
