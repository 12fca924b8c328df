/** `vlab` commands of the lab: guest build, up, status, ssh, logs, down, capture, demo. */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CliCommand, type CliIo, UsageError } from '../command';
import { choice, integer, parseArgs } from '../args';
import { hostSelection, labFor } from '../lab-for';
import { reportError } from '../report';
import { runDemo, demoSteps, formatDemoSummary } from '../../lab/demo/run';
import { LabError, errorMessage } from '../../lab/common/errors';
import { type Lab, checkKernelAppend, type LabProgress, type LabStatus, type UpOptions } from '../../lab/lab';
import type { HostPaths } from '../../lab/host/host';
import type { LogKind } from '../../lab/common/paths';
import { FaultRuleError, parseFaultRule } from '../../../backend/faults/plan';
import { COUNTER_NAMES } from '../../../backend/telemetry/schema';

function progressPrinter(io: CliIo): (p: LabProgress) => void {
  return (p) => io.stderr.write(`[vlab] ${p.message}\n`);
}

const UP_USAGE = `usage: vlab up [--backend builtin|ts] [--engine auto|openssl|node|cryptodev] [--accel auto|kvm|tcg]
               [--memory MB] [--cpus N] [--guest-driver upstream|none|lab] [--timeout SEC] [--dry-run]
               [--fault RULE]... [--append 'ARGS'] [--gdb] [--qemu PATH] [--kernel PATH [--modules DIR]]
Boots the lab VM and returns once the guest answers over SSH. A second \`up\` while it runs does nothing.
  --backend       virtio-crypto backend: the TypeScript vhost-user backend (ts, default) or QEMU's builtin one
  --engine        crypto engine of the ts backend (default auto)
  --accel         accelerator (default auto: KVM only when it can run a stock kernel, else TCG)
  --memory MB     guest RAM (default 1024)      --cpus N   guest CPUs (default 2)
  --guest-driver  lab: virtio_crypto is kept off the device and our /dev/crypto driver is loaded
                  after boot (default); upstream: Linux's virtio_crypto binds it (kernel crypto
                  API, kcapi-enc); none: nothing bound
  --timeout SEC   how long to wait for SSH (default 120)
  --fault RULE    fault-injection rule the ts backend starts with, repeatable; change them later with
                  vlab fault set/list/clear (docs/fault-injection.md)
  --append 'ARGS' extra guest kernel command-line arguments, after the lab's own (e.g.
                  'movablecore=512M threadirqs'): printable ASCII, at most 512 characters, no double
                  quotes, no "--", no vlab.* keys (the lab's own)
  --gdb           debugging: QEMU's gdbstub on a free 127.0.0.1 port (vlab status shows it; attach with
                  vlab gdb), nokaslr on the kernel command line, and a guest panic pauses QEMU so a crash
                  dump is written before it ends (docs/debugging.md)
  --qemu PATH     the QEMU binary (default qemu-system-x86_64 on PATH, or env VLAB_QEMU); an unpacked
                  one (dpkg -x, e.g. .vlab-tools/qemu-10.0) gets -L <its>/usr/share/qemu
  --kernel PATH   boot a kernel not installed on the host: a bzImage, an unpacked kernel package
                  (boot/vmlinuz-R + lib/modules/R, e.g. .vlab-tools/linux-6.12) or a kernel build tree
                  (arch/x86/boot/bzImage); env VLAB_GUEST_KERNEL. The guest sees its modules as
                  /lib/modules/R. Pass the same --kernel to vlab driver build.
  --modules DIR   its modules (lib/modules/R, or a folder holding R/, or an INSTALL_MOD_PATH root)
  --dry-run       print the QEMU command line and exit`;

