/**
 * Minimal, strict typings for the parts of drachtio-srf 5.0.x that src/sip uses.
 *
 * drachtio-srf ships its own lib/@types/index.d.ts, but it is loose (any, wrong callback shapes:
 * cbRequest really receives (err, req)). An ambient module declaration in a script file takes
 * precedence over the package's own types, so this file is what the compiler sees.
 */
declare module 'drachtio-srf' {
  import type { EventEmitter } from 'node:events';

  namespace Srf {
    type SipMethod =
      | 'ACK' | 'BYE' | 'CANCEL' | 'INFO' | 'INVITE' | 'MESSAGE' | 'NOTIFY' | 'OPTIONS'
      | 'PRACK' | 'PUBLISH' | 'REFER' | 'REGISTER' | 'SUBSCRIBE' | 'UPDATE';

    interface ReconnectOptions {
      /** Stop reconnecting after this many attempts (1 = never reconnect by itself). */
      maxAttempts?: number;
      retryMaxDelay?: number | null;
      connectTimeout?: number;
    }

    interface ConnectOptions {
      host: string;
      port: number;
      secret: string;
      reconnect?: ReconnectOptions;
      enablePing?: boolean;
      pingInterval?: number;
    }

    interface NameAddr {
      name?: string;
      uri: string;
      params: Record<string, string | null>;
    }

    interface ParsedUri {
      family?: 'ipv6' | 'ipv4';
      scheme: 'sip' | 'sips' | 'tel';
      user?: string;
      password?: string;
      host?: string;
      port?: string | number;
      params: Record<string, string | null>;
      headers: Record<string, string>;
    }

    interface SipMessage {
      readonly type: 'request' | 'response';
      body: string;
      readonly raw: string;
      headers: Record<string, string>;
      get(name: string): string | undefined;
      has(name: string): boolean;
      set(name: string, value: string): void;
      getParsedHeader(name: 'contact' | 'Contact'): NameAddr[];
      getParsedHeader(name: 'to' | 'To' | 'from' | 'From'): NameAddr;
    }

    interface RequestMeta {
      source: 'network' | 'application';
      source_address: string;
      source_port: number;
      protocol: string;
    }

    interface SrfRequest extends SipMessage, EventEmitter {
      readonly method: SipMethod;
      readonly uri: string;
      readonly source: 'network' | 'application';
      readonly source_address: string;
      readonly source_port: number;
      readonly protocol: string;
      readonly callingNumber?: string;
      readonly calledNumber?: string;
      readonly callingName?: string;
      readonly isNewInvite: boolean;
      /** Our local address (host:port) the request arrived on. */
      readonly receivedOn?: string;
      /** drachtio-server's SIP addresses, e.g. "tcp/203.0.113.5:5060,udp/203.0.113.5:5060" (external IPs where set). */
      readonly server?: { address: string; hostport: string };
      canceled?: boolean;
      cancel(opts?: { headers?: Record<string, string> }, callback?: (err: Error | null) => void): void;
      on(event: 'cancel', listener: (msg: SipMessage) => void): this;
      /** An UPDATE in this INVITE's early dialog (either direction). */
      on(event: 'update', listener: (req: SrfRequest, res: SrfResponse) => void): this;
      /** The response to a request we sent. */
      on(event: 'response', listener: (res: SrfResponse) => void): this;
      on(event: string, listener: (...args: unknown[]) => void): this;
    }

    interface SendOptions {
      headers?: Record<string, string>;
      body?: string;
    }

    interface SrfResponse extends SipMessage, EventEmitter {
      status: number;
      reason: string;
      readonly finalResponseSent: boolean;
      readonly headersSent: boolean;
      send(status: number, opts?: SendOptions, callback?: (err: Error | string | null, msg?: SipMessage) => void): void;
      /** fnAck: called with the ACK of this 200 to an INVITE (or the PRACK of a reliable provisional). */
      send(status: number, opts: SendOptions, callback: ((err: Error | string | null, msg?: SipMessage) => void) | undefined, fnAck: (ack: SrfRequest) => void): void;
      send(status: number, reason: string, opts?: SendOptions, callback?: (err: Error | string | null, msg?: SipMessage) => void): void;
    }

