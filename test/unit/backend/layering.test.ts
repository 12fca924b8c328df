import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../../repo-root';

const root = REPO;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('layering', () => {
  it('the backend never imports from extension/ (the UI depends on the backend, not the reverse)', () => {
    const offenders = tsFiles(join(root, 'backend')).filter((f) => /from '(\.\.\/)+extension\//.test(readFileSync(f, 'utf8')));
    assert.deepEqual(offenders, []);
  });

  it('one telemetry parser: clients use the schema module, nobody keeps its own slot-state aliases', () => {
    const clients = ['extension/lab/telemetry-client.ts', 'extension/cli/rings-view.ts', 'extension/vscode/rings/frames.ts', 'extension/vscode/rings/telemetry-feed.ts', 'media/rings/grid.ts', 'media/rings/queue-view.ts'];
    for (const c of clients) {
      const src = readFileSync(join(root, c), 'utf8');
      assert.match(src, /telemetry[/-](schema|client)'/, `${c} imports the schema (or its client)`);
      assert.doesNotMatch(src, /'in-flight'|inflight|SLOT_ALIASES/, `${c} has no alias table`);
    }
  });
});
