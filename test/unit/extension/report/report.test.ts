/**
 * The design report's figures: every SVG docs/report.md embeds exists and is byte-for-byte what the
 * generator draws from the committed results in docs/report/data/ (so a figure cannot drift from its
 * data or be edited by hand), the generator is deterministic, and every result file says where it came from.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DATA_FILES } from '../../../../extension/report/data';
import { REPORT_DATA_DIR, REPORT_FIGURES_DIR, buildFigures, buildTables, embeddedFigures, writeFigures } from '../../../../extension/report/generate';
import { spliceGenerated } from '../../../../extension/report/tables';
import { parseCpuinfo } from '../../../../extension/report/provenance';
import { fmtNum, lineChart, wrap } from '../../../../extension/report/svg';
import { REPO } from '../../../repo-root';

const root = REPO;
const reportPath = join(root, 'docs', 'report.md');
const dataDir = join(root, REPORT_DATA_DIR);

test('every figure docs/report.md embeds exists and equals what the generator draws from the committed data', () => {
  const embedded = embeddedFigures(readFileSync(reportPath, 'utf8'));
  assert.ok(embedded.length >= 4, `report embeds ${embedded.length} figures, expected at least 4`);
  const generated = new Map(buildFigures(dataDir).map((f) => [f.file, f.svg]));
  for (const rel of embedded) {
    const onDisk = join(root, 'docs', rel);
    assert.ok(existsSync(onDisk), `${rel} is embedded but does not exist`);
    const name = rel.split('/').at(-1) ?? rel;
    assert.ok(rel.startsWith('report/figures/'), `${rel} must live in docs/report/figures/`);
    const fresh = generated.get(name);
    assert.ok(fresh !== undefined, `${rel} is not produced by the generator from docs/report/data/`);
    assert.equal(readFileSync(onDisk, 'utf8'), fresh, `${rel} differs from the generator's output: run \`vlab report\``);
  }
});

test('every committed result has a figure in the report, and every figure file is one the generator makes', () => {
  const embedded = new Set(embeddedFigures(readFileSync(reportPath, 'utf8')).map((r) => r.split('/').at(-1)));
  for (const f of buildFigures(dataDir)) assert.ok(embedded.has(f.file), `${f.file} is generated but the report does not embed it`);
  const made = new Set(buildFigures(dataDir).map((f) => f.file));
  for (const file of readdirSync(join(root, REPORT_FIGURES_DIR))) assert.ok(made.has(file), `stray figure ${file} (not generated from data)`);
});

test('the number tables in docs/report.md are exactly what the generator makes from the committed data', () => {
  const md = readFileSync(reportPath, 'utf8');
  const tables = buildTables(dataDir);
  for (const name of tables.keys()) assert.ok(md.includes(`<!-- generated:${name} -->`), `report has no generated:${name} block`);
  assert.equal(md, spliceGenerated(md, tables), 'a generated table differs from the data: run `vlab report`');
});

test('spliceGenerated replaces only the named blocks', () => {
  const md = 'a\n<!-- generated:x -->\nold\n<!-- /generated:x -->\nb\n<!-- generated:y -->\nkeep\n<!-- /generated:y -->\n';
  assert.equal(spliceGenerated(md, new Map([['x', 'new']])), 'a\n<!-- generated:x -->\nnew\n<!-- /generated:x -->\nb\n<!-- generated:y -->\nkeep\n<!-- /generated:y -->\n');
});

test('every committed result states date, load average, commit, machine and accelerator', () => {
  for (const file of Object.values(DATA_FILES)) {
    const v = JSON.parse(readFileSync(join(dataDir, file), 'utf8')) as { provenance: Record<string, unknown> };
    const p = v.provenance;
    assert.match(String(p['date']), /^\d{4}-\d\d-\d\dT/, file);
    assert.equal((p['loadAverage'] as unknown[]).length, 3, file);
    assert.match(String(p['commit']), /^[0-9a-f]{40}$/, file);
    const m = p['machine'] as Record<string, unknown>;
    assert.ok(typeof m['cpuModel'] === 'string' && Number(m['cores']) > 0, file);
    const a = p['accelerator'] as Record<string, unknown>;
    assert.ok((a['kind'] === 'tcg' || a['kind'] === 'kvm') && String(a['why']).length > 10, file);
  }
});

test('the generator is deterministic: two runs into fresh folders give identical bytes', () => {
  const a = mkdtempSync(join(tmpdir(), 'vlab-report-a-'));
  const b = mkdtempSync(join(tmpdir(), 'vlab-report-b-'));
  try {
    const fa = writeFigures(dataDir, a);
    const fb = writeFigures(dataDir, b);
    assert.deepEqual(fa.map((f) => f.file), fb.map((f) => f.file));
    for (const f of fa) assert.equal(readFileSync(join(a, f.file), 'utf8'), readFileSync(join(b, f.file), 'utf8'));
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});

test('a changed number in the data changes the figure (the comparison can fail)', () => {
  const spec = { title: 't', xLabel: 'x', yLabel: 'y', categories: ['a', 'b'], logY: true, footer: ['f'] };
  const one = lineChart({ ...spec, series: [{ label: 's', color: '#000', values: [10, 100] }] });
  const two = lineChart({ ...spec, series: [{ label: 's', color: '#000', values: [10, 101] }] });
  assert.notEqual(one, two);
});

test('chart text helpers: numbers, wrapping, escaping, cpuinfo', () => {
  assert.equal(fmtNum(0), '0');
  assert.equal(fmtNum(1234), '1.23k');
  assert.equal(fmtNum(52433), '52.4k');
  assert.equal(fmtNum(2_500_000), '2.5M');
  assert.equal(fmtNum(0.5), '0.5');
  assert.deepEqual(wrap('aa bb cc', 5), ['aa bb', 'cc']);
  const svg = lineChart({ title: 'a<b & "c"', xLabel: 'x', yLabel: 'y', categories: ['1'], series: [], logY: false, footer: [] });
  assert.ok(svg.includes('a&lt;b &amp; &quot;c&quot;') && !svg.includes('a<b'));
  assert.deepEqual(parseCpuinfo('processor\t: 0\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n'), { cpuModel: 'AMD EPYC', cores: 2 });
});
