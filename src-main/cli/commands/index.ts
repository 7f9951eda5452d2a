import type { Command } from 'commander';
import { register as keys } from './keys.js';
import { register as wg } from './wg.js';
import { register as derp } from './derp.js';
import { register as policy } from './policy.js';
import { register as netcheck } from './netcheck.js';
import { register as control } from './control.js';
import { register as node } from './node.js';
import { register as admin } from './admin.js';

/** Each sub-command module exports one `register(program)`; list them here. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [keys, wg, derp, policy, netcheck, control, node, admin];
