import { TALLY_FIELDS } from '../../src/domain/intervals.ts';

/**
 * An interval hash's fields and values (HSET arguments): every tally at `queues` for the workspace
 * and at 1 for each of `queues` queues (`voice:queue-<n>`), as the projection writes them.
 */
export function tallyFields(queues: number): (string | number)[] {
  const fields: (string | number)[] = [];
  for (const f of TALLY_FIELDS) {
    fields.push(f, queues);
    for (let q = 0; q < queues; q++) fields.push(`${f} voice:queue-${q}`, 1);
  }
  return fields;
}
