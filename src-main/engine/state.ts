/**
 * A node's persistent state: its three private keys (machine, node, disco) and the
 * last login preferences. Lives in the state directory (0700), file mode 0600; the
 * private keys are written nowhere else and never sent anywhere.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, type KeyPair, publicKeyOf } from '../protocol/keys.js';
import type { UpRequest } from '../protocol/localapi.js';

export interface NodeState {
  machine: KeyPair;
  node: KeyPair;
  disco: KeyPair;
  /** The last successful `up`, so a restarted daemon rejoins by itself. */
  prefs?: Omit<UpRequest, 'authKey'> & { wantRunning?: boolean };
}

interface StateFile {
  version: 1;
  machinePrivate: string;
  nodePrivate: string;
  discoPrivate: string;
  prefs?: NodeState['prefs'];
}

const STATE_FILE = 'state.json';

function keyPairFrom(b64: unknown, field: string): KeyPair {
  if (typeof b64 !== 'string') throw new Error(`state file: ${field} missing`);
  const privateKey = new Uint8Array(Buffer.from(b64, 'base64'));
  if (privateKey.length !== 32) throw new Error(`state file: ${field} is not a 32-byte key`);
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

export function loadOrCreateState(stateDir: string): NodeState {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, 0o700);
  const path = join(stateDir, STATE_FILE);
  if (existsSync(path)) {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    let raw: Partial<StateFile>;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8')) as Partial<StateFile>;
    } catch (err) {
      throw new Error(`state file ${path} is corrupt (${(err as Error).message}); move it away to start as a new node`, { cause: err });
    }
    return {
      machine: keyPairFrom(raw.machinePrivate, 'machinePrivate'),
      node: keyPairFrom(raw.nodePrivate, 'nodePrivate'),
      disco: keyPairFrom(raw.discoPrivate, 'discoPrivate'),
      prefs: raw.prefs,
    };
  }
  const state: NodeState = { machine: generateKeyPair(), node: generateKeyPair(), disco: generateKeyPair() };
  saveState(stateDir, state);
  return state;
}

/** Atomic replace (write, fsync by rename) so a crash never leaves a half-written key file. */
export function saveState(stateDir: string, state: NodeState): void {
  const file: StateFile = {
    version: 1,
    machinePrivate: Buffer.from(state.machine.privateKey).toString('base64'),
    nodePrivate: Buffer.from(state.node.privateKey).toString('base64'),
    discoPrivate: Buffer.from(state.disco.privateKey).toString('base64'),
    prefs: state.prefs,
  };
  const path = join(stateDir, STATE_FILE);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(file, null, 2), { mode: 0o600, flush: true });
  renameSync(tmp, path);
}
