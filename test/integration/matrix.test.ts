/**
 * The smoke matrix beside the full suite (which runs on the system's QEMU 7.2 + Linux 6.1):
 * {QEMU 10.0 unpacked in .vlab-tools} x {host Linux 6.1, Linux 6.12 unpacked in .vlab-tools}.
 * One VM boot per combination, TS backend: the upstream virtio_crypto self-test passes, our driver built
 * for that kernel passes the known-answer suite, one encrypted chat pair runs through it.
 * The tools come from `bash scripts/setup.sh --test` (scripts/matrix-tools.sh).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPair } from '../../chat/pair';
import { GUEST_TOOL_PATH, MODULE_NAME, buildDriver, loadDriver, pushGuestTool } from '../../extension/lab/driver/driver';
import { virtioCryptoDrivers } from '../../extension/lab/guest/checks';
import type { HostPaths } from '../../extension/lab/host/host';
import { Lab } from '../../extension/lab/lab';
import { probeQemu } from '../../extension/lab/qemu/info';
import type { SshSession } from '../../extension/lab/guest/ssh';
import { readState } from '../../extension/lab/state';
import { processesMentioning } from './lab-helpers';

const REPO = join(__dirname, '..', '..', '..');
const TOOLS = join(REPO, '.vlab-tools');
const QEMU10 = join(TOOLS, 'qemu-10.0', 'usr', 'bin', 'qemu-system-x86_64');
const LINUX612 = join(TOOLS, 'linux-6.12');
const SETUP_HINT = 'run: bash scripts/setup.sh --test (or bash scripts/matrix-tools.sh)';

interface Combination {
  readonly name: string;
  readonly host: Partial<HostPaths>;
  /** Expected `uname -r` prefix in the guest. */
  readonly kernelPrefix: string;
}

const COMBINATIONS: readonly Combination[] = [
  { name: 'QEMU 10.0 + Linux 6.1 (host)', host: { qemu: QEMU10 }, kernelPrefix: '6.1.' },
  { name: 'QEMU 10.0 + Linux 6.12 (unpacked)', host: { qemu: QEMU10, guestKernel: LINUX612 }, kernelPrefix: '6.12.' },
];

const timings: string[] = [];

