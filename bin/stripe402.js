#!/usr/bin/env node
// Entry point for `stripe402` (serve, emulator, fetch, reconcile): loads the
// TypeScript sources through tsx so the package runs without a build step.
import { register } from 'tsx/esm/api';
register();
await import('../reference/cli.ts');
