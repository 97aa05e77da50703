/**
 * `twin`: the dispatch step as it is against another version of it (`--against <file>`), on twin
 * workspaces. Runs of a whole bench move with this machine's speed by more than most changes to a
 * step, so both versions run in one run, on the same work, in turn: two workspaces made by the same
 * commands (`large`'s queue: --agents agents with 3..8 of 50 skills, --sizes[0] contacts queued;
 * with --levels, at levels), then agent i made available in both and each workspace dispatched,
 * one by this version's library and the other by the other's, which goes first alternating. Each
 * step's time is Redis's own (SLOWLOG). Two copies of one library read about 1.0 (within 0.02 on
 * this machine): the method's own bias.
 *
 * The other version is loaded under this version's function name (FUNCTION LOAD REPLACE) before
 * each of its steps, and this version's after: only on the bench's private redis-server.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { workspaceKeys } from '../../adapters/redis/keys.ts';
import { declaredScripts, libraryOf, loadLua, type RedisClient } from '../../adapters/redis/scripts.ts';
import type { Rng } from '../sim/random.ts';
import { median, percentile, round } from '../sim/stats.ts';
import { scriptCalls, startScriptTiming } from './redis-time.ts';
import { largeQueueSetUp } from './shapes.ts';
import type { Note } from './workspace.ts';

export interface TwinOptions {
  /** The other version's dispatch step file (its includes are this version's). */
  readonly against: string;
  readonly agents: number;
  readonly queued: number;
  readonly decisions: number;
  readonly seed: number;
  readonly levels: boolean;
}

export interface TwinSide {
  readonly steps: number;
  readonly assignments: number;
  readonly medianStepUs: number | null;
  readonly meanStepUs: number | null;
  readonly p90StepUs: number | null;
  readonly worstStepUs: number | null;
  readonly totalUs: number;
}

export interface TwinFigures {
  /** This version's dispatch step (sb_dispatch_<hash of its text>). */
  readonly current: TwinSide;
  readonly against: TwinSide;
  /** This version's total Redis step time over the other's. */
  readonly ratio: number | null;
}

function side(us: readonly number[], assignments: number): TwinSide {
  const total = us.reduce((a, b) => a + b, 0);
  return {
    steps: us.length,
    assignments,
    medianStepUs: median(us),
    meanStepUs: us.length > 0 ? round(total / us.length, 1) : null,
    p90StepUs: percentile(us, 90),
    worstStepUs: us.length > 0 ? Math.max(...us) : null,
    totalUs: total,
  };
}

/** The other version's library under this version's name; throws what is wrong with its file. */
function againstLibrary(file: string, command: string): string {
  if (!existsSync(file)) throw new Error(`--against: no file ${file}`);
  const library = libraryOf(loadLua(pathToFileURL(file)), command);
  if (!library)
    throw new Error(
      `--against: ${file} is not a step written as a Redis Function (its last line: return step(KEYS, ARGV))`,
    );
  return library;
}

export async function twinWorkload(
  redis: RedisClient,
  base: string,
  o: TwinOptions,
  rng: (seed: number) => Rng,
  note: Note,
): Promise<TwinFigures> {
  const dispatch = declaredScripts.find((s) => s.command.startsWith('sb_dispatch_'));
  if (!dispatch?.library) throw new Error('the dispatch step is not written as a Redis Function');
  const libraries = [dispatch.library, againstLibrary(o.against, dispatch.command)];
  note(`setting up twin workspaces: ${o.agents} agents, ${o.queued} queued${o.levels ? ', levels' : ''}`);
  const names = [`${base}-twin-a`, `${base}-twin-b`];
  const twins = [];
  for (const name of names)
    twins.push(
      await largeQueueSetUp(redis, name, {
        agents: o.agents,
        queued: o.queued,
        decisions: o.decisions,
        rng: rng(o.seed),
        levels: o.levels,
      }),
    );
  const events = names.map((name) => workspaceKeys(name).events);
  const us: number[][] = [[], []];
  const made = [0, 0];
  note(`${o.decisions} decisions in each, by this version and by ${o.against} in turn`);
  const decisions = Math.min(...twins.map((t) => t.decisions));
  for (let i = 0; i < decisions; i++) {
    for (const k of i % 2 === 0 ? [0, 1] : [1, 0]) {
      await redis.call('FUNCTION', 'LOAD', 'REPLACE', libraries[k]!);
      await startScriptTiming(redis);
      made[k]! += await twins[k]!.decide(i);
      for (const c of await scriptCalls(redis)) {
        if (c.name !== 'dispatch') continue;
        // A step run as a script ran this version's text whichever twin it was: the pair is void.
        if (c.asScript)
          throw new Error(
            'a dispatch step ran as a script, not as the library loaded for it; run twin again',
          );
        if (c.firstKey === events[k]) us[k]!.push(c.us);
      }
    }
  }
  await redis.call('FUNCTION', 'LOAD', 'REPLACE', dispatch.library);
  const current = side(us[0]!, made[0]!);
  const against = side(us[1]!, made[1]!);
  return {
    current,
    against,
    ratio: against.totalUs > 0 ? round(current.totalUs / against.totalUs, 3) : null,
  };
}
