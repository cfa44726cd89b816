// Module resolve hook behind register.mjs. Only ES module imports pass through it: a CommonJS
// `require('ioredis')` would still load ioredis 5, which test/support/ioredis-major.e2e-spec.ts detects.
const NAME = 'ioredis';
const ALIAS = 'ioredis-6';

export async function resolve(specifier, context, nextResolve) {
  if (specifier === NAME || specifier.startsWith(`${NAME}/`)) {
    return nextResolve(ALIAS + specifier.slice(NAME.length), context);
  }
  return nextResolve(specifier, context);
}
