/**
 * What the rings panel reads the lab through (commands.ts adapts the LabController to it): the
 * backend's telemetry socket, the crypto device's QMP status and the VM's virtio devices.
 */
import type * as vscode from 'vscode';
import type { VirtioDeviceQueues, VirtioDeviceStatus } from '../../lab/qemu/qmp-virtio';

export interface RingsSource {
  /** the running backend's telemetry socket, undefined when none (stopped, or the builtin backend) */
  telemetrySocket(): string | undefined;
  /** last device status read over QMP */
  device(): VirtioDeviceStatus | null | undefined;
  /** every virtio device of the VM (QMP), on demand */
  devices(): Promise<VirtioDeviceQueues[]>;
  /** fires whenever the lab status was re-read (state changes, restarts) */
  readonly onDidChangeStatus: vscode.Event<unknown>;
}
