import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CommandId } from '../../../extension/vscode/command-ids';

const root = join(__dirname, '..', '..', '..', '..');
interface Manifest {
  main: string;
  contributes: {
    commands: { command: string }[];
    menus: Record<string, { command: string; when?: string }[]>;
    viewsWelcome: { contents: string }[];
    viewsContainers: { activitybar: { icon: string }[] };
    walkthroughs: { steps: { description: string; media: { markdown: string } }[] }[];
    configuration: { properties: Record<string, unknown> };
  };
}
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
const contributed = new Set(manifest.contributes.commands.map((c) => c.command));

describe('extension manifest', () => {
  it('every command in menus, welcome content and walkthrough links is contributed (or built in)', () => {
    for (const [menu, entries] of Object.entries(manifest.contributes.menus)) {
      for (const e of entries) assert.ok(contributed.has(e.command), `${menu}: ${e.command}`);
    }
    const texts = [...manifest.contributes.viewsWelcome.map((v) => v.contents), ...manifest.contributes.walkthroughs.flatMap((w) => w.steps.map((s) => s.description))];
    for (const text of texts) {
      for (const m of text.matchAll(/\(command:([\w.]+)/g)) {
        const id = m[1]!;
        assert.ok(contributed.has(id) || /^(workbench|vscode)\./.test(id), `link to ${id}`);
      }
    }
    assert.deepEqual([...contributed].sort(), Object.values(CommandId).sort());
  });

  it('icons and walkthrough media exist', () => {
    for (const c of manifest.contributes.viewsContainers.activitybar) assert.ok(existsSync(join(root, c.icon)), c.icon);
    for (const s of manifest.contributes.walkthroughs.flatMap((w) => w.steps)) assert.ok(existsSync(join(root, s.media.markdown)), s.media.markdown);
  });

  it('every setting the extension reads is declared under vlab.', () => {
    const source = readFileSync(join(root, 'extension', 'vscode', 'settings.ts'), 'utf8');
    const read = [...source.matchAll(/c\.get(?:<[^>]+>)?\('([\w.]+)'/g)].map((m) => `vlab.${m[1]}`);
    assert.ok(read.length >= 10);
    for (const key of read) assert.ok(key in manifest.contributes.configuration.properties, key);
  });
});
