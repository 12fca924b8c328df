/**
 * The driver's problems as file:line records, read from the text of the two tools that report them:
 * gcc (through kbuild) and checkpatch.pl. Text in, records out, nothing else: the CLI prints them
 * (`Diagnostic`), the extension shows them in the Problems panel (`Problem`).
 */
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

/** A compiler error or warning as the CLI reports it (DriverError, `vlab driver build`). */
export interface Diagnostic {
  readonly file: string;
  readonly line: number;
  readonly column?: number;
  readonly severity: 'error' | 'warning';
  readonly message: string;
}

export type ProblemSeverity = 'error' | 'warning' | 'info';

/** Another place a problem points at: gcc's notes, or where gcc reported a problem moved into the sources. */
export interface RelatedLocation {
  readonly file: string;
  readonly line: number;
  readonly column?: number;
  readonly message: string;
}

/** One finding for the Problems panel. */
export interface Problem {
  readonly source: 'gcc' | 'checkpatch';
  readonly file: string;
  readonly line: number;
  readonly column?: number;
  readonly severity: ProblemSeverity;
  readonly message: string;
  /** gcc's warning option (`-Wunused-variable`) or checkpatch's type (`LONG_LINE`). */
  readonly code?: string;
  readonly related: readonly RelatedLocation[];
}

/** Where gcc ran and where its paths point: staged copies are mapped back to the sources. */
export interface CompilerPaths {
  /** The folder kbuild compiled the staged copies in. */
  readonly stagedDir: string;
  /** The driver's sources (what the user edits). */
  readonly sourceDir: string;
  /** Relative paths in the output are relative to this folder (kbuild: the kernel's build folder). */
  readonly cwd?: string;
}

const GCC_LINE = /^(.+?):(\d+):(?:(\d+):)? (error|warning|fatal error|note): (.*)$/;
const INCLUDED_FROM = /^(?:In file included from|\s+from) (.+?):(\d+)(?::(\d+))?[,:]$/;

interface GccLine {
  readonly file: string;
  readonly line: number;
  readonly column: number | undefined;
  readonly kind: 'error' | 'warning' | 'note';
  readonly message: string;
}

function mapPath(file: string, p: CompilerPaths): string {
  const abs = isAbsolute(file) || !p.cwd ? file : resolve(p.cwd, file);
  return isInside(abs, p.stagedDir) ? join(p.sourceDir, relative(p.stagedDir, abs)) : abs;
}

function isInside(file: string, dir: string): boolean {
  return file === dir || file.startsWith(dir.endsWith(sep) ? dir : `${dir}${sep}`);
}

function gccLine(text: string, p: CompilerPaths): GccLine | undefined {
  const m = GCC_LINE.exec(text.trim());
  if (!m) return undefined;
  const kind = m[4] === 'note' ? 'note' : m[4] === 'warning' ? 'warning' : 'error';
  return { file: mapPath(m[1]!, p), line: Number(m[2]), column: m[3] ? Number(m[3]) : undefined, kind, message: m[5]! };
}

/** gcc's "file:line:col: error: text" lines, with staged paths mapped back to the sources. */
export function parseDiagnostics(output: string, stagedDir: string, sourceDir: string): Diagnostic[] {
  const found: Diagnostic[] = [];
  for (const text of output.split('\n')) {
    const g = gccLine(text, { stagedDir, sourceDir });
    if (!g || g.kind === 'note') continue;
    found.push({ file: g.file, line: g.line, column: g.column, severity: g.kind, message: g.message });
  }
  return found;
}

export function formatDiagnostic(d: Diagnostic, cwd: string): string {
  const file = d.file.startsWith('/') ? relative(cwd, d.file) : d.file;
  return `${file}:${d.line}${d.column ? `:${d.column}` : ''}: ${d.severity}: ${d.message}`;
}

interface OpenProblem {
  at: GccLine;
  includedFrom: RelatedLocation[];
  notes: RelatedLocation[];
}

/**
 * A problem gcc reports inside a kernel header (a macro's definition, an included file) is shown where
 * the driver's sources are involved: the last note in `sourceDir` (the macro's use), else the first
 * "included from" line in `sourceDir`. Where gcc put it stays as related information.
 */
