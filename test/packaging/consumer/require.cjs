// require() of every ESM package works on Node 20.19+ (no top-level await in any entry).
const names = ['@stripe402/core', '@stripe402/server', '@stripe402/server/ledger', '@stripe402/hono', '@stripe402/express', '@stripe402/fastify', '@stripe402/client', '@stripe402/client/node', '@stripe402/conformance', '@stripe402/stripe-emulator', '@stripe402/mcp', 'stripe402'];
const loaded = {};
for (const name of names) loaded[name] = Object.keys(require(name)).length;
const schema = require('@stripe402/core/schemas/payment-payload.schema.json');
loaded.schema = schema.$id;
console.log(JSON.stringify(loaded));
