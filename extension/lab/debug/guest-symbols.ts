/**
 * What the running guest says about where its code is: the kernel release and build-id, `_text`
 * (KASLR), every loaded module's section addresses (/sys/module/NAME/sections/*) and build-id, and
 * /proc/kallsyms, read as root in one SSH command. Read fresh for every gdb session (a `vlab driver
 * reload` moves the module) and kept as a snapshot in the state folder, which an automatic crash dump
 * copies (after a panic the guest can no longer be asked).
 *
 * Everything here is written by the guest: names and addresses are checked before they go anywhere
 * near a gdb command line.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SshSession } from '../guest/ssh';
import { buildIdOfNotes } from './elf-read';
import { MAX_KALLSYMS_BYTES } from './kallsyms';

export interface GuestModule {
  readonly name: string;
  readonly buildId?: string;
  /** Section name -> address ("0xffffffffc0200000"). */
  readonly sections: Readonly<Record<string, string>>;
}

export interface GuestSymbols {
  readonly schema: 1;
  /** ISO time it was read. */
  readonly takenAt: string;
  /** `startedAt` of the lab boot it was read from (state.json): a snapshot of another boot is stale. */
  readonly boot?: string;
  readonly release: string;
  readonly kernelBuildId?: string;
  /** Address of the kernel's `_text` ("0xffffffff81000000" with nokaslr). */
  readonly textAddress?: string;
  readonly modules: readonly GuestModule[];
}

export interface GuestSymbolsRead {
  readonly info: GuestSymbols;
  /** /proc/kallsyms (all of it, or only the module lines when `modulesOnly`). */
  readonly kallsyms: string;
}

const SECTION_NAME = /^[A-Za-z0-9_.$-]{1,64}$/;
const MODULE_NAME = /^[A-Za-z0-9_]{1,64}$/;
const ADDRESS = /^0x[0-9a-f]{1,16}$/;
const MAX_MODULES = 2000;
const KALLSYMS_MARK = '@kallsyms';

export function isSectionName(s: string): boolean {
  return SECTION_NAME.test(s);
}

export function isAddress(s: string): boolean {
  return ADDRESS.test(s);
}

/** The guest-side script: every line tagged, the kallsyms text last. */
export function guestSymbolsScript(modulesOnly: boolean): string {
  return [
    'echo "@release $(uname -r)"',
    'echo "@kernel-notes $(od -An -v -tx1 /sys/kernel/notes 2>/dev/null | tr -d " \\n")"',
    'echo "@text $(grep -m1 -E \'^[0-9a-f]+ [Tt] _text$\' /proc/kallsyms)"',
    'grep -r . /sys/module/*/sections/ 2>/dev/null | sed "s/^/@sect /"',
    'for f in /sys/module/*/notes/.note.gnu.build-id; do [ -r "$f" ] && echo "@notes $f $(od -An -v -tx1 "$f" | tr -d " \\n")"; done',
    `echo ${KALLSYMS_MARK}`,
    modulesOnly ? "grep -F '[' /proc/kallsyms" : 'cat /proc/kallsyms',
  ].join('\n');
}

function hexBuildId(hex: string): string | undefined {
  if (!/^(?:[0-9a-f]{2}){1,4096}$/.test(hex)) return undefined;
  return buildIdOfNotes(Buffer.from(hex, 'hex'));
}

/** Parses the script's output (guest-written: bounded, checked line by line). */
export function parseGuestSymbols(output: string, takenAt: Date, boot?: string): GuestSymbolsRead {
  const mark = output.indexOf(`\n${KALLSYMS_MARK}\n`);
  const head = mark < 0 ? output : output.slice(0, mark);
  const kallsyms = mark < 0 ? '' : output.slice(mark + KALLSYMS_MARK.length + 2);
  if (kallsyms.length > MAX_KALLSYMS_BYTES) throw new RangeError('kallsyms from the guest is too large');
  let release = '';
  let kernelBuildId: string | undefined;
  let textAddress: string | undefined;
  const sections = new Map<string, Record<string, string>>();
  const buildIds = new Map<string, string>();
  for (const line of head.split('\n')) {
    const [tag, ...rest] = line.split(' ');
    if (tag === '@release') {
      const r = rest.join(' ').trim();
      if (/^[A-Za-z0-9._+~-]{1,128}$/.test(r)) release = r;
    } else if (tag === '@kernel-notes') {
      kernelBuildId = hexBuildId(rest.join(''));
    } else if (tag === '@text') {
      if (/^[0-9a-f]{16}$/.test(rest[0] ?? '') && rest[2] === '_text') textAddress = `0x${rest[0]!.replace(/^0+(?=.)/, '')}`;
    } else if (tag === '@sect') {
      // "/sys/module/NAME/sections/SECTION:0xADDR"
      const m = /^\/sys\/module\/([^/]+)\/sections\/([^:]+):(\S+)$/.exec(rest.join(' '));
      if (!m || !MODULE_NAME.test(m[1]!) || !SECTION_NAME.test(m[2]!) || !ADDRESS.test(m[3]!)) continue;
      let s = sections.get(m[1]!);
      if (!s) {
        if (sections.size >= MAX_MODULES) continue;
        s = {};
        sections.set(m[1]!, s);
      }
      s[m[2]!] = m[3]!;
    } else if (tag === '@notes') {
      const m = /^\/sys\/module\/([^/]+)\/notes\//.exec(rest[0] ?? '');
      const id = hexBuildId(rest[1] ?? '');
      if (m && MODULE_NAME.test(m[1]!) && id) buildIds.set(m[1]!, id);
    }
  }
  if (!release) throw new Error('the guest did not report its kernel release');
  const modules: GuestModule[] = [...sections].map(([name, secs]) => ({ name, ...(buildIds.has(name) ? { buildId: buildIds.get(name)! } : {}), sections: secs }));
  return {
    info: { schema: 1, takenAt: takenAt.toISOString(), ...(boot !== undefined ? { boot } : {}), release, ...(kernelBuildId ? { kernelBuildId } : {}), ...(textAddress ? { textAddress } : {}), modules },
    kallsyms,
  };
}

