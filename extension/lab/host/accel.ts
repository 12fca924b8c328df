/**
 * Accelerator choice. KVM is used only when it can really run a stock kernel: /dev/kvm opens read-write
 * AND the CPU advertises hardware virtualisation (vmx/svm). Nested software KVMs expose /dev/kvm
 * without those flags and cannot boot a Debian kernel (docs/platform.md#kvm), so they get TCG.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { LabError, errorMessage } from '../common/errors';

export type AccelKind = 'kvm' | 'tcg';
export type AccelRequest = 'auto' | AccelKind;

export interface AccelChoice {
  readonly kind: AccelKind;
  /** One human sentence saying why this accelerator was chosen. */
  readonly why: string;
}

export interface AccelProbePaths {
  readonly devKvm: string;
  readonly cpuinfo: string;
}

interface KvmProbe {
  readonly usable: boolean;
  readonly reason: string;
}

function probeKvm(paths: AccelProbePaths): KvmProbe {
  try {
    closeSync(openSync(paths.devKvm, 'r+'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? errorMessage(err);
    return { usable: false, reason: `${paths.devKvm} cannot be opened (${code})` };
  }
  let cpuinfo: string;
  try {
    cpuinfo = readFileSync(paths.cpuinfo, 'utf8');
  } catch (err) {
    return { usable: false, reason: `${paths.cpuinfo} unreadable (${errorMessage(err)})` };
  }
  const flagLine = cpuinfo.split('\n').find((l) => /^flags\s*:/.test(l)) ?? '';
  const flags = new Set(flagLine.replace(/^flags\s*:/, '').trim().split(/\s+/));
  if (!flags.has('vmx') && !flags.has('svm')) {
    return { usable: false, reason: `${paths.devKvm} opens but the CPU has no vmx/svm flag (nested software KVM cannot boot a stock kernel)` };
  }
  return { usable: true, reason: `${paths.devKvm} opens and the CPU has ${flags.has('vmx') ? 'vmx' : 'svm'}` };
}

export function chooseAccel(request: AccelRequest, paths: AccelProbePaths): AccelChoice {
  if (request === 'tcg') return { kind: 'tcg', why: 'TCG requested (--accel tcg)' };
  const probe = probeKvm(paths);
  if (request === 'kvm') {
    if (!probe.usable) {
      throw new LabError('accel', `--accel kvm requested but KVM is not usable: ${probe.reason}`, 'vlab up --accel auto');
    }
    return { kind: 'kvm', why: `KVM requested and usable: ${probe.reason}` };
  }
  return probe.usable
    ? { kind: 'kvm', why: `KVM: ${probe.reason}` }
    : { kind: 'tcg', why: `TCG (software emulation): ${probe.reason}` };
}