    /** drachtio-srf's connection to drachtio-server (lib/drachtio-agent.js): the parts in-dialog-request.ts uses. */
    interface DrachtioAgent {
      request(
        params: { method: SipMethod; stackDialogId: string; headers: Record<string, string>; body?: string; auth?: { username: string; password: string }; _socket: unknown },
        callback: (err: Error | null, req: SrfRequest) => void,
      ): void;
      /** Routes an incoming request as the agent does by default (to its dialog by stackDialogId). */
      puntUpTheMiddleware(req: SrfRequest, res: SrfResponse): void;
    }

    class Dialog extends EventEmitter {
      readonly id: string;
      readonly type: 'uac' | 'uas';
      readonly connected: boolean;
      readonly sip: { callId: string; localTag: string; remoteTag: string };
      local: { uri: string; sdp: string; contact: string };
      remote: { uri: string; sdp: string };
      destroy(opts?: { headers?: Record<string, string> }): Promise<SipMessage | undefined>;
      request(opts: { method: SipMethod; headers?: Record<string, string>; body?: string }): Promise<SrfResponse>;
      /** The drachtio connection of this dialog (src/sip/in-dialog-request.ts sends on it directly). */
      readonly agent: DrachtioAgent;
      readonly socket: unknown;
      readonly auth?: { username: string; password: string };
      on(event: 'destroy', listener: (req: SrfRequest, reason?: string) => void): this;
      on(event: 'info' | 'modify' | 'update' | 'options' | 'notify' | 'refer' | 'message', listener: (req: SrfRequest, res: SrfResponse) => void): this;
      on(event: 'ack', listener: (req: SrfRequest) => void): this;
    }

    interface CreateUACOptions {
      localSdp: string;
      headers?: Record<string, string>;
      proxy?: string;
      callingNumber?: string;
      callingName?: string;
      /** Credentials for a 401/407 challenge: drachtio-srf answers it with an Authorization header and resends. */
      auth?: { username: string; password: string };
    }

    interface ProgressCallbacks {
      /** Called once the INVITE was sent (err set when drachtio refused to send it). */
      cbRequest?: (err: Error | null, req?: SrfRequest) => void;
      cbProvisional?: (res: SrfResponse) => void;
    }

    interface CreateUASOptions {
      localSdp: string;
      headers?: Record<string, string>;
    }

    /** Error thrown/rejected for a non-2xx final response. */
    class SipError extends Error {
      readonly status: number;
      readonly reason?: string;
      res?: SrfResponse;
    }
  }

  class Srf extends EventEmitter {
    constructor(tags?: string | string[]);
    connect(opts: Srf.ConnectOptions): this;
    disconnect(): void;
    invite(handler: (req: Srf.SrfRequest, res: Srf.SrfResponse) => void): void;
    options(handler: (req: Srf.SrfRequest, res: Srf.SrfResponse) => void): void;
    createUAC(uri: string, opts: Srf.CreateUACOptions, progress?: Srf.ProgressCallbacks): Promise<Srf.Dialog>;
    createUAS(req: Srf.SrfRequest, res: Srf.SrfResponse, opts: Srf.CreateUASOptions): Promise<Srf.Dialog>;
    on(event: 'connect', listener: (err: Error | null, hostport?: string, serverVersion?: string | null, localHostports?: string | null) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
    on(event: 'close' | 'reconnecting', listener: (...args: unknown[]) => void): this;
    static parseUri(uri: string): Srf.ParsedUri | undefined;
    static readonly SipError: typeof Srf.SipError;
  }

  export = Srf;
}
