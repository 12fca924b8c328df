/**
 * The lab as the product runs it: a `Lab` whose `up` builds and loads our guest driver (guest/driver,
 * vlab_cryptodev) when the guest driver is 'lab', the default. lab.ts knows nothing of the driver and
 * driver/ nothing of the Lab; this file puts the two together. The CLI, the VS Code controller, the
 * benches and the tests open their labs here.
 */
import { Lab, type LabOverrides } from './lab';
import { loadLabDriver } from './driver/driver';

export function labWithDriver(workspace: string, overrides: Omit<LabOverrides, 'guestDriverStep'> = {}): Lab {
  return Lab.forWorkspace(workspace, { ...overrides, guestDriverStep: (lab, ctl) => loadLabDriver(lab, { signal: ctl.signal }) });
}
