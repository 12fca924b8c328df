import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { benchChartSvg } from '../../../../../extension/vscode/benchmark/chart';
import { groupsFromBenchJson } from '../../../../../extension/vscode/benchmark/run';

describe('benchmark chart', () => {
  it('turns vlab bench backend --json into measured/reference pairs', () => {
    const groups = groupsFromBenchJson({ engine: 'openssl', cipher: 'AES-256-CBC', rows: [{ size: 64, depth: 1, mbPerSec: 4.2, rawEngineMbPerSec: 15.6, ratio: 0.27 }] });
    assert.equal(groups.length, 1);
    assert.deepEqual(groups[0]!.bars.map((b) => [b.value, b.reference === true]), [[4.2, false], [15.6, true]]);
    assert.match(groups[0]!.label, /AES-256-CBC 64 B, queue depth 1/);
  });

  it('draws bars proportional to the values, reference styled apart, text escaped', () => {
    const svg = benchChartSvg([{ label: '<script>alert(1)</script>', unit: 'MB/s', bars: [{ label: 'a', value: 50 }, { label: 'b', value: 100, reference: true }] }]);
    assert.ok(!svg.includes('<script>'));
    assert.ok(svg.includes('&lt;script&gt;'));
    const widths = [...svg.matchAll(/class="bar (bar-\w+)"[^>]*width="([\d.]+)"/g)].map((m) => [m[1], Number(m[2])]);
    assert.deepEqual(widths, [['bar-measured', 190], ['bar-reference', 380]]);
  });

  it('unknown JSON gives no groups rather than a wrong chart', () => {
    assert.deepEqual(groupsFromBenchJson({ hello: 'world' }), []);
    assert.deepEqual(groupsFromBenchJson(null), []);
  });
});
