export * from './errors.js';
export * from './keys.js';
export * from './network.js';
