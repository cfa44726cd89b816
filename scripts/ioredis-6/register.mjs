// `node --import ./scripts/ioredis-6/register.mjs`: every `import 'ioredis'` in the process, from the
// library's compiled code, the specs and any package, loads the devDependency alias `ioredis-6`
// instead, so the same build runs on the other ioredis major without a second install.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
