// `vlab up --append 'ARGS'`: parsing, validation, and where the arguments land on the kernel command line.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { UsageError } from '../../../../extension/cli/command';
import { formatStatus, parseUpArgs } from '../../../../extension/cli/commands/lab';
import { LabError } from '../../../../extension/lab/common/errors';
import type { LabStatus } from '../../../../extension/lab/lab';
import { MAX_KERNEL_APPEND, checkKernelAppend, kernelCmdline, resolveUpOptions } from '../../../../extension/lab/up-options';

test('--append: arguments go after the lab\'s own, split on spaces, recorded in the options', () => {
  const { options } = parseUpArgs(['--append', '  movablecore=512M  threadirqs ']);
  assert.equal(options.append, 'movablecore=512M  threadirqs');
  assert.equal(resolveUpOptions(options).append, 'movablecore=512M  threadirqs');
  const line = kernelCmdline('/w', 'lab', undefined, false, options.append);
  assert.match(line, /^console=ttyS0 .* vlab\.driver=lab .*module_blacklist=virtio_crypto movablecore=512M threadirqs$/);
  assert.equal(kernelCmdline('/w', 'lab'), kernelCmdline('/w', 'lab', undefined, false, undefined));
  assert.equal(parseUpArgs(['--append=nokaslr']).options.append, 'nokaslr');
  assert.equal(parseUpArgs([]).options.append, undefined);
  assert.equal('append' in parseUpArgs(['--append', '   ']).options, false, 'blank --append adds nothing');
});

test('--append: refuses control characters, non-ASCII, quotes, "--", over-long and vlab.* keys', () => {
  const bad: [string, RegExp][] = [
    ['a\nb', /printable ASCII/],
    ['a\tb', /printable ASCII/],
    ['a\0b', /printable ASCII/],
    ['quiet\x7f', /printable ASCII/],
    ['foo=é', /printable ASCII/],
    ['dyndbg="module x +p"', /double quotes/],
    ['quiet -- single', /"--"/],
    ['vlab.ws=2f', /lab's own key/],
    ['quiet vlab.driver=upstream', /lab's own key/],
    ['VLAB.driver=upstream', /lab's own key/],
    ['vlab_mods=1', /lab's own key/],
    ['vlab-pkg=00', /lab's own key/],
    ['x'.repeat(MAX_KERNEL_APPEND + 1), /at most 512/],
  ];
  for (const [append, why] of bad) {
    assert.match(checkKernelAppend(append) ?? '', why, JSON.stringify(append));
    assert.throws(() => parseUpArgs(['--append', append]), (e: unknown) => e instanceof UsageError && why.test(e.message), JSON.stringify(append));
    assert.throws(() => resolveUpOptions({ append }), (e: unknown) => e instanceof LabError && e.kind === 'bad-option', JSON.stringify(append));
    assert.throws(() => kernelCmdline('/w', 'lab', undefined, false, append), LabError, JSON.stringify(append));
  }
  for (const good of ['nokaslr', 'movablecore=256M', 'threadirqs loglevel=7', 'vlabx=1', 'foo.vlab.ws=1', 'x'.repeat(MAX_KERNEL_APPEND)]) {
    assert.equal(checkKernelAppend(good), undefined, good);
  }
});

test('status shows the extra kernel arguments a lab was booted with', () => {
  const base: LabStatus = {
    schema: 1, state: 'running', accel: null, backend: { kind: 'ts' }, qemu: {}, ssh: { host: '127.0.0.1' },
    stateDir: '/w/.vlab', guestDriver: 'lab', kernelVersion: '6.1.0', workspace: '/w',
  };
  assert.match(formatStatus({ ...base, append: 'movablecore=512M' }), /^append +movablecore=512M$/m);
  assert.doesNotMatch(formatStatus(base), /^append/m);
});
