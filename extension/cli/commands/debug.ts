/** `vlab gdb` (the host's gdb on the lab's gdbstub or a crash dump) and `vlab dump` (a crash dump now). */
import { type CliCommand, UsageError } from '../command';
import { parseArgs } from '../args';
import { labFor } from '../lab-for';
import { reportError } from '../report';
import { planGdb } from '../../lab/debug/plan';
import { dumpLab } from '../../lab/debug/dump-lab';
import { gdbArgv } from '../../lab/debug/gdb-commands';
import { runGdb } from '../../lab/debug/run-gdb';
import { MODULE_NAME } from '../../lab/driver/driver';

const GDB_USAGE = `usage: vlab gdb [--module PATH.ko | --no-module] [--vmlinux PATH] [--core FILE] [--batch] [-ex CMD]...
Starts the host's gdb on the guest kernel: attached to the gdbstub of a lab booted with vlab up --gdb
(target remote 127.0.0.1:PORT), or on a crash dump (--core). Kernel symbols: Debian's vmlinux with
DWARF (package linux-image-<release>-dbg) when installed, else a symbol file made from the guest's
/proc/kallsyms (names only). Module symbols: our driver's .ko (vlab driver build) or --module PATH.ko,
placed at the section addresses the guest reports now (/sys/module/NAME/sections), so run vlab gdb
again after vlab driver reload. While gdb holds the guest stopped, the whole guest stops (SSH too).
  --module PATH   a kernel module of your own (default: ${MODULE_NAME}.ko as vlab driver build made it)
  --no-module     kernel symbols only
  --vmlinux PATH  the guest kernel's vmlinux (default /usr/lib/debug/boot/vmlinux-<release>)
  --core FILE     open a crash dump (vlab dump, or the one written after a panic) instead
  --batch         run the -ex commands after attaching and loading, then detach (the guest keeps
                  running) and exit with gdb's status; for scripts and tests
  -ex CMD         a gdb command, repeatable (interactive too: run before the prompt)
  --print         print the gdb commands vlab would run and exit (e.g. to paste into another front end)`;

const DUMP_USAGE = `usage: vlab dump [FILE]
Writes an ELF core of the guest's memory (QMP dump-guest-memory) to FILE (default
.vlab/dumps/dump-<time>.elf), with FILE.console.txt (the console's last lines) and the guest's symbol
addresses beside it, and prints how to open it (vlab gdb --core FILE; crash when installed). A lab
booted with --gdb also writes one by itself when the guest panics (vlab status names it).`;

/** `-ex CMD` the way gdb spells it (node's parser has no single-dash long options). */
function splitEx(args: readonly string[]): { rest: string[]; ex: string[] } {
  const rest: string[] = [];
  const ex: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-ex' || a === '--ex') {
      const cmd = args[++i];
      if (cmd === undefined) throw new UsageError(`${a} needs a gdb command`);
      ex.push(cmd);
    } else {
      rest.push(a);
    }
  }
  return { rest, ex };
}

const gdbCommand: CliCommand = {
  name: 'gdb',
  summary: "the host's gdb on the guest kernel (gdbstub of vlab up --gdb, or --core DUMP) with kernel + driver symbols",
  usage: GDB_USAGE,
  async run(args, io) {
    const { rest, ex } = splitEx(args);
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        module: { type: 'string' },
        'no-module': { type: 'boolean' },
        vmlinux: { type: 'string' },
        core: { type: 'string' },
        batch: { type: 'boolean' },
        print: { type: 'boolean' },
      },
    });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    if (values.module !== undefined && values['no-module']) throw new UsageError('--module and --no-module exclude each other');
    if (values.batch && ex.length === 0 && !values.print) throw new UsageError('--batch needs at least one -ex CMD');
    const lab = labFor(io);
    try {
      const plan = await planGdb(lab, {
        ...(values['no-module'] ? { module: null } : values.module !== undefined ? { module: values.module } : {}),
        ...(values.core !== undefined ? { core: values.core } : {}),
        ...(values.vmlinux !== undefined ? { vmlinux: values.vmlinux } : {}),
        signal: io.signal,
      });
      for (const note of plan.notes) io.stderr.write(`[vlab] ${note}\n`);
      if (values.print) {
        io.stdout.write(`${plan.commands.join('\n')}\n`);
        return 0;
      }
      const live = plan.target.kind === 'gdbstub';
      const interactive = values.batch !== true;
      const commands = interactive ? [...plan.commands, 'set confirm on'] : plan.commands;
      const what = plan.target.kind === 'gdbstub' ? `attaching gdb to ${plan.target.host}:${plan.target.port}` : `opening ${plan.target.file}`;
      io.stderr.write(`[vlab] ${what} (kernel symbols: ${plan.kernel.kind})${plan.module ? `, ${plan.module.name} at ${plan.module.sections['.text']}` : ''}\n`);
      return await runGdb(plan.gdb, gdbArgv(commands, { batch: !interactive, ex, live }), interactive, io);
    } catch (err) {
      return reportError(io, 'gdb', err);
    }
  },
};

const dumpCommand: CliCommand = {
  name: 'dump',
  summary: "write an ELF core of the guest's memory (crash dump) and say how to open it",
  usage: DUMP_USAGE,
  async run(args, io) {
    const { positionals } = parseArgs({ args: [...args], allowPositionals: true, options: {} });
    if (positionals.length > 1) throw new UsageError('at most one FILE');
    try {
      io.stderr.write('[vlab] writing the crash dump (the guest is paused meanwhile)\n');
      const d = await dumpLab(labFor(io), positionals[0], io.signal);
      const symbols = d.symbolsFrom === 'guest' ? 'symbols read from the guest' : d.symbolsFrom === 'snapshot' ? 'symbols from the last snapshot (the guest did not answer)' : 'no symbols saved (the guest did not answer)';
      io.stdout.write(`wrote ${d.file} in ${d.seconds} s (${d.info.virtualSegments} kernel mappings indexed; ${symbols})\nconsole tail: ${d.consoleFile}\nopen it with:\n${d.howToOpen.map((l) => `  ${l}`).join('\n')}\n`);
      return 0;
    } catch (err) {
      return reportError(io, 'dump', err);
    }
  },
};

export const debugCommands: readonly CliCommand[] = [gdbCommand, dumpCommand];