export function parseUpArgs(args: readonly string[]): { options: Partial<UpOptions>; dryRun: boolean; host: Partial<HostPaths> } {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      backend: { type: 'string' },
      engine: { type: 'string' },
      accel: { type: 'string' },
      memory: { type: 'string' },
      cpus: { type: 'string' },
      'guest-driver': { type: 'string' },
      timeout: { type: 'string' },
      'dry-run': { type: 'boolean' },
      fault: { type: 'string', multiple: true },
      append: { type: 'string' },
      gdb: { type: 'boolean' },
      qemu: { type: 'string' },
      kernel: { type: 'string' },
      modules: { type: 'string' },
    },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.modules !== undefined && values.kernel === undefined) throw new UsageError('--modules goes with --kernel');
  for (const rule of values.fault ?? []) {
    try {
      parseFaultRule(rule);
    } catch (err) {
      if (err instanceof FaultRuleError) throw new UsageError(`--fault: ${err.message}`);
      throw err;
    }
  }
  if (values.append !== undefined) {
    const why = checkKernelAppend(values.append);
    if (why) throw new UsageError(`--append: ${why}`);
  }
  const timeoutSec = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeoutSec !== undefined && !(Number.isFinite(timeoutSec) && timeoutSec > 0 && timeoutSec <= 3600)) {
    throw new UsageError(`--timeout must be a number of seconds from 0 to 3600 (got "${values.timeout}")`);
  }
  return {
    dryRun: values['dry-run'] === true,
    host: hostSelection(values.qemu, values.kernel, values.modules),
    options: {
      backend: choice(values.backend, ['builtin', 'ts'] as const, '--backend'),
      engine: choice(values.engine, ['auto', 'openssl', 'node', 'cryptodev'] as const, '--engine'),
      accel: choice(values.accel, ['auto', 'kvm', 'tcg'] as const, '--accel'),
      memoryMb: integer(values.memory, '--memory', 256, 65536),
      cpus: integer(values.cpus, '--cpus', 1, 64),
      guestDriver: choice(values['guest-driver'], ['upstream', 'none', 'lab'] as const, '--guest-driver'),
      bootTimeoutMs: timeoutSec === undefined ? undefined : Math.round(timeoutSec * 1000),
      ...(values.fault ? { faults: values.fault } : {}),
      ...(values.append !== undefined && values.append.trim() !== '' ? { append: values.append.trim() } : {}),
      ...(values.gdb ? { gdb: true } : {}),
    },
  };
}

function noArgs(args: readonly string[], name: string): void {
  if (args.length) throw new UsageError(`vlab ${name} takes no arguments (got "${args[0]}")`);
}

export function formatStatus(s: LabStatus): string {
  const lines: string[] = [];
  const row = (k: string, v: string): void => {
    lines.push(`${k.padEnd(10)} ${v}`);
  };
  const extra = [s.uptimeSec !== undefined ? `up ${s.uptimeSec} s` : '', s.bootSec !== undefined ? `booted in ${s.bootSec} s` : ''].filter(Boolean).join(', ');
  row('state', `${s.state}${extra ? ` (${extra})` : ''}`);
  if (s.reason) row('reason', s.reason);
  if (s.accel) row('accel', `${s.accel.kind} — ${s.accel.why}`);
  row('backend', `${s.backend.kind}${s.backend.pid ? ` (pid ${s.backend.pid})` : ''}`);
  const telemetry = s.backend.telemetry;
  if (telemetry === null) row('', 'telemetry: no answer from the backend');
  if (telemetry) {
    row('', `engine ${telemetry.engine.name}; ${COUNTER_NAMES.slice(0, 8).map((k) => `${k} ${telemetry.counters[k]}`).join(', ')}`);
  }
  if (s.qemu.pid) row('qemu', `pid ${s.qemu.pid}`);
  if (s.ssh.port) row('ssh', `${s.ssh.host}:${s.ssh.port} (vlab ssh)`);
  if (s.gdb) row('gdb', `${s.gdb.host}:${s.gdb.port} (vlab gdb)`);
  if (s.crashDump) row('dump', `${s.crashDump} (vlab gdb --core ${s.crashDump})`);
  if (s.kernelVersion) row('guest', `kernel ${s.kernelVersion}, driver ${s.guestDriver}`);
  if (s.append) row('append', s.append);
  if (s.device === null) row('device', 'virtio-crypto status unavailable (QMP did not answer)');
  if (s.device) {
    const d = s.device;
    row('device', `${d.name} (id ${d.deviceId}) ${d.started ? 'started' : 'not started'}${d.broken ? ', BROKEN' : ''}; backend ${d.backendType ?? '?'}`);
    row('', `status: ${d.status.join(' ') || '(none)'}`);
    const features = [...d.guestFeatures.transports, ...d.guestFeatures.device];
    row('', `features: ${features.join(' ') || '(not negotiated)'}${d.guestFeatures.unknownDeviceBits ? ` + device bits 0x${d.guestFeatures.unknownDeviceBits.toString(16)}` : ''}`);
    for (const q of d.queues) {
      const label = q.index === d.numQueues - 1 ? 'control' : `data ${q.index}`;
      if (q.owner === 'qemu') row('', `queue ${q.index} (${label}): size ${q.size}, avail ${q.availIdx ?? '?'}, last avail ${q.lastAvailIdx ?? '?'}, used ${q.usedIdx}, in use ${q.inUse}`);
      else row('', `queue ${q.index} (${label}): served by the backend (see its telemetry)`);
    }
  }
  row('state dir', s.stateDir);
  if (s.consoleTail) lines.push('--- last console lines (vlab logs console) ---', s.consoleTail);
  return `${lines.join('\n')}\n`;
}

