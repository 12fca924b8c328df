/** Every `vlab` subcommand, grouped by the area that owns it. Add an area's list here. */
import type { CliCommand } from '../command';
import { chatCommands } from './chat';
import { labCommands } from './lab';

export const allCommands: readonly CliCommand[] = [
  ...chatCommands,
  ...labCommands,
];
