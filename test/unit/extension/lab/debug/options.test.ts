// `vlab up --gdb`: the option, QEMU's arguments (checked against the real QEMU), nokaslr, state and status.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatStatus, parseUpArgs } from '../../../../../extension/cli/commands/lab';
import { LabError } from '../../../../../extension/lab/common/errors';
import type { LabStatus } from '../../../../../extension/lab/lab';
import { type QemuSpec, buildQemuArgs, optValue } from '../../../../../extension/lab/qemu/args';
import { QmpClient } from '../../../../../extension/lab/qemu/qmp';
import { pickGdbPort } from '../../../../../extension/lab/debug/gdbstub';
import { labPaths } from '../../../../../extension/lab/common/paths';
import { readState } from '../../../../../extension/lab/state';
import { kernelCmdline, resolveUpOptions } from '../../../../../extension/lab/up-options';
import { defaultDumpPath, sideFiles } from '../../../../../extension/lab/debug/crash-dump';
import { debugPackageFor, findVmlinux, vmlinuxCandidates } from '../../../../../extension/lab/debug/vmlinux';

function spec(over: Partial<QemuSpec> = {}): QemuSpec {
  return {
    binary: 'qemu-system-x86_64', name: 'vlab', accel: 'tcg', memoryMb: 512, cpus: 1, kernel: '/k', initrd: '/i', kernelCmdline: 'console=ttyS0',
    qmpSocket: '/s/qmp.sock', consoleLog: '/s/console.log', sshPort: 40022, workspace: '/w', crypto: { kind: 'builtin' }, ...over,
  };
}

test('--gdb: parsed into the typed up option, validated, and nokaslr goes before the user\'s --append', () => {
  assert.equal(parseUpArgs(['--gdb']).options.gdb, true);
  assert.equal('gdb' in parseUpArgs([]).options, false);
  assert.equal(resolveUpOptions({ gdb: true }).gdb, true);
  assert.throws(() => resolveUpOptions({ gdb: 'yes' as unknown as boolean }), (e: unknown) => e instanceof LabError && /gdb must be true or false/.test(e.message));
  assert.match(kernelCmdline('/w', 'lab', undefined, false, 'threadirqs', true), / module_blacklist=virtio_crypto nokaslr threadirqs$/);
  assert.doesNotMatch(kernelCmdline('/w', 'lab', undefined, false, undefined, false), /nokaslr/);
});

test('QEMU arguments: -gdb on 127.0.0.1 only, pvpanic with panic=pause; nothing of it without a gdb port', () => {
  const args = buildQemuArgs(spec({ gdbPort: 41234 }));
  assert.equal(args[args.indexOf('-gdb') + 1], 'tcp:127.0.0.1:41234');
  assert.equal(args[args.indexOf('-action') + 1], 'panic=pause');
  assert.ok(args.includes('pvpanic'));
  const plain = buildQemuArgs(spec());
  assert.ok(!plain.includes('-gdb') && !plain.includes('pvpanic') && !plain.includes('-action'));
  assert.throws(() => buildQemuArgs(spec({ gdbPort: 40022 })), /gdb port/);
  assert.throws(() => buildQemuArgs(spec({ gdbPort: 70000 })), /gdb port/);
});

