#!/usr/bin/env node
// Repository launcher of `conformance`, from the TypeScript sources through
// tsx (package names resolve to sources through tsconfig.json's paths), so
// tests and development need no build. Users run the built package's bin.
import { register } from 'tsx/esm/api';
register({ tsconfig: new URL('../tsconfig.json', import.meta.url).pathname });
await import('../conformance/cli.ts');