const guestBuild: CliCommand = {
  name: 'guest build',
  summary: 'build the guest boot artefacts (initramfs, init, SSH keys); cached by content',
  usage: 'usage: vlab guest build\nBuilds the initramfs and per-lab SSH keys into the state folder. Does nothing when the inputs did not change.',
  async run(args, io) {
    noArgs(args, 'guest build');
    try {
      const g = await labFor(io).buildGuest({ signal: io.signal, onProgress: progressPrinter(io) });
      io.stdout.write(`${g.rebuilt ? 'built' : 'up to date'}: ${g.initramfs} (kernel ${g.kernel.version}, ${g.hash.slice(0, 12)})\n`);
      return 0;
    } catch (err) {
      return reportError(io, 'guest build', err);
    }
  },
};

const up: CliCommand = {
  name: 'up',
  summary: 'boot the lab VM; returns when the guest answers over SSH',
  usage: UP_USAGE,
  async run(args, io) {
    const { options, dryRun, host } = parseUpArgs(args);
    const lab = labFor(io, host);
    try {
      if (dryRun) {
        const plan = await lab.dryRun(options);
        io.stdout.write(`# accel: ${plan.accel.kind} — ${plan.accel.why}\n# the SSH port is picked again at up time\n${plan.commandLine}\n`);
        return 0;
      }
      const result = await lab.up(options, { signal: io.signal, onProgress: progressPrinter(io) });
      const s = result.status;
      if (result.already) {
        io.stdout.write(
          `the lab is already running (backend ${s.backend.kind}, ${s.accel?.kind ?? '?'}, QEMU pid ${s.qemu.pid ?? '?'}, ssh port ${s.ssh.port ?? '?'}); nothing to do` +
            ' (vlab down first to boot with other options)\n',
        );
      } else {
        io.stdout.write(`lab running: booted in ${s.bootSec ?? '?'} s with ${s.accel?.kind ?? '?'}, backend ${s.backend.kind}, ssh 127.0.0.1:${s.ssh.port ?? '?'}${s.gdb ? `, gdbstub ${s.gdb.host}:${s.gdb.port}` : ''} — try: vlab ssh${s.gdb ? ', vlab gdb' : ''}\n`);
      }
      return 0;
    } catch (err) {
      return reportError(io, 'up', err);
    }
  },
};

const status: CliCommand = {
  name: 'status',
  summary: 'state of the lab VM, accelerator, backend, SSH port, virtio-crypto device status',
  usage: 'usage: vlab status [--json]\n  --json  machine-readable object (schema: docs/status-json.md)',
  async run(args, io) {
    const { values, positionals } = parseArgs({ args: [...args], allowPositionals: true, options: { json: { type: 'boolean' } } });
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const s = await labFor(io).status();
    io.stdout.write(values.json ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s));
    return 0;
  },
};

