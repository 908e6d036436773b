/** The Node-only entries: the file store and the JSON Schemas as files. */
import { JsonFileClientIdStore, defaultStorePath } from '@stripe402/client/node';
import { runConformance, type ConformanceOptions } from '@stripe402/conformance';
import { startServer } from 'stripe402';

export const store = new JsonFileClientIdStore(defaultStorePath());
export const options: ConformanceOptions = { target: 'http://127.0.0.1:4021', level: 'core' };
export const run: typeof runConformance = runConformance;
export const start: typeof startServer = startServer;
