/** `vlab driver build|load|unload|reload` (the guest's /dev/crypto driver) and `vlab bench e2e`. */
import { parseArgs } from '../args';
import { type CliCommand, type CliIo, UsageError } from '../command';
import { E2E_ALGS, E2E_PROCS, E2E_SIZES, type E2eAlg, benchE2e, benchE2eSpeed, isE2eAlg } from '../../bench/driver';
import { formatE2eSpeed, formatE2eTable } from '../../bench/driver-format';
import { buildDriver, formatDiagnostic, loadDriver, unloadDriver, type DriverBuild, MODULE_NAME } from '../../lab/driver/driver';
import type { HostPaths } from '../../lab/host/host';
import { backendList, intList, integer } from '../args';
import { hostSelection, labFor } from '../lab-for';
import { reportError } from '../report';

function noArgs(args: readonly string[], usage: string): { json: boolean; host: Partial<HostPaths> } {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: { json: { type: 'boolean' }, kernel: { type: 'string' }, modules: { type: 'string' } },
    allowPositionals: true,
    strict: false,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"\n${usage}`);
  const unknown = Object.keys(values).filter((k) => !['json', 'kernel', 'modules'].includes(k));
  if (unknown.length) throw new UsageError(`unknown option --${unknown[0]}`);
  const str = (v: unknown, flag: string): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new UsageError(`${flag} needs a path`);
    return v;
  };
  const kernel = str(values.kernel, '--kernel');
  const modules = str(values.modules, '--modules');
  if (modules !== undefined && kernel === undefined) throw new UsageError('--modules goes with --kernel');
  return { json: values.json === true, host: hostSelection(undefined, kernel, modules) };
}

async function build(io: CliIo, json: boolean, host: Partial<HostPaths> = {}): Promise<DriverBuild> {
  const b = await buildDriver(labFor(io, host), { signal: io.signal });
  if (json) return b;
  for (const w of b.warnings) io.stderr.write(`${formatDiagnostic(w, io.cwd)}\n`);
  io.stdout.write(`built ${MODULE_NAME}.ko for ${b.kernelVersion} in ${b.seconds} s (${b.warnings.length} warning(s)): ${b.module}\n`);
  return b;
}

const BUILD_USAGE = `usage: vlab driver build [--json] [--kernel PATH [--modules DIR]]
Builds guest/driver (${MODULE_NAME}.ko, Kbuild with W=1) against the guest kernel's headers, and the guest
test tool. Compiler errors are shown as file:line:col. Needs no running lab.
  --kernel PATH   build for the kernel vlab up --kernel boots (its headers: lib/modules/R/build, or the
                  build tree itself); env VLAB_GUEST_KERNEL`;
const LOAD_USAGE = `usage: vlab driver load
Builds if needed, copies ${MODULE_NAME}.ko into the running guest and insmods it (/dev/crypto appears).
The lab should be started with --guest-driver none or lab so virtio_crypto does not hold the device.`;
const UNLOAD_USAGE = `usage: vlab driver unload
rmmods ${MODULE_NAME} in the running guest (refused while /dev/crypto is open).`;
const RELOAD_USAGE = `usage: vlab driver reload
Rebuilds, unloads and loads again: the edit-test loop of the driver.`;

const BENCH_USAGE = `usage: vlab bench e2e [--json] [--backend builtin,ts] [--alg LIST] [--ms N] [--sizes LIST] [--procs LIST]
                     [--no-openssl-speed] [--speed]
AES-256-CBC, SHA-256 (hash-only session) and HMAC-SHA256 (mac-only session) at 64 B, 1 KiB, 16 KiB and
64 KiB with 1 and 8 processes, from guest userspace through /dev/crypto (${MODULE_NAME} -> virtio -> backend,
or the guest kernel where the driver falls back), one VM per backend. Baselines, in the first VM: the
guest's OpenSSL in the tool's own loop (software) and \`openssl speed -elapsed\` (-evp ALG, -hmac sha256;
-multi for 8 processes). Prints ops/s, MB/s, the ratios and issue #11's targets; --json: schema 2.
  --backend   comma-separated backends (default builtin,ts)
  --alg       comma-separated, from ${E2E_ALGS.join(', ')} (default all)
  --ms N      measuring time per point in milliseconds (default 1500); openssl speed gets
              round(N/1000) whole seconds (at least 1)
  --sizes     comma-separated request sizes in bytes (default ${E2E_SIZES.join(',')})
  --procs     comma-separated process counts (default ${E2E_PROCS.join(',')})
  --no-openssl-speed   skip the openssl speed baseline
  --speed     instead: the guest tool's cryptodev-linux-style speed mode (\`vlab-cryptodev-test speed
              ALG SECONDS\`, N ms per size) per backend, printing "Encrypting in chunks of X bytes:
              done. Y MB in Z secs: W MB/sec" lines`;