async function interactiveShell(lab: Lab, io: CliIo): Promise<number> {
  const session = await lab.ssh({ signal: io.signal });
  const stdin = io.stdin as NodeJS.ReadStream;
  const stdout = io.stdout as NodeJS.WriteStream;
  const tty = stdin.isTTY === true && typeof stdin.setRawMode === 'function';
  try {
    const channel = await session.shell({ cols: stdout.columns || 80, rows: stdout.rows || 24, term: io.env.TERM ?? 'xterm-256color' });
    const onResize = (): void => {
      channel.setWindow(stdout.rows || 24, stdout.columns || 80, 0, 0);
    };
    if (tty) stdin.setRawMode(true);
    stdout.on('resize', onResize);
    stdin.pipe(channel);
    channel.pipe(io.stdout, { end: false });
    channel.stderr.pipe(io.stderr, { end: false });
    const code = await new Promise<number>((resolve) => {
      let exitCode = 0;
      channel.on('exit', (c: number | null) => {
        exitCode = c ?? 255;
      });
      channel.on('close', () => resolve(exitCode));
    });
    stdin.unpipe(channel);
    stdout.off('resize', onResize);
    return code;
  } finally {
    if (tty) stdin.setRawMode(false);
    session.close();
    releaseStdin(io);
  }
}

/** process.stdin keeps the event loop alive once read from; let the CLI exit after the command. */
function releaseStdin(io: CliIo): void {
  if (io.stdin === process.stdin) process.stdin.destroy();
  else (io.stdin as NodeJS.ReadStream).pause?.();
}

const ssh: CliCommand = {
  name: 'ssh',
  summary: 'shell in the guest, or run a command there: vlab ssh -- CMD ARGS',
  usage: `usage: vlab ssh               interactive shell in the guest (pty)
       vlab ssh -- CMD ARGS...  run CMD in the guest (each argument passed as is; use sh -c '...' for
                                shell syntax); stdin/stdout/stderr are streamed, exit code propagated`,
  async run(args, io) {
    const lab = labFor(io);
    const argv = args[0] === '--' ? args.slice(1) : [...args];
    if (args[0] !== '--' && args.length) throw new UsageError('put the command after --, e.g. vlab ssh -- uname -r');
    try {
      if (argv.length === 0) return await interactiveShell(lab, io);
      const session = await lab.ssh({ signal: io.signal });
      try {
        const res = await session.exec(argv, { stdin: io.stdin, stdout: io.stdout, stderr: io.stderr, signal: io.signal });
        // Like ssh(1): a command killed by a signal exits 255.
        return res.code ?? 255;
      } finally {
        session.close();
        releaseStdin(io);
      }
    } catch (err) {
      if (err instanceof LabError) return reportError(io, 'ssh', err);
      io.stderr.write(`vlab ssh: ${errorMessage(err)}\n`);
      return 255;
    }
  },
};

const LOG_KINDS = ['console', 'qemu', 'backend'] as const;
const MAX_LOG_PRINT = 4 * 1024 * 1024;

async function followFile(path: string, io: CliIo, from: number): Promise<void> {
  let offset = from;
  while (!io.signal.aborted) {
    const size = existsSync(path) ? statSync(path).size : 0;
    if (size < offset) offset = 0; // truncated: a new boot started
    if (size > offset) {
      await new Promise<void>((resolve, reject) => {
        const s = createReadStream(path, { start: offset, end: size - 1 });
        s.on('data', (c) => io.stdout.write(c));
        s.on('end', resolve);
        s.on('error', reject);
      });
      offset = size;
    }
    await sleep(250, undefined, { signal: io.signal }).catch(() => undefined);
  }
}

const logs: CliCommand = {
  name: 'logs',
  summary: "the VM's serial console, QEMU's or the backend's log (-f follows)",
  usage: 'usage: vlab logs [console|qemu|backend] [-f]\n  default: console.  -f, --follow  keep printing new lines until Ctrl-C',
  async run(args, io) {
    const { values, positionals } = parseArgs({ args: [...args], allowPositionals: true, options: { follow: { type: 'boolean', short: 'f' } } });
    if (positionals.length > 1) throw new UsageError('one log at a time');
    const kind: LogKind = choice(positionals[0], LOG_KINDS, 'log') ?? 'console';
    const path = labFor(io).logPath(kind);
    const size = existsSync(path) ? statSync(path).size : 0;
    if (!existsSync(path) && !values.follow) {
      io.stderr.write(`vlab logs: no ${kind} log yet (${path})\n`);
      return 1;
    }
    const start = Math.max(0, size - MAX_LOG_PRINT);
    if (start > 0) io.stdout.write(`[vlab] ... (showing the last ${MAX_LOG_PRINT / 1024 / 1024} MiB)\n`);
    if (size > 0) {
      await new Promise<void>((resolve, reject) => {
        const s = createReadStream(path, { start, end: size - 1 });
        s.on('data', (c) => io.stdout.write(c));
        s.on('end', resolve);
        s.on('error', reject);
      });
    }
    if (values.follow) await followFile(path, io, size);
    return 0;
  },
};

