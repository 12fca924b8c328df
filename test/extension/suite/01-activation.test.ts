import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';

describe('activation', () => {
  it('activates and registers the lab commands', async () => {
    const ext = vscode.extensions.getExtension('virtio-crypto-lab.virtio-crypto-lab');
    assert.ok(ext, 'extension is loaded');
    await ext.activate();
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('vlab.startVm'));
  });
});
