#!/usr/bin/env node
// Entry point for `conformance --target URL`: loads the TypeScript sources
// through tsx so the package runs without a build step.
import { register } from 'tsx/esm/api';
register();
await import('../conformance/cli.ts');
