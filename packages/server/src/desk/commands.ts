import { type Command, command, out, progress, UsageError, withStorage } from '../platform/command.ts'
import { backfillSearchIndex } from './search-backfill.ts'

/** The console's search index, filled in for what was stored before it existed. */
export const deskCommands: readonly Command[] = [
  command({
    name: 'search backfill',
    synopsis: '[--batch N] [--batches N] [--from-start]',
    summary:
      "index for the console's search the customers' names and public messages stored\nbefore the index existed, N at a time (default 500); resumes where a stopped run\nstopped (--batches bounds a run, --from-start starts over); skips erased customers",
    options: {
      batch: { type: 'string' },
      batches: { type: 'string' },
      'from-start': { type: 'boolean' },
    },
    async run({ batch = '500', batches, 'from-start': fromStart }, { config }) {
      const batchSize = Number(batch)
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
        throw new UsageError('--batch must be a whole number from 1 to 10000')
      }
      const maxBatches = batches === undefined ? undefined : Number(batches)
      if (maxBatches !== undefined && (!Number.isInteger(maxBatches) || maxBatches < 1)) {
        throw new UsageError('--batches must be a whole number from 1')
      }
      out(
        await withStorage(config(), ({ db, keyring }) =>
          backfillSearchIndex(
            { db, keyring },
            {
              batchSize,
              fromStart: fromStart === true,
              ...(maxBatches === undefined ? {} : { maxBatches }),
              onBatch: (o) => {
                if (maxBatches !== undefined) progress('search backfill', o.batches, maxBatches)
                else if (process.stderr.isTTY) {
                  process.stderr.write(`\rsearch backfill: ${o.customerNames} names, ${o.publicTexts} messages`)
                }
              },
            },
          ),
        ),
      )
    },
  }),
]
