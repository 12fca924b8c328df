/** Every `vlab` subcommand, grouped by the area that owns it. Add an area's list here. */
import type { CliCommand } from '../command';
import { backendCommands } from './backend';
import { benchLatencyCommands } from './bench-latency';
import { chatCommands } from './chat';
import { debugCommands } from './debug';
import { checkCommands } from './check';
import { doctorCommands } from './doctor';
import { driverCommands } from './driver';
import { faultCommands } from './fault';
import { labCommands } from './lab';
import { reportCommands } from './report';

export const allCommands: readonly CliCommand[] = [
  ...backendCommands,
  ...benchLatencyCommands,
  ...chatCommands,
  ...debugCommands,
  ...checkCommands,
  ...doctorCommands,
  ...driverCommands,
  ...faultCommands,
  ...labCommands,
  ...reportCommands,
];
