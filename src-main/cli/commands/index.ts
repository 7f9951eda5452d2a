import type { Command } from 'commander';
import { register as keys } from './keys.js';

/** Each sub-command module exports one `register(program)`; list them here. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [keys];
