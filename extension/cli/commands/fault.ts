/** `vlab fault set|list|clear`: the back-end's fault-injection plan, through its control socket. */
import * as path from 'node:path';
import { telemetryRequest } from '../../../backend/telemetry/client';
import type { FaultReply, FaultRequest, ReplyFor } from '../../../backend/telemetry/schema';
import { FaultRuleError, parseFaultRule } from '../../../backend/faults/plan';
import { type CliCommand, type CliIo, UsageError } from '../command';
import { parseArgs } from '../args';
import { formatFaults } from '../fault-view';
import { labPathsFor } from '../lab-for';

const COMMON = [
  '  --telemetry PATH  the back-end\'s telemetry/control socket (default <state>/telemetry.sock)',
  '  --json            print the reply as one JSON line (docs/fault-injection.md)',
];

function parse(args: readonly string[], positionals: boolean): { telemetry: string | undefined; json: boolean; rest: string[] } {
  const { values, positionals: rest } = parseArgs({ args: [...args], options: { telemetry: { type: 'string' }, json: { type: 'boolean' } }, strict: true, allowPositionals: positionals });
  return { telemetry: values.telemetry, json: values.json ?? false, rest };
}

async function run(name: string, io: CliIo, telemetry: string | undefined, json: boolean, request: FaultRequest, text: (r: Exclude<FaultReply, { type: 'error' }>) => string): Promise<number> {
  const socket = path.resolve(io.cwd, telemetry ?? labPathsFor(io).telemetrySocket);
  let reply: ReplyFor<FaultRequest>;
  try {
    reply = await telemetryRequest(socket, request);
  } catch (err) {
    io.stderr.write(`vlab ${name}: cannot reach the back-end's control socket at ${socket}: ${(err as Error).message}\n(is the lab up with --backend ts, or \`vlab backend\` running?)\n`);
    return 1;
  }
  if (json) io.stdout.write(`${JSON.stringify(reply)}\n`);
  if (reply.type === 'error') {
    if (!json) io.stderr.write(`vlab ${name}: ${reply.message}\n`);
    return 1;
  }
  if (!json) io.stdout.write(text(reply));
  return 0;
}

const faultSet: CliCommand = {
  name: 'fault set',
  summary: 'add fault-injection rules to the running back-end (docs/fault-injection.md)',
  usage: [
    'usage: vlab fault set RULE... [--telemetry PATH] [--json]',
    '',
    '  RULE = ACTION[=ARG][,MATCHER=VALUE...]; the rules are added to those already set (all or none).',
    '  actions:  status=err|badmsg|notsupp|invsess   complete with that status, no crypto done',
    '            delay=MS                             complete MS ms later (1..60000)',
    '            stall                                stop serving the queue until the rule is cleared',
    '            irq=withhold|duplicate               no interrupt / a second one for that completion',
    '            short-used=BYTES                     used length reported BYTES smaller (clamped at 0)',
    '            flip-dst                             invert the output bytes, status OK',
    '  matchers: every=N  opcode=encrypt|decrypt|NUM  session=ID  count=N (fire at most N times)',
    '  e.g.      vlab fault set status=badmsg,every=3 delay=20,opcode=decrypt',
    ...COMMON,
  ].join('\n'),
  async run(args, io) {
    const { telemetry, json, rest } = parse(args, true);
    if (rest.length === 0) throw new UsageError('give at least one rule');
    for (const rule of rest) {
      try {
        parseFaultRule(rule);
      } catch (err) {
        if (err instanceof FaultRuleError) throw new UsageError(`bad rule: ${err.message}`);
        throw err;
      }
    }
    return run('fault set', io, telemetry, json, { type: 'fault-set', rules: rest }, (r) =>
      r.type === 'fault-set' ? r.added.map((a) => `rule #${a.id}: ${a.rule}\n`).join('') : '');
  },
};

const faultList: CliCommand = {
  name: 'fault list',
  summary: 'show the fault-injection rules, their hits and the injected-fault counters',
  usage: ['usage: vlab fault list [--telemetry PATH] [--json]', ...COMMON].join('\n'),
  async run(args, io) {
    const { telemetry, json } = parse(args, false);
    return run('fault list', io, telemetry, json, { type: 'fault-list' }, (r) => formatFaults(r.faults));
  },
};

const faultClear: CliCommand = {
  name: 'fault clear',
  summary: 'remove one fault-injection rule (or all); clearing a stall serves the held requests',
  usage: ['usage: vlab fault clear [ID] [--telemetry PATH] [--json]', '', '  Without ID every rule is removed.', ...COMMON].join('\n'),
  async run(args, io) {
    const { telemetry, json, rest } = parse(args, true);
    if (rest.length > 1) throw new UsageError(`at most one rule id (got ${rest.length})`);
    let id: number | undefined;
    if (rest.length === 1) {
      id = /^\d+$/.test(rest[0]) ? Number(rest[0]) : Number.NaN;
      if (!Number.isSafeInteger(id) || id < 1) throw new UsageError(`rule id must be a positive integer (got "${rest[0]}")`);
    }
    return run('fault clear', io, telemetry, json, id === undefined ? { type: 'fault-clear' } : { type: 'fault-clear', id }, (r) =>
      r.type === 'fault-clear' ? (r.cleared.length ? `cleared ${r.cleared.map((c) => `#${c}`).join(' ')}\n` : 'no rules to clear\n') : '');
  },
};

export const faultCommands: readonly CliCommand[] = [faultSet, faultList, faultClear];
