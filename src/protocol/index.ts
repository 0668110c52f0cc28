export * from './constants.js';
export * from './errors.js';
export * from './index-exchange.js';
export * from './messages-codec.js';
export * from './streams.js';
export * from './transfer.js';
export * from './wire-record.js';
export * from './traffic.js';
