import './polyfills.js';

export * as delta from './delta/index.js';
export * as folder from './folder/index.js';
