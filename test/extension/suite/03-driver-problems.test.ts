// The driver's problems in the Problems panel, no VM: a temporary copy of guest/driver in the test
// workspace gets a deliberate compiler warning and a checkpatch finding; Build Driver puts both at their
// lines (vscode.languages.getDiagnostics); with vlab.driver.buildOnSave a save rebuilds and the
// warning follows its line; a compile error comes back as an error at its line.
import * as assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { CommandId } from '../../../extension/vscode/command-ids';
import type { DriverBuildSummary } from '../../../extension/vscode/driver-problems';
import { EXTENSION_ID, api, measured, waitFor } from './helpers';

const WARNING_LINE = 'static int vlab_deliberately_unused;';
const CHECKPATCH_LINE = '/* deliberate trailing whitespace */ ';

function diagnosticsAt(file: string, source: string, line: number): vscode.Diagnostic[] {
  return vscode.languages.getDiagnostics(vscode.Uri.file(file)).filter((d) => d.source === source && d.range.start.line === line);
}

describe('driver problems (Build Driver, no VM)', function () {
  this.timeout(300_000);
  const workspace = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
  const dir = join(workspace, 'guest', 'driver');
  const file = join(dir, 'vc_stats.c');
  /** 0-based lines of the two deliberate findings. */
  let warningAt = 0;

  before(async () => {
    await api();
    cpSync(join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'guest', 'driver'), dir, { recursive: true });
    const lines = readFileSync(file, 'utf8').split('\n');
    while (lines.at(-1) === '') lines.pop();
    lines.push('', WARNING_LINE, CHECKPATCH_LINE, '');
    writeFileSync(file, lines.join('\n'));
    warningAt = lines.indexOf(WARNING_LINE);
  });

  after(async () => {
    await vscode.workspace.getConfiguration('vlab').update('driver.buildOnSave', undefined, vscode.ConfigurationTarget.Workspace);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    rmSync(join(workspace, 'guest'), { recursive: true, force: true });
  });

  it('Build Driver shows a deliberate warning and a checkpatch finding in the Problems panel at their lines', async () => {
    const t0 = Date.now();
    const r = await vscode.commands.executeCommand<DriverBuildSummary>(CommandId.buildDriver);
    assert.ok(r, 'the command returned its summary');
    assert.equal(r.sourceDir, dir, "the workspace's guest/driver is built");
    assert.ok(r.ok, r.message);
    assert.equal(r.compileCommands, join(dir, 'compile_commands.json'));
    measured(`Build Driver (build + checkpatch): ${((Date.now() - t0) / 1000).toFixed(1)} s, ${r.warnings} warning(s), checkpatch ${r.checkpatch ?? 'skipped'}`);

    const [warning] = diagnosticsAt(file, 'gcc', warningAt);
    assert.ok(warning, `a gcc diagnostic at line ${warningAt + 1}: ${JSON.stringify(vscode.languages.getDiagnostics(vscode.Uri.file(file)))}`);
    assert.equal(warning.severity, vscode.DiagnosticSeverity.Warning);
    assert.match(warning.message, /vlab_deliberately_unused/);
    assert.equal(warning.code, '-Wunused-variable');

    if (r.checkpatch === undefined) {
      measured('checkpatch skipped (no linux-source): only the compiler warning was checked');
      return;
    }
    const [style] = diagnosticsAt(file, 'checkpatch', warningAt + 1);
    assert.ok(style, `a checkpatch diagnostic at line ${warningAt + 2}`);
    assert.equal(style.code, 'TRAILING_WHITESPACE');
    assert.equal(style.severity, vscode.DiagnosticSeverity.Error);
  });

  it('with vlab.driver.buildOnSave a save rebuilds and the warning moves with its line', async () => {
    await vscode.workspace.getConfiguration('vlab').update('driver.buildOnSave', true, vscode.ConfigurationTarget.Workspace);
    const doc = await vscode.workspace.openTextDocument(file);
    await vscode.window.showTextDocument(doc);
    const edit = new vscode.WorkspaceEdit();
    edit.insert(doc.uri, new vscode.Position(0, 0), '\n\n');
    assert.ok(await vscode.workspace.applyEdit(edit));
    const t0 = Date.now();
    assert.ok(await doc.save(), 'saved');
    await waitFor(`the warning at line ${warningAt + 3} after the save`, () => diagnosticsAt(file, 'gcc', warningAt + 2).length > 0, 180_000, 250);
    assert.equal(diagnosticsAt(file, 'gcc', warningAt).length, 0, 'the old position is gone');
    measured(`build on save: the Problems panel followed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  it('a compile error fails Build Driver with an error diagnostic at its line', async () => {
    const lines = readFileSync(file, 'utf8').split('\n');
    const at = lines.indexOf(WARNING_LINE);
    lines[at] = 'static int vlab_deliberately_broken = ;';
    writeFileSync(file, lines.join('\n'));
    const r = await vscode.commands.executeCommand<DriverBuildSummary>(CommandId.buildDriver);
    assert.ok(r && !r.ok, 'the build failed');
    assert.ok(r.errors >= 1, r.message);
    const [error] = diagnosticsAt(file, 'gcc', at);
    assert.ok(error, `a gcc error at line ${at + 1}`);
    assert.equal(error.severity, vscode.DiagnosticSeverity.Error);
  });
});
