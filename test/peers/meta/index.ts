/** Meta (WhatsApp Cloud API calling) test doubles — see each module's header for its API. */
export * from './meta-double.js';
export * from './graph-double.js';
export * from './webhook-sender.js';
export * from './wa-user.js';
export * from './sdp.js';
export * from './sdes-user.js';
