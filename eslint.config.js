import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Layering (DEVELOPERS.md): electron -> engine -> magicsock/wireguard/derp -> protocol.
// The renderer never reaches Node or the main-process code; nothing below the shell
// imports electron; lower layers never import the layers above them.
const nodeBuiltins = ['node:*', 'fs', 'fs/*', 'path', 'os', 'child_process', 'net', 'dgram', 'crypto', 'http', 'https', 'worker_threads'];
const restrict = (patterns) => ['error', { patterns }];

export default defineConfig(
  { ignores: ['node_modules/**', 'dist/**', 'release/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', AbortController: 'readonly', queueMicrotask: 'readonly', performance: 'readonly', fetch: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['src-renderer/**'],
    rules: {
      'no-restricted-imports': restrict([
        { group: nodeBuiltins, message: 'The renderer has no Node access; go through the preload API.' },
        { group: ['electron', '**/src-main/**', '../src-main/*', '../../src-main/*'], message: 'The renderer talks to the engine only through the preload API.' },
      ]),
    },
  },
  {
    files: ['src-main/**'],
    ignores: ['src-main/electron/**'],
    rules: {
      'no-restricted-imports': restrict([{ group: ['electron', '**/electron/*'], message: 'Only src-main/electron may import electron; the engine runs headless.' }]),
    },
  },
  {
    files: ['src-main/engine/**'],
    rules: {
      'no-restricted-imports': restrict([
        { group: ['electron', '**/electron/*'], message: 'The engine never imports electron.' },
        { group: ['**/cli/*'], message: 'The engine must not depend on the CLI.' },
      ]),
    },
  },
  {
    files: ['src-main/wireguard/**', 'src-main/derp/**', 'src-main/magicsock/**', 'src-main/policy/**', 'src-main/protocol/**', 'native/**'],
    rules: {
      'no-restricted-imports': restrict([
        { group: ['electron', '**/electron/*', '**/engine/*', '**/cli/*'], message: 'Lower layers never import engine, cli or electron.' },
      ]),
    },
  },
);
