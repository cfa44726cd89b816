export { Flash } from './flash.decorator.js';
export { Jwt } from './jwt.decorator.js';
export { Session, type SessionParamOptions } from './session.decorator.js';
export { PublicRoute, RequireSession } from './require-session.decorator.js';
export { SkipCsrf } from './skip-csrf.decorator.js';
