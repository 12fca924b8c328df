/**
 * compile_commands.json for guest/driver: the exact command lines kbuild compiled each driver file with
 * (read back from the `.<file>.o.cmd` files it leaves in the build folder), made readable by clangd 14
 * (gcc-only options dropped or mapped) and pointed at the driver's real sources instead of the staged
 * copies. Written next to the sources, where clangd looks for it (guest/driver/compile_commands.json,
 * git-ignored).
 */
import { existsSync, readdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { errorMessage } from '../common/errors';

/** One entry of clang's JSON compilation database. */
export interface CompileCommand {
  readonly directory: string;
  readonly file: string;
  readonly arguments: readonly string[];
  readonly output?: string;
}

/** What a kbuild `.<object>.cmd` file says: the object, its source and the command that made it. */
export interface KbuildCommand {
  readonly object: string;
  readonly source: string | undefined;
  readonly command: string;
}

export const COMPILE_COMMANDS_FILE = 'compile_commands.json';

/**
 * Reads `cmd_OBJ := COMMAND` (`savedcmd_` since Linux 6.2) and `source_OBJ := FILE` from a kbuild .cmd
 * file; undefined for files that are not a compile (links, modpost).
 */
export function parseKbuildCmdFile(text: string): KbuildCommand | undefined {
  const cmd = /^(?:saved)?cmd_(\S+) := (.*)$/m.exec(text);
  if (!cmd) return undefined;
  const object = cmd[1]!;
  const source = new RegExp(`^source_${escapeRegExp(object)} := (\\S+)`, 'm').exec(text)?.[1];
  return { object, source, command: cmd[2]! };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The words of the first command in a .cmd line: make's escaping undone (`$$` -> `$`, `\#` -> `#`),
 * then split the way sh would (quotes, backslashes); stops at the first unquoted `;`, `&&`, `||` or `|`
 * (kbuild appends objtool and friends that way).
 */
export function shellWords(line: string): string[] {
  const text = line.replace(/\$\$/g, '$').replace(/\\#/g, '#');
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unbalanced ' in: ${line.slice(0, 80)}`);
      word += text.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && /["\\$`]/.test(text[j + 1] ?? '')) j++;
        word += text[j];
      }
      if (j >= text.length) throw new Error(`unbalanced " in: ${line.slice(0, 80)}`);
      inWord = true;
      i = j;
    } else if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (c === ';' || c === '|' || (c === '&' && text[i + 1] === '&')) {
      break;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/**
 * gcc options clang 14 rejects ("unknown argument" and friends: clangd then reports an error on line 1
 * of every file). Each was seen failing in `clangd --check` (Debian 12's clangd 14); Debian's 6.1 and
 * 6.12 kernels use the first group. They steer code generation only, so dropping them changes no macro
 * and no header clangd resolves. A name ending in `=`, `,` or `-` is a prefix. Warning options clang does
 * not know need no entry: clangd ignores them.
 */
const GCC_ONLY: readonly string[] = [
  '-fconserve-stack', '-fno-allow-store-data-races', '-mrecord-mcount', '-mindirect-branch=',
  '-mindirect-branch-register', '-mindirect-branch-cs-prefix', '-mfunction-return=', '-ftrivial-auto-var-init=zero',
  // other kernel configurations and newer kernels
  '-fzero-call-used-regs=', '-fmin-function-alignment=', '-fstrict-flex-arrays=', '-mstack-protector-guard-symbol=',
  '-fno-ipa-', '-fipa-', '-fno-tree-loop-', '-fno-code-hoisting', '-fno-partial-inlining', '-fno-var-tracking-assignments',
  '-fsanitize=bounds-strict', '-fasan-shadow-offset=', '-fdiagnostics-show-context',
  // dependency files: clangd must not write .d files into the build folder
  '-Wp,-MMD,', '-Wp,-MD,',
];

function gccOnly(arg: string): boolean {
  return GCC_ONLY.some((o) => (/[=,-]$/.test(o) ? arg.startsWith(o) : arg === o));
}

/** gcc spellings clang takes in another form (the ones the kernel's Makefile itself picks for clang). */
function mapped(arg: string): string {
  const stack = /^-mpreferred-stack-boundary=(\d+)$/.exec(arg);
  if (stack) return `-mstack-alignment=${2 ** Number(stack[1])}`;
  if (/^-Wimplicit-fallthrough=\d$/.test(arg)) return '-Wimplicit-fallthrough';
  return arg;
}

/** A gcc command line as clang 14 reads it: gcc-only options dropped, a few mapped. */
export function clangArguments(gccArgs: readonly string[]): string[] {
  return gccArgs.filter((a) => !gccOnly(a)).map(mapped);
}

/** The output file of a compile (`-o FILE`). */
function outputOf(args: readonly string[]): string | undefined {
  const at = args.indexOf('-o');
  return at >= 0 ? args[at + 1] : undefined;
}

/**
 * The database entries for the driver: one per `.<name>.o.cmd` in `buildDir` whose source is a .c file
 * that also exists in `sourceDir` (the generated .mod.c is left out). kbuild ran the commands from the
 * kernel's build folder (`make -C kernelDir`), so that is their directory.
 */
export function kbuildCompileCommands(buildDir: string, kernelDir: string, sourceDir: string): CompileCommand[] {
  const directory = existsSync(kernelDir) ? realpathSync(kernelDir) : kernelDir;
  const entries: CompileCommand[] = [];
  for (const name of readdirSync(buildDir).sort()) {
    if (!/^\..+\.o\.cmd$/.test(name)) continue;
    const cmd = parseKbuildCmdFile(readFileSync(join(buildDir, name), 'utf8'));
    if (!cmd) continue;
    const words = shellWords(cmd.command);
    const source = cmd.source ?? words.filter((w) => w.endsWith('.c')).pop();
    if (!source?.endsWith('.c') || !words.includes('-c')) continue;
    const file = join(sourceDir, basename(source));
    if (!existsSync(file)) continue;
    const args = clangArguments(words).map((w) => (w === source ? file : w));
    entries.push({ directory, file, arguments: args, output: outputOf(args) });
  }
  return entries;
}

/** Writes the database into `sourceDir`: replaced atomically, left alone when unchanged (clangd re-indexes on change). */
export function writeCompileCommands(sourceDir: string, entries: readonly CompileCommand[]): string {
  const file = join(sourceDir, COMPILE_COMMANDS_FILE);
  const text = `${JSON.stringify(entries, null, 2)}\n`;
  if (existsSync(file) && readFileSync(file, 'utf8') === text) return file;
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
  return file;
}

/**
 * After a build: the database from what kbuild left in `buildDir`, written next to the sources. Never
 * fails the build: a read-only checkout or an unreadable .cmd file comes back as the reason it was skipped.
 */
export function updateCompileCommands(buildDir: string, kernelDir: string, sourceDir: string): { readonly file?: string; readonly skipped?: string } {
  try {
    const entries = kbuildCompileCommands(buildDir, kernelDir, sourceDir);
    if (entries.length === 0) return { skipped: `no kbuild command files in ${buildDir}` };
    return { file: writeCompileCommands(sourceDir, entries) };
  } catch (err) {
    return { skipped: errorMessage(err) };
  }
}
