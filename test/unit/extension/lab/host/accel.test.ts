import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseAccel } from '../../../../../extension/lab/host/accel';
import { LabError } from '../../../../../extension/lab/common/errors';

function fixture(t: { after(fn: () => void): void }, flags: string, kvmExists: boolean): { devKvm: string; cpuinfo: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vlab-accel-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cpuinfo = join(dir, 'cpuinfo');
  writeFileSync(cpuinfo, `processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: ${flags}\n\nprocessor\t: 1\nflags\t\t: ${flags}\n`);
  const devKvm = join(dir, 'kvm');
  // A regular file stands in for the device node: what matters is whether open(O_RDWR) succeeds.
  if (kvmExists) writeFileSync(devKvm, '');
  return { devKvm, cpuinfo };
}

test('auto picks KVM when /dev/kvm opens and the CPU has vmx', (t) => {
  const c = chooseAccel('auto', fixture(t, 'fpu vme de pse vmx sse2', true));
  assert.equal(c.kind, 'kvm');
  assert.match(c.why, /vmx/);
});

test('auto picks KVM with svm (AMD)', (t) => {
  assert.equal(chooseAccel('auto', fixture(t, 'fpu svm lm', true)).kind, 'kvm');
});

test('auto falls back to TCG when /dev/kvm opens but there is no vmx/svm (nested software KVM)', (t) => {
  const c = chooseAccel('auto', fixture(t, 'fpu vme de pse sse2 hypervisor', true));
  assert.equal(c.kind, 'tcg');
  assert.match(c.why, /no vmx\/svm/);
});

test('auto falls back to TCG when /dev/kvm is missing, and says so', (t) => {
  const c = chooseAccel('auto', fixture(t, 'vmx', false));
  assert.equal(c.kind, 'tcg');
  assert.match(c.why, /cannot be opened \(ENOENT\)/);
});

test('flags are matched as whole words ("vmxnet" is not vmx)', (t) => {
  assert.equal(chooseAccel('auto', fixture(t, 'vmxnet svmx', true)).kind, 'tcg');
});

test('--accel tcg is honoured without probing', (t) => {
  const c = chooseAccel('tcg', fixture(t, 'vmx', true));
  assert.deepEqual(c, { kind: 'tcg', why: 'TCG requested (--accel tcg)' });
});

test('--accel kvm on a host that cannot run KVM fails with the reason and a fix', (t) => {
  assert.throws(
    () => chooseAccel('kvm', fixture(t, 'sse2', true)),
    (err: unknown) => err instanceof LabError && err.kind === 'accel' && /no vmx\/svm/.test(err.message) && err.fix === 'vlab up --accel auto',
  );
});

test('this machine: the choice comes with a reason', () => {
  const c = chooseAccel('auto', { devKvm: '/dev/kvm', cpuinfo: '/proc/cpuinfo' });
  assert.ok(c.why.length > 10);
});