/** Reads it all from the guest (as root: /sys/module/x/sections and real kallsyms addresses need it). */
export async function readGuestSymbols(session: SshSession, opts: { modulesOnly: boolean; boot?: string; timeoutMs?: number }): Promise<GuestSymbolsRead> {
  const r = await session.run({ shell: guestSymbolsScript(opts.modulesOnly) }, { timeoutMs: opts.timeoutMs ?? 60_000, maxOutputBytes: MAX_KALLSYMS_BYTES + (4 << 20) });
  if (r.code !== 0 && !r.stdout.includes(`\n${KALLSYMS_MARK}\n`)) throw new Error(`reading symbols in the guest failed (exit ${r.code ?? r.signal}): ${r.stderr.trim().slice(0, 200)}`);
  return parseGuestSymbols(r.stdout, new Date(), opts.boot);
}

export function guestModule(info: GuestSymbols, name: string): GuestModule | undefined {
  return info.modules.find((m) => m.name === name);
}

/** The snapshot files: <dir>/guest-symbols.json and <dir>/kallsyms.txt (written atomically). */
export function writeSnapshot(dir: string, read: GuestSymbolsRead, base = 'guest-symbols'): { json: string; kallsyms: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const json = join(dir, `${base}.json`);
  const kallsyms = join(dir, `${base}.kallsyms.txt`);
  const put = (path: string, text: string): void => {
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, path);
  };
  put(kallsyms, read.kallsyms);
  put(json, `${JSON.stringify(read.info, null, 2)}\n`);
  return { json, kallsyms };
}

const MAX_SNAPSHOT_JSON = 4 << 20;

/** A snapshot written by writeSnapshot, checked again (the state folder is writable by the guest). */
export function readSnapshot(dir: string, base = 'guest-symbols'): GuestSymbolsRead | undefined {
  let raw: unknown;
  let kallsyms: string;
  try {
    const text = readFileSync(join(dir, `${base}.json`), 'utf8');
    if (text.length > MAX_SNAPSHOT_JSON) return undefined;
    raw = JSON.parse(text);
    kallsyms = readFileSync(join(dir, `${base}.kallsyms.txt`), 'utf8');
  } catch {
    return undefined;
  }
  const o = raw as Partial<GuestSymbols>;
  if (typeof o !== 'object' || o === null || o.schema !== 1 || typeof o.release !== 'string' || typeof o.takenAt !== 'string' || !Array.isArray(o.modules)) return undefined;
  const modules: GuestModule[] = [];
  for (const m of o.modules as unknown[]) {
    const g = m as Partial<GuestModule>;
    if (typeof g !== 'object' || g === null || typeof g.name !== 'string' || !MODULE_NAME.test(g.name) || typeof g.sections !== 'object' || g.sections === null) return undefined;
    const secs: Record<string, string> = {};
    for (const [k, v] of Object.entries(g.sections)) if (SECTION_NAME.test(k) && typeof v === 'string' && ADDRESS.test(v)) secs[k] = v;
    modules.push({ name: g.name, ...(typeof g.buildId === 'string' && /^[0-9a-f]{2,128}$/.test(g.buildId) ? { buildId: g.buildId } : {}), sections: secs });
  }
  return {
    info: {
      schema: 1,
      takenAt: o.takenAt,
      ...(typeof o.boot === 'string' ? { boot: o.boot } : {}),
      release: o.release,
      ...(typeof o.kernelBuildId === 'string' && /^[0-9a-f]{2,128}$/.test(o.kernelBuildId) ? { kernelBuildId: o.kernelBuildId } : {}),
      ...(typeof o.textAddress === 'string' && ADDRESS.test(o.textAddress) ? { textAddress: o.textAddress } : {}),
      modules,
    },
    kallsyms,
  };
}
