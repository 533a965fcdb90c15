/** Source address allow-list: IPv4 addresses and CIDRs; IPv4-mapped IPv6 addresses are compared as IPv4. */
export function sourceAllowed(address: string, allowed: readonly string[]): boolean {
  const ip = ipv4ToInt(address.replace(/^::ffff:/i, ''));
  if (ip === undefined) return false;
  return allowed.some((entry) => {
    const [base = '', bitsText] = entry.split('/');
    const net = ipv4ToInt(base);
    const bits = bitsText === undefined ? 32 : Number(bitsText);
    if (net === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return ((ip & mask) >>> 0) === ((net & mask) >>> 0);
  });
}

function ipv4ToInt(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n >>> 0;
}
