// The WebSocket channel protocols of Kubernetes streaming (exec, attach, port-forward): every message
// starts with its channel: a byte in the binary protocols, an ASCII digit followed by base64 in the
// base64 ones. v5 adds CLOSE, [255, channel], to half-close one channel (stdin EOF). Pure.

export const CHANNEL_STDIN = 0;
export const CHANNEL_STDOUT = 1;
export const CHANNEL_STDERR = 2;
export const CHANNEL_ERROR = 3;
export const CHANNEL_RESIZE = 4;
export const CHANNEL_CLOSE = 255;

/** Exec and attach, most capable first (the order a server prefers when a client offers several). */
export const REMOTE_COMMAND_WS_PROTOCOLS = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'v4.base64.channel.k8s.io',
  'channel.k8s.io',
  'base64.channel.k8s.io',
] as const;

/** The legacy WebSocket port-forward protocols (one port per channel pair). */
export const PORT_FORWARD_WS_PROTOCOLS = [
  'v4.channel.k8s.io',
  'v4.base64.channel.k8s.io',
  'channel.k8s.io',
  'base64.channel.k8s.io',
] as const;

export interface ChannelCodec {
  readonly protocol: string;
  readonly base64: boolean;
  /** Whether CLOSE messages exist (v5): stdin EOF can be signalled without closing the socket. */
  readonly supportsClose: boolean;
  /** Whether the error channel carries a metav1.Status JSON (v4 and v5) rather than plain text. */
  readonly structuredErrors: boolean;
  encode(channel: number, data: Buffer): Buffer | string;
  decode(message: Buffer | string): { channel: number; data: Buffer } | { close: number } | undefined;
}

export function channelCodec(protocol: string): ChannelCodec {
  const base64 = protocol.includes('base64');
  const version = /^v(\d+)\./.exec(protocol)?.[1];
  const supportsClose = version === '5';
  return {
    protocol,
    base64,
    supportsClose,
    structuredErrors: version === '4' || version === '5',
    encode(channel, data) {
      if (base64) return String.fromCharCode(48 + channel) + data.toString('base64');
      return Buffer.concat([Buffer.from([channel]), data]);
    },
    decode(message) {
      if (base64) {
        const text = typeof message === 'string' ? message : message.toString('latin1');
        if (text.length === 0) return undefined;
        const channel = text.charCodeAt(0) - 48;
        if (channel < 0 || channel > 9) return undefined;
        return { channel, data: Buffer.from(text.slice(1), 'base64') };
      }
      const bytes = typeof message === 'string' ? Buffer.from(message, 'latin1') : message;
      if (bytes.length === 0) return undefined;
      const channel = bytes[0] as number;
      if (channel === CHANNEL_CLOSE) {
        // A CLOSE is exactly two bytes; anything else is not one.
        return supportsClose && bytes.length === 2 ? { close: bytes[1] as number } : undefined;
      }
      return { channel, data: bytes.subarray(1) };
    },
  };
}

/** The first protocol the client offered that we support, in the client's order; undefined if none. */
export function negotiate(offered: readonly string[], supported: readonly string[]): string | undefined {
  return offered.find((protocol) => supported.includes(protocol));
}

/** Repeated protocol headers arrive joined with ", " in Node's req.headers; split them back. */
export function headerList(value: string | string[] | undefined): string[] {
  const values = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
}
