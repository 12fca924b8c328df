// The lab's import arrows point down: lab.ts composes host/, qemu/, guest/ and common/ and knows nothing
// of our guest driver (driver/) or the demo (demo/); driver/ takes what it needs, not the Lab; the
// low folders never reach up to the driver or the demo (extension/lab/with-driver.ts composes them).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../../../repo-root';

const LAB = join(REPO, 'extension', 'lab');
const importsOf = (file: string): string[] => [...readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!);

test('lab.ts imports nothing of driver/ or demo/', () => {
  assert.deepEqual(importsOf(join(LAB, 'lab.ts')).filter((s) => s.startsWith('./driver') || s.startsWith('./demo')), []);
});

test('driver/, host/, qemu/, guest/ and common/ do not import lab.ts; host/, qemu/, guest/ and common/ do not import driver/ or demo/', () => {
  for (const folder of ['driver', 'host', 'qemu', 'guest', 'common']) {
    for (const name of readdirSync(join(LAB, folder)).filter((n) => n.endsWith('.ts'))) {
      const bad = importsOf(join(LAB, folder, name)).filter((s) => s === '../lab' || (folder !== 'driver' && (s.startsWith('../driver') || s.startsWith('../demo'))));
      assert.deepEqual(bad, [], `${folder}/${name}`);
    }
  }
});