function matrixSuite(combo: Combination): void {
  describe(combo.name, () => {
    // A temp workspace (shared with the guest at the same path; the chat key lives in its .vlab).
    const workspace = mkdtempSync(join(tmpdir(), 'vlab-matrix-'));
    const lab = Lab.forWorkspace(workspace, { env: {}, host: combo.host });
    const stateDir = lab.paths.stateDir;
    let session: SshSession | undefined;
    let t0 = Date.now();
    const ssh = (): SshSession => {
      assert.ok(session, 'the lab did not come up');
      return session;
    };

    before(async () => {
      t0 = Date.now();
      assert.ok(existsSync(QEMU10), `${QEMU10} missing; ${SETUP_HINT}`);
      if (combo.host.guestKernel) assert.ok(existsSync(join(LINUX612, '.vlab-complete')), `${LINUX612} missing; ${SETUP_HINT}`);
      await lab.up({ backend: 'ts', guestDriver: 'upstream' });
      session = await lab.ssh();
    });

    after(async () => {
      session?.close();
      await lab.down().catch(() => undefined);
      timings.push(`${combo.name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      rmSync(workspace, { recursive: true, force: true });
      assert.deepEqual(processesMentioning(stateDir), [], 'no QEMU or backend left behind');
    });

    test('boots the chosen QEMU and kernel; MSI-X kept (no vectors=0 on 10.0)', async () => {
      const info = probeQemu(QEMU10);
      assert.equal(info.version?.major, 10);
      const st = readState(lab.paths);
      assert.ok(st?.qemu, 'state records QEMU');
      const cmdline = readFileSync(`/proc/${st.qemu.pid}/cmdline`, 'utf8').split('\0');
      assert.equal(cmdline[0], QEMU10);
      assert.ok(cmdline.includes('-L'), 'an unpacked QEMU gets its own firmware folder');
      const crypto = cmdline.find((a) => a.startsWith('virtio-crypto-pci'));
      assert.ok(crypto && !crypto.includes('vectors=0'), `crypto device ${crypto ?? '?'}`);
      const r = await ssh().run(['uname', '-r'], { timeoutMs: 30_000 });
      assert.ok(r.stdout.trim().startsWith(combo.kernelPrefix), `guest runs ${r.stdout.trim()}`);
      const mods = await ssh().run(['test', '-f', `/lib/modules/${r.stdout.trim()}/modules.dep`], { timeoutMs: 30_000 });
      assert.equal(mods.code, 0, 'the guest sees its kernel modules at /lib/modules/<release>');
    });

    test('upstream virtio_crypto: cbc(aes) registered and its self-test passed (TS backend)', async () => {
      const r = await ssh().run(['cat', '/proc/crypto'], { timeoutMs: 30_000 });
      const entry = r.stdout.split('\n\n').find((e) => /^driver\s*:\s*virtio_crypto_aes_cbc$/m.test(e));
      assert.ok(entry, 'virtio_crypto_aes_cbc in /proc/crypto');
      assert.match(entry, /^name\s*:\s*cbc\(aes\)$/m);
      assert.match(entry, /^selftest\s*:\s*passed$/m);
    });

    test(`our driver built for this kernel passes the known-answer suite`, { timeout: 300_000 }, async () => {
      const swap = await ssh().run({ shell: 'rmmod virtio_crypto' }, { timeoutMs: 30_000 });
      assert.equal(swap.code, 0, swap.stderr);
      if (combo.host.guestKernel) {
        // The module built for the host's kernel is refused by name, not with insmod's "Invalid module format".
        const hostBuild = await buildDriver(Lab.forWorkspace(workspace, { env: {}, stateDir: join(stateDir, 'host-kernel') }));
        await assert.rejects(loadDriver(ssh(), hostBuild), /was built for 6\.1\.\S+ but the guest runs 6\.12\..*driver build --kernel/);
      }
      const build = await buildDriver(lab);
      const uname = (await ssh().run(['uname', '-r'], { timeoutMs: 30_000 })).stdout.trim();
      assert.equal(build.kernelVersion, uname);
      await loadDriver(ssh(), build);
      await pushGuestTool(ssh(), build);
      const bound = await virtioCryptoDrivers(ssh());
      assert.equal(bound[0]?.driver, MODULE_NAME);
      const r = await ssh().run([GUEST_TOOL_PATH, 'kat', '--mac'], { timeoutMs: 120_000 });
      const lines = r.stdout.split('\n');
      assert.deepEqual(lines.filter((l) => l.startsWith('not ok ')), [], r.stdout);
      assert.equal(r.code, 0);
      assert.ok(lines.filter((l) => l.startsWith('ok ')).length >= 9 * 3 + 6 * 3 + 7, r.stdout);
    });

    test('one encrypted chat pair, guest peer through /dev/crypto', { timeout: 240_000 }, async () => {
      const env = { ...process.env };
      delete env['VLAB_STATE_DIR'];
      const result = await runPair({
        crypto: 'auto',
        peerCrypto: 'cryptodev',
        guest: true,
        sentence: 'matrix: the same lab on a newer stack',
        cwd: workspace,
        env,
        log: () => undefined,
      });
      assert.ok(result.ok, `host got ${result.hostReceived.length} line(s), guest ${result.peerReceived.length}`);
      assert.match(result.peerCipher, /^cipher: \/dev\/crypto \(driver /, `the guest peer encrypts through /dev/crypto: ${result.peerCipher}`);
    });
  });
}

for (const combo of COMBINATIONS) matrixSuite(combo);

after(() => {
  process.stdout.write(`# matrix timings: ${timings.join('; ')}\n`);
});
