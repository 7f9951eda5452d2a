#!/usr/bin/env node
// Entry point for `npx pierce`: loads the TypeScript sources through tsx so the CLI
// runs straight from a checkout after `npm ci`, with no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src-main/cli/main.ts');