export const driverCommands: readonly CliCommand[] = [
  {
    name: 'driver build',
    summary: 'build the guest /dev/crypto driver (and its guest test tool)',
    usage: BUILD_USAGE,
    async run(args, io) {
      const { json, host } = noArgs(args, BUILD_USAGE);
      try {
        const b = await build(io, json, host);
        if (json) io.stdout.write(`${JSON.stringify(b, null, 2)}\n`);
        return 0;
      } catch (err) {
        return reportError(io, 'driver build', err);
      }
    },
  },
  {
    name: 'driver load',
    summary: 'insmod the driver in the running guest',
    usage: LOAD_USAGE,
    async run(args, io) {
      const { host } = noArgs(args, LOAD_USAGE);
      try {
        const lab = labFor(io, host);
        const b = await buildDriver(lab, { signal: io.signal });
        const session = await lab.ssh({ signal: io.signal });
        try {
          const loaded = await loadDriver(session, b);
          io.stdout.write(loaded ? `${MODULE_NAME} loaded: /dev/crypto is ready\n` : `${MODULE_NAME} was already loaded (use vlab driver reload after an edit)\n`);
        } finally {
          session.close();
        }
        return 0;
      } catch (err) {
        return reportError(io, 'driver load', err);
      }
    },
  },
  {
    name: 'driver unload',
    summary: 'rmmod the driver in the running guest',
    usage: UNLOAD_USAGE,
    async run(args, io) {
      noArgs(args, UNLOAD_USAGE);
      try {
        const session = await labFor(io).ssh({ signal: io.signal });
        try {
          const unloaded = await unloadDriver(session);
          io.stdout.write(unloaded ? `${MODULE_NAME} unloaded\n` : `${MODULE_NAME} was not loaded\n`);
        } finally {
          session.close();
        }
        return 0;
      } catch (err) {
        return reportError(io, 'driver unload', err);
      }
    },
  },
  {
    name: 'driver reload',
    summary: 'rebuild, unload and load the driver again',
    usage: RELOAD_USAGE,
    async run(args, io) {
      const { host } = noArgs(args, RELOAD_USAGE);
      const t0 = Date.now();
      try {
        const lab = labFor(io, host);
        const b = await build(io, false, host);
        const session = await lab.ssh({ signal: io.signal });
        try {
          await unloadDriver(session);
          await loadDriver(session, b);
        } finally {
          session.close();
        }
        io.stdout.write(`${MODULE_NAME} reloaded in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
        return 0;
      } catch (err) {
        return reportError(io, 'driver reload', err);
      }
    },
  },
  {
    name: 'bench e2e',
    summary: 'AES-256-CBC, SHA-256, HMAC-SHA256 through /dev/crypto in the guest, per backend, vs guest OpenSSL',
    usage: BENCH_USAGE,
    async run(args, io) {
      const { values, positionals } = parseArgs({
        args: [...args],
        options: {
          json: { type: 'boolean' },
          backend: { type: 'string' },
          ms: { type: 'string' },
          alg: { type: 'string' },
          sizes: { type: 'string' },
          procs: { type: 'string' },
          'no-openssl-speed': { type: 'boolean' },
          speed: { type: 'boolean' },
        },
        allowPositionals: true,
      });
      if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
      const backends = backendList(values.backend, 'builtin,ts');
      const algs = (values.alg ?? E2E_ALGS.join(',')).split(',').map((s) => s.trim());
      for (const a of algs) if (!isE2eAlg(a)) throw new UsageError(`--alg takes ${E2E_ALGS.join(', ')} (got "${a}")`);
      const ms = integer(values.ms, '--ms', 100, 60_000) ?? 1500;
      const sizes = intList(values.sizes, '--sizes', 16, 65536, E2E_SIZES);
      const procs = intList(values.procs, '--procs', 1, 64, E2E_PROCS);
      const odd = sizes.find((n) => n % 16 !== 0);
      if (algs.includes('aes-256-cbc') && odd !== undefined) throw new UsageError(`--sizes: AES-256-CBC takes whole 16-byte blocks (got ${odd})`);
      if (values.speed && (values.sizes !== undefined || values.procs !== undefined || values['no-openssl-speed'])) {
        throw new UsageError('--speed measures every size with 1 process: it takes --backend, --alg, --ms and --json only');
      }
      const opts = {
        workspace: io.cwd,
        backends,
        algs: [...new Set(algs)] as E2eAlg[],
        durationMs: ms,
        sizes,
        procs,
        noOpensslSpeed: values['no-openssl-speed'] === true,
        env: io.env,
        signal: io.signal,
        onProgress: (m: string) => io.stderr.write(`[bench] ${m}\n`),
      };
      try {
        if (values.speed) {
          const result = await benchE2eSpeed(opts);
          io.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatE2eSpeed(result)}\n`);
          return 0;
        }
        const result = await benchE2e(opts);
        io.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatE2eTable(result)}\n`);
        return 0;
      } catch (err) {
        return reportError(io, 'bench e2e', err);
      }
    },
  },
];
