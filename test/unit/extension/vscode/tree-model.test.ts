import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LabStatus } from '../../../../extension/lab/lab';
import { buildTree } from '../../../../extension/vscode/tree-model';
import { backendSnapshot } from '../../backend/telemetry/snapshot-fixture';

function status(over: Partial<LabStatus> = {}): LabStatus {
  return {
    schema: 1, state: 'running', accel: { kind: 'tcg', why: 'no vmx' }, backend: { kind: 'ts', pid: 20, telemetry: backendSnapshot() },
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
    assert.ok(roots[1]!.children!.some((c) => c.label === 'uptime' && c.description === '5s'));
    const counters = roots[1]!.children!.find((c) => c.id === 'backend.counters')!.children!;
    assert.deepEqual(counters.slice(0, 3).map((c) => [c.label, c.description]), [['requests', '10'], ['bytesIn', '4096'], ['bytesOut', '4096']], "every counter, in the back-end's order");
    assert.equal(roots[3]!.description, '1');
    assert.deepEqual(roots[3]!.children!.map((c) => [c.label, c.description]), [['session 3', 'AES-256-CBC · encrypt']]);
    assert.equal(roots[4]!.children!.length, 1);
  });

  it('a failed lab shows the reason and no device nodes', () => {
    const roots = buildTree(status({ state: 'failed', reason: 'backend died (exit 1)' }), []);
    assert.equal(roots[0]!.contextValue, 'vm-failed');
    assert.equal(roots[0]!.tooltip, 'backend died (exit 1)');
    assert.deepEqual(roots.map((n) => n.id), ['vm', 'chats']);
  });

  it('cuts labels to a tree row and lists at most 64 sessions (the reader already capped the snapshot)', () => {
    const sessions = Array.from({ length: 500 }, (_, i) => ({ id: String(i), algorithm: 'a'.repeat(256), direction: 'decrypt' as const, requests: 0, createdAtMs: 0 }));
    const roots = buildTree(status({ backend: { kind: 'ts', telemetry: backendSnapshot({ engine: { name: 'e'.repeat(256), reason: 'r'.repeat(4096) }, sessions }) } }), []);
    const backend = roots.find((n) => n.id === 'backend')!;
    assert.ok(backend.children!.every((c) => (c.description ?? '').length <= 120));
    const list = roots.find((n) => n.id === 'sessions')!;
    assert.equal(list.description, '500');
    assert.equal(list.children!.length, 64);
    assert.ok(list.children!.every((c) => (c.description ?? '').length <= 120));
  });

  it('a ts backend that does not answer shows so', () => {
    const backend = buildTree(status({ backend: { kind: 'ts', pid: 20, telemetry: null } }), []).find((n) => n.id === 'backend')!;
    assert.ok(backend.children!.some((c) => c.label === 'telemetry' && c.description === 'not answering'));
  });
});
