/** Recording the guest's network traffic into a pcap (QMP `filter-dump` on the lab's netdev n0). */
import { LabError, errorMessage } from './common/errors';
import type { QmpClient } from './qemu/qmp';

const CAPTURE_ID = 'vlabcap0';

/** Starts the capture into FILE (absolute) over QMP (the session is closed); returns FILE. */
export async function startCapture(qmp: QmpClient, file: string): Promise<string> {
  try {
    await qmp.execute('object-add', { 'qom-type': 'filter-dump', id: CAPTURE_ID, netdev: 'n0', file });
  } catch (err) {
    throw new LabError('qmp', `capture start failed: ${errorMessage(err)}`);
  } finally {
    qmp.close();
  }
  return file;
}

export async function stopCapture(qmp: QmpClient): Promise<void> {
  try {
    await qmp.execute('object-del', { id: CAPTURE_ID });
  } catch (err) {
    throw new LabError('qmp', `capture stop failed (is a capture running?): ${errorMessage(err)}`);
  } finally {
    qmp.close();
  }
}
