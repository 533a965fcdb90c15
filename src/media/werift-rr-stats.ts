/**
 * Feeding werift's receive statistics from the fast RTP path. werift builds the RTCP receiver reports it sends to
 * WhatsApp from a StreamStatistics per SSRC (werift 0.24, src/media/receiver/statistics.ts); packets we take off
 * its path must still be counted there. Its own `add` parses every arrival time through a string
 * (Number.parseInt of a float) and reads the clock per packet; this does the same arithmetic on numbers.
 */

/** The fields of werift's StreamStatistics that `add` writes (its RR and getStats read them). */
export interface WeriftStreamStatistics {
  base_seq?: number;
  max_seq?: number;
  cycles: number;
  packets_received: number;
  bytesReceived: number;
  headerBytesReceived: number;
  lastPacketReceivedTimestamp?: number;
  clockRate: number;
  jitter_q4: number;
  last_arrival?: number;
  last_timestamp?: number;
}

/** werift's uint16Gt: a is after b in sequence-number order. */
function seqAfter(a: number, b: number): boolean {
  return (a < b && b - a > 0x8000) || (a > b && a - b < 0x8000);
}

/**
 * werift's StreamStatistics.add(packet, arrivalMs / 1000) for one packet: `seq` and `timestamp` from its RTP header,
 * `arrivalMs` its arrival in Unix milliseconds (werift stamps lastPacketReceivedTimestamp with the same clock).
 */
export function addToWeriftStats(st: WeriftStreamStatistics, seq: number, timestamp: number, headerBytes: number, payloadBytes: number, arrivalMs: number): void {
  const inOrder = st.max_seq === undefined || seqAfter(seq, st.max_seq);
  st.packets_received++;
  st.bytesReceived += payloadBytes;
  st.headerBytesReceived += headerBytes;
  st.lastPacketReceivedTimestamp = arrivalMs;
  if (st.base_seq === undefined) st.base_seq = seq;
  if (!inOrder) return;
  // werift: int(now * clockRate) with int = parseInt(String(x)): truncation for these magnitudes.
  const arrival = Math.trunc((arrivalMs / 1000) * st.clockRate);
  if (st.max_seq !== undefined && seq < st.max_seq) st.cycles += 1 << 16;
  st.max_seq = seq;
  if (timestamp !== st.last_timestamp && st.packets_received > 1) {
    const diff = Math.abs(arrival - (st.last_arrival ?? 0) - (timestamp - (st.last_timestamp ?? 0)));
    st.jitter_q4 += diff - ((st.jitter_q4 + 8) >> 4);
  }
  st.last_arrival = arrival;
  st.last_timestamp = timestamp;
}
