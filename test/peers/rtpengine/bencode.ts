/**
 * Bencode, the encoding of rtpengine's ng control protocol: integers `i42e`, byte strings `4:spam`, lists `l…e`,
 * dictionaries `d…e` with keys sorted bytewise. Strings decode to JS strings (UTF-8): ng carries SDP and text.
 */
export type BValue = number | string | Buffer | BValue[] | { [key: string]: BValue };

export function bencode(v: BValue): Buffer {
  const parts: Buffer[] = [];
  write(v, parts);
  return Buffer.concat(parts);
}

function write(v: BValue, out: Buffer[]): void {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new TypeError(`bencode: ${v} is not an integer`);
    out.push(Buffer.from(`i${v}e`));
  } else if (typeof v === 'string' || Buffer.isBuffer(v)) {
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    out.push(Buffer.from(`${b.length}:`), b);
  } else if (Array.isArray(v)) {
    out.push(Buffer.from('l'));
    for (const x of v) write(x, out);
    out.push(Buffer.from('e'));
  } else {
    out.push(Buffer.from('d'));
    const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const k of keys) {
      write(k, out);
      write(v[k]!, out);
    }
    out.push(Buffer.from('e'));
  }
}

/** Decodes one complete value; throws on trailing bytes or malformed input. */
export function bdecode(buf: Buffer): BValue {
  const [v, end] = read(buf, 0);
  if (end !== buf.length) throw new SyntaxError(`bdecode: ${buf.length - end} trailing bytes`);
  return v;
}

function read(buf: Buffer, pos: number): [BValue, number] {
  const c = buf[pos];
  if (c === undefined) throw new SyntaxError('bdecode: unexpected end');
  if (c === 0x69 /* i */) {
    const end = buf.indexOf(0x65, pos);
    if (end < 0) throw new SyntaxError('bdecode: unterminated integer');
    const n = Number(buf.toString('latin1', pos + 1, end));
    if (!Number.isInteger(n)) throw new SyntaxError('bdecode: bad integer');
    return [n, end + 1];
  }
  if (c === 0x6c /* l */) {
    const list: BValue[] = [];
    pos++;
    while (buf[pos] !== 0x65) {
      const [v, next] = read(buf, pos);
      list.push(v);
      pos = next;
    }
    return [list, pos + 1];
  }
  if (c === 0x64 /* d */) {
    const dict: { [key: string]: BValue } = {};
    pos++;
    while (buf[pos] !== 0x65) {
      const [k, afterKey] = read(buf, pos);
      if (typeof k !== 'string') throw new SyntaxError('bdecode: dictionary key is not a string');
      const [v, next] = read(buf, afterKey);
      dict[k] = v;
      pos = next;
    }
    return [dict, pos + 1];
  }
  if (c >= 0x30 && c <= 0x39) {
    const colon = buf.indexOf(0x3a, pos);
    if (colon < 0) throw new SyntaxError('bdecode: string without length colon');
    const len = Number(buf.toString('latin1', pos, colon));
    const end = colon + 1 + len;
    if (!Number.isInteger(len) || end > buf.length) throw new SyntaxError('bdecode: string runs past the end');
    return [buf.toString('utf8', colon + 1, end), end];
  }
  throw new SyntaxError(`bdecode: unexpected byte 0x${c.toString(16)} at ${pos}`);
}
