/**
 * The architecture is checked by the compiler's view of the code, not by a grep: every import, export-from,
 * `import()`, `require()` and `import('…')` type of every source file in tsconfig.json is resolved with
 * TypeScript's own module resolution. The rooms and the arrows between them are read from
 * docs/architecture.md (the ```rooms block); the test fails on an import cycle between files, on an arrow
 * the doc does not allow, on a source file in no room, on a room that does not exist, and on a source file
 * in backend/ or extension/ over the size limit without a reason in the doc's large-files list.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import * as ts from 'typescript';
import { REPO } from '../../repo-root';

const DOC = join(REPO, 'docs', 'architecture.md');
const MAX_LINES = 450;

interface Rooms { readonly rooms: Map<string, Set<string>>; readonly largeFiles: Set<string> }

/** The ```rooms block: `ROOM -> A, B` per line (`-> —` for none); the ```large-files block: `PATH — reason`. */
function readDoc(): Rooms {
  const text = readFileSync(DOC, 'utf8');
  const block = (name: string): string[] => {
    const m = new RegExp('```' + name + '\\n([\\s\\S]*?)```').exec(text);
    assert.ok(m, `docs/architecture.md has a \`\`\`${name} block`);
    return m[1]!.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  };
  const rooms = new Map<string, Set<string>>();
  for (const line of block('rooms')) {
    const m = /^(\S+)\s+->\s+(.*)$/.exec(line);
    assert.ok(m, `rooms line "${line}" reads ROOM -> A, B`);
    const to = m[2]!.trim() === '—' ? [] : m[2]!.split(',').map((s) => s.trim()).filter(Boolean);
    rooms.set(m[1]!, new Set(to));
  }
  const largeFiles = new Set(block('large-files').map((l) => l.split(/\s+/)[0]!));
  return { rooms, largeFiles };
}

function program(): { files: string[]; options: ts.CompilerOptions } {
  const parsed = ts.getParsedCommandLineOfConfigFile(join(REPO, 'tsconfig.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
  });
  assert.ok(parsed);
  return { files: parsed.fileNames.map((f) => relative(REPO, f)).filter((f) => !f.startsWith('test/')), options: parsed.options };
}

/** Every module specifier a file names, found by walking its syntax tree. */
function specifiers(file: string): string[] {
  const sf = ts.createSourceFile(file, readFileSync(join(REPO, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) out.push(n.moduleSpecifier.text);
    else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference) && ts.isStringLiteral(n.moduleReference.expression)) out.push(n.moduleReference.expression.text);
    else if (ts.isCallExpression(n) && (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === 'require')) && n.arguments[0] && ts.isStringLiteralLike(n.arguments[0])) out.push(n.arguments[0].text);
    else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) out.push(n.argument.literal.text);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** file -> the project files it imports (packages and node: modules left out). */
function importGraph(): Map<string, Set<string>> {
  const { files, options } = program();
  const graph = new Map<string, Set<string>>();
  for (const file of files) {
    const to = new Set<string>();
    for (const spec of specifiers(file)) {
      const r = ts.resolveModuleName(spec, join(REPO, file), options, ts.sys).resolvedModule;
      if (!r || r.isExternalLibraryImport) continue;
      const target = relative(REPO, r.resolvedFileName);
      if (!target.startsWith('..') && !target.includes('node_modules')) to.add(target);
    }
    graph.set(file, to);
  }
  return graph;
}

const roomOf = (rooms: Map<string, Set<string>>, file: string): string | undefined =>
  [...rooms.keys()].filter((r) => file === r || file.startsWith(`${r}/`)).sort((a, b) => b.length - a.length)[0];

/** Strongly connected components with more than one file (Tarjan), each as a list of files. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const found: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index); low.set(v, index); index++; stack.push(v); on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) { strong(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do { w = stack.pop()!; on.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1 || graph.get(v)?.has(v)) found.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) strong(v);
  return found;
}

describe('architecture (docs/architecture.md, checked through the compiler)', () => {
  const doc = readDoc();
  const graph = importGraph();

  it('the graph is real: the compiler resolves the imports of the composition roots', () => {
    assert.ok(graph.size > 100, `source files: ${graph.size}`);
    assert.ok(graph.get('backend/main.ts')?.has('backend/vhost-user-backend.ts'), 'backend/main.ts imports the backend');
    assert.ok([...graph.get('extension/cli/vlab.ts') ?? []].length > 0, 'the CLI entry imports its commands');
  });

  it('every room the doc names exists', () => {
    const missing = [...doc.rooms.keys(), ...[...doc.rooms.values()].flatMap((s) => [...s])].filter((r) => !existsSync(join(REPO, r)));
    assert.deepEqual([...new Set(missing)], [], 'rooms in docs/architecture.md that are not in the tree');
  });

  it('every source file is in a room', () => {
    assert.deepEqual([...graph.keys()].filter((f) => !roomOf(doc.rooms, f)), []);
  });

  it('no import cycle between source files', () => {
    assert.deepEqual(cycles(graph), []);
  });

  it('every arrow between rooms is one the doc allows', () => {
    const bad: string[] = [];
    for (const [from, targets] of graph) {
      const a = roomOf(doc.rooms, from);
      for (const to of targets) {
        const b = roomOf(doc.rooms, to);
        if (!a || !b || a === b || doc.rooms.get(a)!.has(b)) continue;
        bad.push(`${a} -> ${b} (${from} imports ${to})`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('no file in backend/ or extension/ over the limit without a reason in the doc', () => {
    const big = [...graph.keys()]
      .filter((f) => /^(backend|extension)\//.test(f) && statSync(join(REPO, f)).isFile())
      .map((f) => ({ f, lines: readFileSync(join(REPO, f), 'utf8').split('\n').length }))
      .filter(({ f, lines }) => lines > MAX_LINES && !doc.largeFiles.has(f))
      .map(({ f, lines }) => `${f}: ${lines} lines`);
    assert.deepEqual(big, []);
    const stale = [...doc.largeFiles].filter((f) => !existsSync(join(REPO, f)) || readFileSync(join(REPO, f), 'utf8').split('\n').length <= MAX_LINES);
    assert.deepEqual(stale, [], 'large-files entries that are gone or no longer large');
  });

  it('a test that cannot fail is a defect: a cycle and a forbidden arrow are caught', () => {
    const g = new Map([['a.ts', new Set(['b.ts'])], ['b.ts', new Set(['a.ts'])], ['c.ts', new Set<string>()]]);
    assert.deepEqual(cycles(g), [['a.ts', 'b.ts']]);
    assert.equal(roomOf(new Map([['backend', new Set<string>()], ['backend/virtio', new Set<string>()]]), 'backend/virtio/memory.ts'), 'backend/virtio');
  });
});
