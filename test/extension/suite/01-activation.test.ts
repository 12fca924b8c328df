import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as vscode from 'vscode';
import { CommandId } from '../../../extension/vscode/command-ids';
import { buildTree } from '../../../extension/vscode/tree-model';
import { api, EXTENSION_ID, measured } from './helpers';

describe('activation', () => {
  it('activates, reports its activation time and registers every contributed command', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const wasActive = ext.isActive;
    const t0 = performance.now();
    const lab = await api();
    const total = performance.now() - t0;
    assert.ok(lab.lab, 'a workspace folder is open, so the lab controller exists');
    measured(`activation: activate() body ${lab.activationMs.toFixed(1)} ms${wasActive ? '' : `; ext.activate() incl. loading the bundle ${total.toFixed(1)} ms`}`);
    const manifest = JSON.parse(readFileSync(join(ext.extensionPath, 'package.json'), 'utf8')) as { contributes: { commands: { command: string; category: string }[] } };
    const contributed = manifest.contributes.commands.map((c) => c.command).sort();
    assert.deepEqual(contributed, Object.values(CommandId).sort(), 'package.json and command-ids.ts declare the same commands');
    assert.ok(manifest.contributes.commands.every((c) => c.category === 'VirtIO Lab'), 'one category');
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = contributed.filter((c) => !registered.has(c));
    assert.deepEqual(missing, [], 'every contributed command is registered');
  });

  it('shows the welcome content (an empty tree) while the lab is stopped', async () => {
    const lab = await api();
    const status = await lab.lab!.refresh();
    assert.equal(status.state, 'stopped');
    assert.deepEqual(lab.tree.getChildren(), []);
    assert.deepEqual(buildTree(status, []), []);
  });

  it('refuses guest commands with a clear error while the VM is stopped (no terminal opens)', async () => {
    const lab = await api();
    const before = lab.guestTerminals.length;
    await vscode.commands.executeCommand(CommandId.openTerminal);
    assert.equal(lab.guestTerminals.length, before);
  });

  it('Run Benchmark shows the backend beside the reference measured in the same run', async function () {
    this.timeout(120_000);
    const lab = await api();
    await vscode.workspace.getConfiguration('vlab').update('benchmark.secondsPerCase', 0.2, vscode.ConfigurationTarget.Workspace);
    await vscode.commands.executeCommand(CommandId.runBenchmark);
    const panel = lab.benchmark();
    assert.ok(panel, 'the benchmark panel opened');
    assert.ok(panel.groups.length >= 4, `one group per case (${panel.groups.length})`);
    for (const g of panel.groups) {
      assert.equal(g.bars.length, 2);
      assert.ok(g.bars.some((b) => b.reference) && g.bars.some((b) => !b.reference), 'measured and reference side by side');
      assert.ok(g.bars.every((b) => b.value > 0), `${g.label}: positive throughput`);
    }
    panel.dispose();
  });
});
