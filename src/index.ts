import './polyfills.js';

export * as delta from './delta/index.js';
