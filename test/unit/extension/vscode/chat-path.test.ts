import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { guestChatPath, hostChatPath } from '../../../../extension/vscode/chat-path';

describe('chat path header', () => {
  it('the guest peer goes through the device with the lab driver and auto/cryptodev crypto', () => {
    for (const c of ['auto', 'cryptodev'] as const) {
      const p = guestChatPath(c, 'lab');
      assert.equal(p.throughDevice, true);
      assert.match(p.header, /\/dev\/crypto → lab driver .* virtio-crypto/);
    }
  });
  it('with the upstream driver the header says software and how to switch', () => {
    const p = guestChatPath('auto', 'upstream');
    assert.equal(p.throughDevice, false);
    assert.match(p.header, /software .*guestDriver/);
    assert.match(guestChatPath('cryptodev', 'upstream').header, /refuse/);
  });
  it('plain text and software choices are said as such; the host never uses the VM device', () => {
    assert.equal(guestChatPath('none', 'lab').short, 'plain text');
    assert.equal(guestChatPath('software', 'lab').throughDevice, false);
    assert.equal(hostChatPath('auto').throughDevice, false);
  });
});
