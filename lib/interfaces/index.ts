export * from './ez-session-options.interface.js';