test('the real QEMU takes them: the gdbstub listens on 127.0.0.1:PORT only (never another address)', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-gdbq-'));
  const qmpSocket = join(dir, 'qmp.sock');
  const port = await pickGdbPort(1);
  const a = buildQemuArgs(spec({ gdbPort: port, qmpSocket }));
  const debugArgs = [a[a.indexOf('-gdb')]!, a[a.indexOf('-gdb') + 1]!, '-device', 'pvpanic', '-action', 'panic=pause'];
  const child = spawn('qemu-system-x86_64', ['-machine', 'q35', '-nodefaults', '-display', 'none', '-S', '-qmp', `unix:${optValue(qmpSocket)},server=on,wait=off`, ...debugArgs], { stdio: 'ignore' });
  t.after(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 200 && !existsSync(qmpSocket); i++) await sleep(25);
  const qmp = await QmpClient.connect(qmpSocket, { timeoutMs: 5000, waitForServer: true });
  try {
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    const listening = readFileSync('/proc/net/tcp', 'utf8').split('\n').filter((l) => / 0A /.test(l) && l.includes(`:${hex} `));
    assert.deepEqual(listening.map((l) => l.trim().split(/\s+/)[1]), [`0100007F:${hex}`], 'bound to 127.0.0.1 only');
    assert.equal(readFileSync('/proc/net/tcp6', 'utf8').includes(`:${hex} `), false);
  } finally {
    await qmp.execute('quit').catch(() => undefined);
    qmp.close();
  }
});

test('state: the gdb port and the crash dump are recorded and checked; status shows them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-gdbs-'));
  try {
    const paths = labPaths(dir, undefined, {});
    mkdirSync(paths.stateDir, { recursive: true });
    const base = { schema: 1, state: 'failed', options: { gdb: true }, accel: { kind: 'tcg', why: 't' }, kernelVersion: 'k', upPid: 1, startedAt: 'x' };
    writeFileSync(paths.stateFile, JSON.stringify({ ...base, gdbPort: 41000, crashDump: '/d.elf' }));
    assert.equal(readState(paths)?.gdbPort, 41000);
    writeFileSync(paths.stateFile, JSON.stringify({ ...base, gdbPort: 'x' }));
    assert.equal(readState(paths), undefined);
    writeFileSync(paths.stateFile, JSON.stringify({ ...base, crashDump: 5 }));
    assert.equal(readState(paths), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const s: LabStatus = {
    schema: 1, state: 'running', accel: { kind: 'tcg', why: 't' }, backend: { kind: 'builtin' }, qemu: { pid: 5 }, ssh: { host: '127.0.0.1', port: 40022 },
    stateDir: '/s', guestDriver: 'lab', workspace: '/w', gdb: { host: '127.0.0.1', port: 41000 },
  };
  assert.match(formatStatus(s), /^gdb {8}127\.0\.0\.1:41000 \(vlab gdb\)$/m);
  assert.match(formatStatus({ ...s, state: 'failed', gdb: undefined, crashDump: '/s/dumps/d.elf' }), /^dump {7}\/s\/dumps\/d\.elf \(vlab gdb --core \/s\/dumps\/d\.elf\)$/m);
});

test('dump files and vmlinux: default names, side files, the -dbg package and where vmlinux is looked for', () => {
  assert.equal(defaultDumpPath('/s', new Date(2026, 11, 4, 2, 3, 4)), '/s/dumps/dump-20261204-020304.elf');
  assert.deepEqual(sideFiles('/d/x.elf'), { console: '/d/x.elf.console.txt', info: '/d/x.elf.vlab.json', symbolsBase: 'x.elf.symbols' });
  assert.equal(debugPackageFor('6.1.0-57-amd64'), 'linux-image-6.1.0-57-amd64-dbg');
  assert.deepEqual(vmlinuxCandidates('R', { debugRoot: '/d', modulesRoot: '/m', buildDir: '/b' }), ['/d/boot/vmlinux-R', '/d/lib/modules/R/vmlinux', '/m/R/build/vmlinux', '/b/vmlinux']);
  const root = mkdtempSync(join(tmpdir(), 'vlab-vml-'));
  try {
    assert.equal(findVmlinux('R', { debugRoot: join(root, 'dbg'), modulesRoot: join(root, 'm') }), undefined);
    mkdirSync(join(root, 'dbg', 'boot'), { recursive: true });
    writeFileSync(join(root, 'dbg', 'boot', 'vmlinux-R'), '');
    assert.equal(findVmlinux('R', { debugRoot: join(root, 'dbg'), modulesRoot: join(root, 'm') }), join(root, 'dbg', 'boot', 'vmlinux-R'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
