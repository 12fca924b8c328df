/** Every `vlab` subcommand, grouped by the area that owns it. Add an area's list here. */
import type { CliCommand } from '../command';
import { labCommands } from './lab';

export const allCommands: readonly CliCommand[] = [
  ...labCommands,
];
