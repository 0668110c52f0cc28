import './polyfills.js';

export * as delta from './delta/index.js';
export * as folder from './folder/index.js';
export * as protocol from './protocol/index.js';
