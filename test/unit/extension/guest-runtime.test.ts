import * as assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { guestRuntime, visibleInGuest } from '../../../extension/vscode/guest-runtime';

describe('guest runtime location', () => {
  it('knows which host paths the guest sees (tmpfs over /tmp and /root, workspace shared)', () => {
    assert.equal(visibleInGuest('/work/repo', '/work/ws'), true);
    assert.equal(visibleInGuest('/tmp/x/ext', '/work/ws'), false);
    assert.equal(visibleInGuest('/root/ext', '/work/ws'), false);
    assert.equal(visibleInGuest('/rootfs/ext', '/work/ws'), true);
    assert.equal(visibleInGuest('/tmp/ws/ext', '/tmp/ws'), true, 'inside the shared workspace');
  });

  it('copies bin, out (no tests), the addon and production packages into the state folder once', () => {
    const base = mkdtempSync(join(tmpdir(), 'vlab-rt-'));
    try {
      const ext = join(base, 'ext');
      const ws = join(base, 'ws');
      const state = join(ws, '.vlab');
      for (const d of ['bin', 'out/chat', 'out/test/unit', 'addon/build/Release', 'node_modules/a', 'node_modules/b', 'node_modules/dev']) mkdirSync(join(ext, d), { recursive: true });
      mkdirSync(state, { recursive: true });
      writeFileSync(join(ext, 'package.json'), JSON.stringify({ dependencies: { a: '1' }, devDependencies: { dev: '1' } }));
      writeFileSync(join(ext, 'node_modules/a/package.json'), JSON.stringify({ dependencies: { b: '1' } }));
      writeFileSync(join(ext, 'node_modules/b/package.json'), '{}');
      writeFileSync(join(ext, 'node_modules/dev/package.json'), '{}');
      for (const f of ['bin/vlab.js', 'out/chat/peer.js', 'out/chat/peer.js.map', 'out/test/unit/x.test.js', 'addon/build/Release/vlab_addon.node']) writeFileSync(join(ext, f), 'x');
      const rt = guestRuntime(ext, ws, state);
      assert.equal(rt, join(state, 'runtime'));
      for (const f of ['bin/vlab.js', 'out/chat/peer.js', 'addon/build/Release/vlab_addon.node', 'node_modules/a/package.json', 'node_modules/b/package.json']) assert.ok(existsSync(join(rt, f)), f);
      for (const f of ['out/test', 'out/chat/peer.js.map', 'node_modules/dev']) assert.ok(!existsSync(join(rt, f)), `${f} left out`);
      assert.equal(guestRuntime(ext, ws, state), rt, 'second call reuses the copy');
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
