import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_UP_OPTIONS } from '../../../../extension/lab/up-options';
import { CommandId } from '../../../../extension/vscode/command-ids';
import { REPO } from '../../../repo-root';

const root = REPO;
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

describe('settings and CLI defaults agree', () => {
  // Each VS Code setting that feeds `vlab up` and the CLI option it mirrors (extension/lab/up-options.ts).
  const props = manifest.contributes.configuration.properties as Record<string, { default?: unknown }>;
  const pairs: [setting: string, cli: keyof typeof DEFAULT_UP_OPTIONS, scale: number][] = [
    ['vlab.backend', 'backend', 1], ['vlab.engine', 'engine', 1], ['vlab.accelerator', 'accel', 1],
    ['vlab.guestDriver', 'guestDriver', 1], ['vlab.memoryMb', 'memoryMb', 1], ['vlab.cpus', 'cpus', 1],
    ['vlab.bootTimeoutSec', 'bootTimeoutMs', 1000],
  ];
  for (const [setting, cli, scale] of pairs) {
    it(`${setting} defaults to the CLI's ${cli}`, () => {
      const declared = props[setting]?.default;
      const expected = DEFAULT_UP_OPTIONS[cli];
      assert.equal(typeof expected === 'number' ? Number(declared) * scale : declared, expected);
    });
  }
  it('numeric settings read with a literal fallback fall back to package.json\'s default, within its bounds', () => {
    const source = readFileSync(join(root, 'extension', 'vscode', 'settings.ts'), 'utf8');
    const read = [...source.matchAll(/clampInt\(c\.get\('([\w.]+)'\), (\d+), (\d+), (\d+)\)/g)];
    assert.ok(read.length >= 2, 'settings.ts reads rings.refreshMs and statusRefreshMs with clampInt');
    for (const [, key, min, max, fallback] of read) {
      const declared = manifest.contributes.configuration.properties[`vlab.${key!}`] as { default?: number; minimum?: number; maximum?: number };
      assert.deepEqual([Number(fallback), Number(min), Number(max)], [declared.default, declared.minimum, declared.maximum], `vlab.${key!}: fallback, minimum, maximum`);
    }
  });
  it('the guest driver default gives the guest /dev/crypto (chats go through the device)', () => {
    assert.equal(props['vlab.guestDriver']?.default, 'lab');
  });
});
