/**
 * The demo's last act (the lab exercise's Z3): the guest's upstream virtio_crypto driver is swapped for
 * ours, which exports /dev/crypto, and the encrypted chat runs between a host peer and a guest peer whose
 * AES goes through /dev/crypto → virtio-crypto → the lab's backend. QEMU's filter-dump records the guest's
 * traffic; the capture is searched for the sentence the peers exchanged.
 */
import { join } from 'node:path';
import { runPair } from '../../../chat/pair';
import { type DemoStep, requireSession } from './step';
import { buildDriver, loadDriver, MODULE_NAME } from '../driver/driver';

export const DEMO_CHAT_SENTENCE = 'Meet me at the virtqueue at noon, bring the session key';

export const chatStep: DemoStep = {
  id: 'chat',
  title: 'encrypted chat',
  async run(ctx) {
    const session = requireSession(ctx);
    // The upstream driver and ours both want the one device: unbind the upstream one first.
    const swap = await session.run({ shell: 'if test -d /sys/module/virtio_crypto; then rmmod virtio_crypto; fi' }, { timeoutMs: 30_000 });
    if (swap.code !== 0) throw new Error(`rmmod virtio_crypto: ${swap.stderr.trim() || `exit ${String(swap.code)}`}`);
    ctx.log(`building and loading ${MODULE_NAME} (our /dev/crypto driver)`);
    const build = await buildDriver(ctx.lab, { signal: ctx.signal });
    await loadDriver(session, build);

    const paths = ctx.lab.paths;
    const capture = join(paths.stateDir, 'demo-chat.pcap');
    ctx.log('chat: host peer (127.0.0.1) ↔ guest peer (10.0.2.2 → host), capture through QEMU filter-dump');
    const result = await runPair({
      crypto: 'auto',
      peerCrypto: 'cryptodev',
      guest: true,
      capture,
      sentence: DEMO_CHAT_SENTENCE,
      cwd: paths.workspace,
      env: { ...process.env, VLAB_STATE_DIR: paths.stateDir },
      signal: ctx.signal,
      log: (line) => ctx.log(`chat: ${line}`),
    });
    if (!result.ok) throw new Error(`the peers did not both receive the sentence (host got ${result.hostReceived.length} line(s), guest ${result.peerReceived.length})`);
    const scan = result.capture;
    if (!scan) throw new Error('no capture result');
    if (scan.sentenceVisible || scan.longestRun > 0) {
      throw new Error(`plaintext on the wire: ${scan.longestRun}-byte run of the sentence in ${scan.file}`);
    }
    return [
      `host ↔ guest both ways over TCP; guest ${result.peerCipher}; host ${result.hostCipher};`,
      `capture ${scan.file} (${scan.bytes} B): no 8-byte run of the sentence — ciphertext only`,
    ].join(' ');
  },
};
