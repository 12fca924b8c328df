import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LabStatus } from '../../../../extension/lab/lab';
import { buildTree } from '../../../../extension/vscode/tree-model';

function status(over: Partial<LabStatus> = {}): LabStatus {
  return {
    schema: 1, state: 'running', accel: { kind: 'tcg', why: 'no vmx' }, backend: { kind: 'ts', pid: 20, telemetry: { engine: { name: 'openssl', reason: 'auto' }, counters: { requests: 5 }, sessions: [{ id: 3, algorithm: 'AES-256-CBC' }] } },
    qemu: { pid: 10 }, ssh: { host: '127.0.0.1', port: 2222 }, uptimeSec: 65, bootSec: 9.4, device: null, stateDir: '/x/.vlab', guestDriver: 'upstream', workspace: '/x',
    ...over,
  } as LabStatus;
}

describe('lab view model', () => {
  it('is empty while stopped (the welcome content with Start VM shows)', () => {
    assert.deepEqual(buildTree(undefined, []), []);
    assert.deepEqual(buildTree(status({ state: 'stopped' }), []), []);
  });

  it('shows VM, Backend, Device, Sessions and Chats while running', () => {
    const roots = buildTree(status(), [{ id: 1, label: 'chat 1 (pair)', detail: 'x' }]);
    assert.deepEqual(roots.map((n) => n.id), ['vm', 'backend', 'device', 'sessions', 'chats']);
    const vm = roots[0]!;
    assert.equal(vm.contextValue, 'vm-running');
    assert.ok(vm.children!.some((c) => c.label === 'uptime' && c.description === '1m 5s'));
    assert.ok(vm.children!.some((c) => c.label === 'accelerator' && c.description === 'tcg (no vmx)'));
    assert.ok(roots[1]!.children!.some((c) => c.label === 'engine' && c.description === 'openssl (auto)'));
    assert.equal(roots[3]!.description, '1');
    assert.equal(roots[4]!.children!.length, 1);
  });

  it('a failed lab shows the reason and no device nodes', () => {
    const roots = buildTree(status({ state: 'failed', reason: 'backend died (exit 1)' }), []);
    assert.equal(roots[0]!.contextValue, 'vm-failed');
    assert.equal(roots[0]!.tooltip, 'backend died (exit 1)');
    assert.deepEqual(roots.map((n) => n.id), ['vm', 'chats']);
  });

  it('caps hostile telemetry (long strings, many counters, odd types)', () => {
    const counters = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`c${i}`, 'z'.repeat(1000)]));
    const roots = buildTree(status({ backend: { kind: 'ts', telemetry: { engine: { name: 'e'.repeat(5000) }, counters, sessions: 'nope' } } }), []);
    const backend = roots.find((n) => n.id === 'backend')!;
    const list = backend.children!.find((c) => c.id === 'backend.counters')!.children!;
    assert.equal(list.length, 64);
    assert.ok(list.every((c) => (c.description ?? '').length <= 120));
    assert.ok(backend.children!.every((c) => (c.description ?? '').length <= 120));
    assert.equal(roots.find((n) => n.id === 'sessions')!.description, '0');
  });
});
