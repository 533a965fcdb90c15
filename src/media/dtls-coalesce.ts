/**
 * One DTLS flight in as few datagrams as fit. werift writes each handshake record of a flight (Certificate,
 * ClientKeyExchange, CertificateVerify, ChangeCipherSpec, Finished) as its own UDP datagram, back to back. RFC 6347
 * §4.1.1 allows several records per datagram, and libwebrtc (BoringSSL) packs a flight that way; a multi-threaded
 * relay that hands a flight's datagrams to its DTLS stack out of order can otherwise lose the whole flight, every
 * retransmission included (rtpengine with two threads left one handshake in four unfinished). Records sent in one
 * synchronous burst are joined, up to a datagram size that stays under any path MTU.
 */

/** What werift's ICE connection offers: `send` is an instance property, so it can be wrapped per connection. */
export interface DatagramSender {
  send: (data: Buffer) => Promise<void>;
}

const MAX_DATAGRAM = 1200;

/** DTLS content types 20–63 (RFC 7983 demultiplexing); everything else passes straight through. */
function isDtls(data: Buffer): boolean {
  return data.length > 0 && data[0]! >= 20 && data[0]! <= 63;
}

export function coalesceDtlsFlights(conn: DatagramSender, maxDatagram = MAX_DATAGRAM): void {
  const send = conn.send;
  let pending: Buffer[] = [];
  let flushing: Promise<void> | null = null;
  const flush = async (): Promise<void> => {
    const records = pending;
    pending = [];
    flushing = null;
    let batch: Buffer[] = [];
    let size = 0;
    const sends: Promise<void>[] = [];
    for (const r of records) {
      if (batch.length > 0 && size + r.length > maxDatagram) {
        sends.push(send(batch.length === 1 ? batch[0]! : Buffer.concat(batch, size)));
        batch = [];
        size = 0;
      }
      batch.push(r);
      size += r.length;
    }
    if (batch.length > 0) sends.push(send(batch.length === 1 ? batch[0]! : Buffer.concat(batch, size)));
    await Promise.all(sends);
  };
  conn.send = (data: Buffer): Promise<void> => {
    if (!isDtls(data)) return send(data);
    pending.push(data);
    flushing ??= Promise.resolve().then(flush);
    return flushing;
  };
}
