/** `vlab bench boot`: the lab's boot breakdown against the boot floor, measured in the same run. */
import { type CliCommand, UsageError } from '../command';
import { integer } from '../args';
import { labFor } from '../lab-for';
import { reportError } from '../report';
import { parseUpArgs } from './lab';
import { type FloorTimings, measureBootFloor } from '../../lab/boot-floor';
import { type BootTimings, formatBootTimings } from '../../lab/boot-timings';

const USAGE = `usage: vlab bench boot [--runs N] [--json] [up options, see vlab help up]
Boots the floor (the same QEMU, machine, accelerator, memory and guest kernel with a busybox init that
prints its uptime and powers off at once), then the lab (vlab up with the options given, then vlab down),
N times (default 1, at most 10), and prints both breakdowns and what the lab adds to the floor:
lab boot (QEMU start -> SSH login) minus floor (QEMU start -> init's line seen). Needs no running lab
(refused while one runs).`;

interface BootRun {
  readonly floor: FloorTimings;
  readonly lab: BootTimings;
  readonly addsSec: number | null;
}

const loadavg = async (): Promise<string> => (await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

export const benchBootCommands: readonly CliCommand[] = [
  {
    name: 'bench boot',
    summary: "the lab's boot breakdown and the floor (same kernel, busybox init that powers off) in the same run",
    usage: USAGE,
    async run(args, io) {
      const rest = [...args];
      let runs = 1;
      let json = false;
      for (let i = 0; i < rest.length; ) {
        if (rest[i] === '--json') {
          json = true;
          rest.splice(i, 1);
        } else if (rest[i] === '--runs') {
          runs = integer(rest[i + 1], '--runs', 1, 10) ?? 1;
          rest.splice(i, 2);
        } else i++;
      }
      const { options, dryRun, host } = parseUpArgs(rest);
      if (dryRun) throw new UsageError('--dry-run is for vlab up');
      const lab = labFor(io, host);
      try {
        if ((await lab.status()).state === 'running') throw new UsageError('a lab is running in this folder: vlab down first');
        const results: BootRun[] = [];
        const loadBefore = await loadavg();
        for (let i = 0; i < runs; i++) {
          io.stderr.write(`[bench] run ${i + 1}/${runs}: floor\n`);
          const floor = await measureBootFloor(lab, options, io.signal);
          io.stderr.write(`[bench] run ${i + 1}/${runs}: lab\n`);
          const up = await lab.up(options, { signal: io.signal });
          await lab.down();
          const t = up.status.timings;
          if (!t) throw new Error('the lab reported no boot timings');
          results.push({ floor, lab: t, addsSec: floor.toInitSec === null ? null : Math.round((t.totalSec - floor.toInitSec) * 100) / 100 });
        }
        const loadAfter = await loadavg();
        if (json) {
          io.stdout.write(`${JSON.stringify({ schema: 1, loadAverage: { before: loadBefore, after: loadAfter }, runs: results }, null, 2)}\n`);
          return 0;
        }
        const v = (x: number | null): string => (x === null ? '?' : `${x.toFixed(2)} s`);
        results.forEach((r, i) => {
          io.stdout.write(`run ${i + 1}:\n floor: qemu start ${v(r.floor.qemuSec)}, firmware ${v(r.floor.firmwareSec)}, kernel ${v(r.floor.kernelSec)}; ` +
            `init seen after ${v(r.floor.toInitSec)}, QEMU exit after ${v(r.floor.exitSec)}\n lab:\n${formatBootTimings(r.lab)}\n` +
            ` the lab adds ${v(r.addsSec)} to the floor (${r.floor.toInitSec ? (r.lab.totalSec / r.floor.toInitSec).toFixed(1) : '?'}x)\n`);
        });
        io.stdout.write(`load average: ${loadBefore} before, ${loadAfter} after\n`);
        return 0;
      } catch (err) {
        if (err instanceof UsageError) throw err;
        return reportError(io, 'bench boot', err);
      }
    },
  },
];