const down: CliCommand = {
  name: 'down',
  summary: 'power the VM off (ACPI, then QMP quit, then kill) and clean up',
  usage: 'usage: vlab down\nGraceful ACPI power-off, then QMP quit, then SIGKILL, each with a bounded wait. Cleans stale state.',
  async run(args, io) {
    noArgs(args, 'down');
    try {
      const r = await labFor(io).down({ signal: io.signal, onProgress: progressPrinter(io) });
      if (r.wasRunning) io.stdout.write(`lab stopped (${r.qemu === 'powerdown' ? 'ACPI power-off' : r.qemu === 'quit' ? 'QMP quit' : r.qemu === 'terminate' ? 'SIGTERM' : 'killed'})\n`);
      else if (r.stale) io.stdout.write('the lab was not running; cleaned up stale state from a crashed run\n');
      else io.stdout.write('the lab is not running\n');
      return 0;
    } catch (err) {
      return reportError(io, 'down', err);
    }
  },
};

const captureStart: CliCommand = {
  name: 'capture start',
  summary: "record the guest's network traffic to a pcap file",
  usage: 'usage: vlab capture start FILE\nRecords the guest NIC traffic (QEMU filter-dump) into FILE (pcap) until `vlab capture stop`.',
  async run(args, io) {
    if (args.length !== 1) throw new UsageError('give exactly one output FILE');
    try {
      const path = await labFor(io).captureStart(args[0]!);
      io.stdout.write(`capturing guest traffic into ${path}\n`);
      return 0;
    } catch (err) {
      return reportError(io, 'capture start', err);
    }
  },
};

const captureStop: CliCommand = {
  name: 'capture stop',
  summary: 'stop recording the guest network traffic',
  usage: 'usage: vlab capture stop',
  async run(args, io) {
    noArgs(args, 'capture stop');
    try {
      await labFor(io).captureStop();
      io.stdout.write('capture stopped\n');
      return 0;
    } catch (err) {
      return reportError(io, 'capture stop', err);
    }
  },
};

const demo: CliCommand = {
  name: 'demo',
  summary: 'build, boot, show virtio-crypto working, encrypted host↔guest chat over it, shut down, summary',
  usage: `usage: vlab demo [up options, see vlab help up]
Builds the guest, boots the VM, checks the virtio-crypto device inside the guest (driver bound,
/proc/crypto self-test, AES-CBC round trip vs host OpenSSL), swaps in our /dev/crypto driver and runs
an encrypted host↔guest chat through it with a capture of the guest's traffic (ciphertext only),
shuts down, prints a summary.`,
  async run(args, io) {
    const { options, dryRun, host } = parseUpArgs(args);
    if (dryRun) throw new UsageError('--dry-run is for vlab up');
    const lab = labFor(io, host);
    const report = await runDemo(lab, demoSteps(), {
      options,
      signal: io.signal,
      log: (line) => io.stderr.write(`[vlab] ${line}\n`),
    });
    io.stdout.write(formatDemoSummary(report));
    if (!report.ok) {
      const failed = report.steps.find((s) => !s.ok);
      if (failed?.error) {
        reportError(io, 'demo', failed.error);
      }
      io.stderr.write(`logs: ${lab.logPath('console')} ${lab.logPath('qemu')}\n`);
    }
    return report.ok ? 0 : 1;
  },
};

export const labCommands: readonly CliCommand[] = [guestBuild, up, status, ssh, logs, down, captureStart, captureStop, demo];
