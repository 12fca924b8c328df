import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GdbPlan } from '../../../../../extension/lab/debug/plan';
import { DEBUG_TYPE, cdtAttachArguments, defaultConfiguration, rebindCommands, substitutePathCommand } from '../../../../../extension/vscode/debug/adapter-args';

const REPO = join(__dirname, '..', '..', '..', '..', '..', '..');

function livePlan(text: string): GdbPlan {
  const setupCommands = ['set pagination off', 'set confirm off', 'set print pretty on', 'symbol-file /k.elf', `add-symbol-file /b/vlab_cryptodev.ko ${text} -s .data 0xffffffffc0004000`];
  const attachCommand = 'target remote 127.0.0.1:4321';
  return {
    gdb: '/usr/bin/gdb', target: { kind: 'gdbstub', host: '127.0.0.1', port: 4321 }, kernel: { kind: 'kallsyms', file: '/k.elf' }, symbolFile: '/k.elf',
    module: { name: 'vlab_cryptodev', file: '/b/vlab_cryptodev.ko', sections: { '.text': text } },
    setupCommands, attachCommand, commands: [...setupCommands, attachCommand], notes: [],
  };
}

test('a live plan becomes cdt-gdb-adapter attach arguments: symbols, then substitute-path, then target remote to the gdbstub', () => {
  const plan = livePlan('0xffffffffc0000000');
  const args = cdtAttachArguments(plan, { name: 'n', sourceMap: [{ from: '/ws/.vlab/guest/driver', to: '/repo/guest/driver' }], holdDriverTimeout: true, planOptions: {} });
  assert.equal(args.type, DEBUG_TYPE);
  assert.equal(args.request, 'attach');
  assert.equal(args.gdb, '/usr/bin/gdb');
  assert.deepEqual(args.preConnectCommands, [...plan.setupCommands, 'set substitute-path "/ws/.vlab/guest/driver" "/repo/guest/driver"']);
  assert.deepEqual(args.target, { type: 'remote', parameters: ['127.0.0.1:4321'] });
  assert.equal(args.gdbAsync, true);
  assert.deepEqual(args.vlab, { kind: 'live', moduleText: '0xffffffffc0000000', holdDriverTimeout: true, sourceMap: [{ from: '/ws/.vlab/guest/driver', to: '/repo/guest/driver' }], planOptions: {} });
});

test('a core plan connects with core-file and never holds the driver timeout', () => {
  const live = livePlan('0xffffffffc0000000');
  const plan: GdbPlan = { ...live, target: { kind: 'core', file: '/d/dump.elf' }, attachCommand: 'core-file /d/dump.elf', commands: [...live.setupCommands, 'core-file /d/dump.elf'] };
  const args = cdtAttachArguments(plan, { name: 'n', sourceMap: [], holdDriverTimeout: true, planOptions: {} });
  assert.deepEqual(args.target, { connectCommands: ['core-file /d/dump.elf'] });
  assert.equal(args.vlab.kind, 'core');
  assert.equal(args.vlab.holdDriverTimeout, false);
  assert.equal(args.gdbAsync, false);
});

test('re-bind after a reload: remove the module at its old .text, add it at the new addresses', () => {
  assert.deepEqual(rebindCommands('0xffffffffc0000000', livePlan('0xffffffffc0100000')), ['remove-symbol-file -a 0xffffffffc0000000', 'add-symbol-file /b/vlab_cryptodev.ko 0xffffffffc0100000 -s .data 0xffffffffc0004000']);
  assert.deepEqual(rebindCommands(undefined, livePlan('0xffffffffc0100000')).length, 1);
  const { module: _m, ...noModule } = livePlan('0x1');
  assert.throws(() => rebindCommands('0x1', { ...noModule, setupCommands: noModule.setupCommands.slice(0, 4) }), /no module symbols/);
});

test('substitute-path refuses what would break its quoting', () => {
  assert.throws(() => substitutePathCommand({ from: '/a"b', to: '/c' }), TypeError);
  assert.throws(() => substitutePathCommand({ from: '/a', to: '/c\nshell id' }), TypeError);
});

test('package.json contributes the debugger with the same initial configuration, and breakpoints in C', () => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { contributes: { debuggers: { type: string; initialConfigurations: unknown[] }[]; breakpoints: { language: string }[] }; dependencies: Record<string, string>; activationEvents: string[] };
  const dbg = pkg.contributes.debuggers.find((d) => d.type === DEBUG_TYPE);
  assert.ok(dbg);
  assert.deepEqual(dbg.initialConfigurations, [defaultConfiguration()]);
  assert.ok(pkg.contributes.breakpoints.some((b) => b.language === 'c'));
  assert.match(pkg.dependencies['cdt-gdb-adapter'] ?? '', /^\d+\.\d+\.\d+$/, 'the adapter is pinned');
  assert.ok(pkg.activationEvents.includes(`onDebugResolve:${DEBUG_TYPE}`));
});
