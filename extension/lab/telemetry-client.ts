/** One snapshot from the backend's telemetry socket, null when there is none (client: backend/telemetry/client.ts). */
export { readSnapshotOrNull as readTelemetrySnapshot } from '../../backend/telemetry/client';