function anchored(open: OpenProblem, sourceDir: string): Problem {
  const { at } = open;
  const warning = /^(.*?) \[(-W[^\]]+)\]$/.exec(at.message);
  const message = warning ? warning[1]! : at.message;
  const code = warning?.[2]?.replace(/^-Werror=/, '-W');
  const base = { source: 'gcc' as const, severity: at.kind === 'warning' ? 'warning' as const : 'error' as const, message, code };
  const here: RelatedLocation = { file: at.file, line: at.line, column: at.column, message: 'reported here' };
  if (!isInside(at.file, sourceDir)) {
    const use = [...open.notes].reverse().find((n) => isInside(n.file, sourceDir)) ?? open.includedFrom.find((n) => isInside(n.file, sourceDir));
    if (use) return { ...base, file: use.file, line: use.line, column: use.column, related: [here, ...open.notes.filter((n) => n !== use)] };
  }
  return { ...base, file: at.file, line: at.line, column: at.column, related: open.notes };
}

/** gcc's errors and warnings (kbuild's make output) with their notes, anchored in the driver's sources. */
export function parseCompilerProblems(output: string, p: CompilerPaths): Problem[] {
  const problems: Problem[] = [];
  let includes: RelatedLocation[] = [];
  let open: OpenProblem | undefined;
  const close = (): void => {
    if (open) problems.push(anchored(open, p.sourceDir));
    open = undefined;
  };
  for (const text of output.split('\n')) {
    const inc = INCLUDED_FROM.exec(text.trimEnd());
    if (inc) {
      if (/^In file/.test(text)) includes = [];
      includes.push({ file: mapPath(inc[1]!, p), line: Number(inc[2]), column: inc[3] ? Number(inc[3]) : undefined, message: 'included from here' });
      continue;
    }
    const g = gccLine(text, p);
    if (!g) continue;
    if (g.kind === 'note') {
      open?.notes.push({ file: g.file, line: g.line, column: g.column, message: g.message });
      continue;
    }
    close();
    open = { at: g, includedFrom: includes, notes: [] };
    includes = [];
  }
  close();
  return problems;
}

const CHECKPATCH_TERSE = /^(.+?):(\d+): (ERROR|WARNING|CHECK):(?:([A-Z0-9_]+):)? (.*)$/;
const CHECKPATCH_HEAD = /^(ERROR|WARNING|CHECK):(?:([A-Z0-9_]+):)? (.*)$/;
const CHECKPATCH_WHERE = /^#\d+: FILE: (.+?):(\d+):/;

function checkpatchSeverity(level: string): ProblemSeverity {
  return level === 'ERROR' ? 'error' : level === 'WARNING' ? 'warning' : 'info';
}

/**
 * checkpatch.pl's findings, from its --terse lines ("./f.c:12: WARNING:TYPE: text", what
 * scripts/checkpatch.sh prints) or its default two-line form ("WARNING:TYPE: text" then
 * "#12: FILE: f.c:12:"). Paths are relative to `dir`, where checkpatch ran.
 */
export function parseCheckpatchProblems(output: string, dir: string): Problem[] {
  const problems: Problem[] = [];
  let head: RegExpExecArray | undefined;
  const add = (file: string, line: number, level: string, type: string | undefined, message: string): void => {
    problems.push({ source: 'checkpatch', file: resolve(dir, file), line, severity: checkpatchSeverity(level), message, code: type, related: [] });
  };
  for (const text of output.split('\n')) {
    const terse = CHECKPATCH_TERSE.exec(text);
    if (terse) {
      add(terse[1]!, Number(terse[2]), terse[3]!, terse[4], terse[5]!);
      continue;
    }
    const h = CHECKPATCH_HEAD.exec(text);
    if (h) {
      head = h;
      continue;
    }
    const where = CHECKPATCH_WHERE.exec(text);
    if (where && head) {
      add(where[1]!, Number(where[2]), head[1]!, head[2], head[3]!);
      head = undefined;
    }
  }
  return problems;
}
