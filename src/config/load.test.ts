import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ConfigError, loadConfig, loadSecrets } from './load.js';

const DEFAULT = ['config/default.yaml'];

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

function yamlFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'wagw-cfg-')), 'c.yaml');
  writeFileSync(file, text);
  return file;
}

describe('loadConfig', () => {
  it('loads the shipped defaults with no environment', () => {
    const cfg = loadConfig({ env: {}, files: DEFAULT });
    expect(cfg.http.port).toBe(8080);
    expect(cfg.sip.ringTimeoutMs).toBeLessThan(30_000);
  });

  it('applies WAGW_HTTP_PORT and other typed env overrides', () => {
    const cfg = loadConfig({ env: { WAGW_HTTP_PORT: '9191', WAGW_MEDIA_OPUS_FEC: 'false', WAGW_SIP_CODECS: 'PCMA,PCMU' }, files: DEFAULT });
    expect(cfg.http.port).toBe(9191);
    expect(cfg.media.opusFec).toBe(false);
    expect(cfg.sip.codecs).toEqual(['PCMA', 'PCMU']);
  });

  it('takes structured values (lists of objects) as JSON from the environment', () => {
    const numbers = [{ phoneNumberId: '436666719526789', displayNumber: '13175551399', sipTarget: 'sip:queue@127.0.0.1:5080' }];
    const cfg = loadConfig({ env: { WAGW_WHATSAPP_NUMBERS: JSON.stringify(numbers) }, files: DEFAULT });
    expect(cfg.whatsapp.numbers[0]).toMatchObject(numbers[0]!);
  });

  it('businessCalls: guard mode and number rules from the environment; a rule naming an unknown number is an error', () => {
    const numbers = JSON.stringify([{ phoneNumberId: '111', displayNumber: '447700900555', sipTarget: 'sip:q@127.0.0.1' }]);
    const rules = [{ username: 'pbx-a', phoneNumberId: '111' }, { dialedPrefix: '801', stripDialedPrefix: true, phoneNumberId: '111' }];
    const cfg = loadConfig({ env: { WAGW_WHATSAPP_NUMBERS: numbers, WAGW_BUSINESSCALLS_SOURCE_GUARD: 'either', WAGW_BUSINESSCALLS_NUMBER_RULES: JSON.stringify(rules) }, files: DEFAULT });
    expect(cfg.businessCalls.sourceGuard).toBe('either');
    expect(cfg.businessCalls.numberRules).toMatchObject(rules);
    expect(cfg.businessCalls.digestRealm).toBe('wa-sip-gateway');
    // (Section names are not split at capitals: WAGW_BUSINESSCALLS_…)
    expect(problems(() => loadConfig({ env: { WAGW_BUSINESSCALLS_SOURCE_GUARD: 'password' }, files: DEFAULT }))[0])
      .toMatch(/^config error: businessCalls.sourceGuard = "password" \(from WAGW_BUSINESSCALLS_SOURCE_GUARD\)/);
    expect(problems(() => loadConfig({ env: { WAGW_WHATSAPP_NUMBERS: numbers, WAGW_BUSINESSCALLS_NUMBER_RULES: '[{"callingPrefix":"44","phoneNumberId":"999"}]' }, files: DEFAULT }))[0])
      .toMatch(/^config error: businessCalls.numberRules.0.phoneNumberId = "999".*expected the phoneNumberId of one of whatsapp.numbers/);
  });

  it('names key, value, source and expectation for a wrong type', () => {
    expect(problems(() => loadConfig({ env: { WAGW_HTTP_PORT: 'eighty' }, files: DEFAULT }))).toEqual([
      'config error: http.port = "eighty" (from WAGW_HTTP_PORT): expected a value of type number',
    ]);
  });

  it('reports an out-of-range number', () => {
    const [line] = problems(() => loadConfig({ env: { WAGW_HTTP_PORT: '70000' }, files: DEFAULT }));
    expect(line).toMatch(/http\.port = 70000 .*at most 65535/);
  });

  it('refuses a Graph API version older than the Calling API (v17.0)', () => {
    const [line] = problems(() => loadConfig({ env: { WAGW_WHATSAPP_GRAPH_API_VERSION: 'v16.0' }, files: DEFAULT }));
    expect(line).toMatch(/whatsapp\.graphApiVersion = "v16\.0".*v17\.0 or later/);
  });

  it('reports a value outside an enum', () => {
    const [line] = problems(() => loadConfig({ env: { WAGW_LOG_LEVEL: 'loud' }, files: DEFAULT }));
    expect(line).toMatch(/log\.level = "loud".*one of "fatal"/);
  });

  it('media.whatsappCodecs: G.711 before Opus from the environment; a list without opus is refused (Meta always carries Opus)', () => {
    expect(loadConfig({ env: { WAGW_MEDIA_WHATSAPP_CODECS: 'PCMU,PCMA,opus' }, files: DEFAULT }).media.whatsappCodecs).toEqual(['PCMU', 'PCMA', 'opus']);
    const [line] = problems(() => loadConfig({ env: { WAGW_MEDIA_WHATSAPP_CODECS: 'PCMU' }, files: DEFAULT }));
    expect(line).toMatch(/media\.whatsappCodecs.*keeps opus/);
  });

  it('reports an unknown key in a file instead of ignoring a typo', () => {
    const [line] = problems(() => loadConfig({ env: {}, files: [...DEFAULT, yamlFile('http:\n  prot: 1\n')] }));
    expect(line).toMatch(/unknown keys \(prot\)/);
  });

  it('reports every problem at once, one line each', () => {
    const lines = problems(() => loadConfig({ env: { WAGW_HTTP_PORT: 'x', WAGW_LOG_LEVEL: 'loud' }, files: DEFAULT }));
    expect(lines).toHaveLength(2);
  });

  it('checks relations between keys', () => {
    const [line] = problems(() => loadConfig({ env: { WAGW_MEDIA_RTP_PORT_MIN: '26000' }, files: DEFAULT }));
    expect(line).toMatch(/media\.rtpPortMax = 24999: expected a port not below media\.rtpPortMin/);
  });

  it('media.sipMediaAddress must be an IPv4 address the PBX can send RTP to', () => {
    for (const bad of ['pbx-media.example.com', '0.0.0.0', '::1', '10.0.0.300', '']) {
      const [line] = problems(() => loadConfig({ env: { WAGW_MEDIA_SIP_MEDIA_ADDRESS: bad }, files: DEFAULT }));
      expect(line, bad).toMatch(/^config error: media\.sipMediaAddress = .* \(from WAGW_MEDIA_SIP_MEDIA_ADDRESS\): expected an IPv4 address the PBX can send RTP to/);
    }
    expect(loadConfig({ env: { WAGW_MEDIA_SIP_MEDIA_ADDRESS: '10.0.0.5' }, files: DEFAULT }).media.sipMediaAddress).toBe('10.0.0.5');
  });

  it('media ports below 1024 are a config error, not a PortPool failure at start', () => {
    expect(problems(() => loadConfig({ env: { WAGW_MEDIA_RTP_PORT_MIN: '1000' }, files: DEFAULT }))).toEqual([
      'config error: media.rtpPortMin = 1000 (from WAGW_MEDIA_RTP_PORT_MIN): expected a value of at least 1024',
    ]);
    expect(problems(() => loadConfig({ env: { WAGW_MEDIA_WEBRTC_PORT_MIN: '80' }, files: DEFAULT }))[0]).toMatch(/^config error: media\.webrtcPortMin = 80 .*at least 1024/);
    expect(loadConfig({ env: { WAGW_MEDIA_RTP_PORT_MIN: '1024', WAGW_MEDIA_RTP_PORT_MAX: '2000' }, files: DEFAULT }).media.rtpPortMin).toBe(1024);
  });

  it('the SIP-side RTP and WebRTC port ranges may not overlap (RTCP on the port above an even RTP port included)', () => {
    const overlap = problems(() => loadConfig({ env: { WAGW_MEDIA_WEBRTC_PORT_MIN: '24000' }, files: DEFAULT }));
    expect(overlap).toHaveLength(1);
    expect(overlap[0]).toMatch(/^config error: media\.webrtcPortMin = 24000 \(from WAGW_MEDIA_WEBRTC_PORT_MIN\): expected a WebRTC port range \(24000–29999\) apart from the SIP-side RTP range .*\(20000–24999\)/);
    // WebRTC inside the RTP range, and RTP's last RTCP port (24001) on WebRTC's first.
    expect(problems(() => loadConfig({ env: { WAGW_MEDIA_WEBRTC_PORT_MIN: '21000', WAGW_MEDIA_WEBRTC_PORT_MAX: '21100' }, files: DEFAULT }))).toHaveLength(1);
    expect(problems(() => loadConfig({ env: { WAGW_MEDIA_RTP_PORT_MAX: '24000', WAGW_MEDIA_WEBRTC_PORT_MIN: '24001' }, files: DEFAULT }))[0]).toMatch(/20000–24001, RTCP included/);
    // Adjacent ranges are fine, in either order.
    expect(loadConfig({ env: { WAGW_MEDIA_RTP_PORT_MAX: '24001', WAGW_MEDIA_WEBRTC_PORT_MIN: '24002' }, files: DEFAULT }).media.webrtcPortMin).toBe(24002);
    expect(loadConfig({ env: { WAGW_MEDIA_WEBRTC_PORT_MIN: '10000', WAGW_MEDIA_WEBRTC_PORT_MAX: '19999' }, files: DEFAULT }).media.webrtcPortMax).toBe(19999);
  });

  it('a port range of one odd port (no even port to hand out) is a config error', () => {
    expect(problems(() => loadConfig({ env: { WAGW_MEDIA_RTP_PORT_MIN: '20001', WAGW_MEDIA_RTP_PORT_MAX: '20001' }, files: DEFAULT }))[0])
      .toMatch(/^config error: media\.rtpPortMax = 20001 .*expected a range holding an even port/);
  });

  it('validates business numbers in a file', () => {
    const file = yamlFile('whatsapp:\n  numbers:\n    - phoneNumberId: "abc"\n      displayNumber: "13175551399"\n      sipTarget: "not a uri"\n');
    const lines = problems(() => loadConfig({ env: {}, files: [...DEFAULT, file] }));
    expect(lines.some((l) => l.includes('whatsapp.numbers.0.phoneNumberId = "abc"'))).toBe(true);
    expect(lines.some((l) => l.includes('whatsapp.numbers.0.sipTarget = "not a uri"'))).toBe(true);
  });

  it('reports a file that is not YAML', () => {
    const [line] = problems(() => loadConfig({ env: {}, files: [...DEFAULT, yamlFile('http: [unclosed\n')] }));
    expect(line).toMatch(/^config file .*c\.yaml:/);
  });

  it('never shows the password of a mistyped WAGW_STORE_DATABASE_URL: the line names the variable, scheme and host', () => {
    const [line] = problems(() => loadConfig({ env: { WAGW_STORE_DATABASE_URL: 'postgress://gw:S3cretPw@db.internal:5432/calls' }, files: DEFAULT }));
    expect(line).toMatch(/^config error: store\.databaseUrl = "postgress:\/\/db\.internal:5432…" \(from WAGW_STORE_DATABASE_URL\): expected .*postgres:\/\//);
    expect(line).not.toMatch(/S3cretPw|gw:/);
    // Without a scheme it is no URL at all: nothing of it is shown.
    const [bare] = problems(() => loadConfig({ env: { WAGW_STORE_DATABASE_URL: 'gw:S3cretPw@db.internal/calls' }, files: DEFAULT }));
    expect(bare).toMatch(/^config error: store\.databaseUrl = "\(not shown: may hold a secret\)" \(from WAGW_STORE_DATABASE_URL\)/);
    expect(bare).not.toMatch(/S3cretPw|db\.internal/);
  });

  it('redacts credentials inside a whole section shown for an unknown key, and tokens in any URL', () => {
    const file = yamlFile('store:\n  databaseUrl: "postgres://gw:S3cretPw@db.internal/calls"\n  retentionDay: 3\n'
      + 'streaming:\n  targets:\n    asr:\n      url: "https://asr.example.com/v1/stream?token=T0kenXyz"\n');
    const lines = problems(() => loadConfig({ env: {}, files: [...DEFAULT, file] }));
    expect(lines).toHaveLength(2);
    expect(lines.join('\n')).not.toMatch(/S3cretPw|T0kenXyz/);
    expect(lines.find((l) => l.includes('unknown keys'))).toContain('"databaseUrl":"postgres://db.internal…"');
    expect(lines.find((l) => l.includes('streaming.targets.asr.url'))).toContain('"https://asr.example.com/v1/stream…"');
  });

  it('refuses a WAGW_CONFIG that does not exist', () => {
    expect(problems(() => loadConfig({ env: { WAGW_CONFIG: '/nonexistent.yaml' } }))[0]).toMatch(/WAGW_CONFIG/);
  });
});

describe('loadSecrets', () => {
  it('reads secrets from env or from the file named by <NAME>_FILE', () => {
    const file = yamlFile('s3cr3t\n');
    const s = loadSecrets({ WAGW_APP_SECRET_FILE: file, WAGW_GRAPH_TOKEN: 'tok', WAGW_ADMIN_KEYS: 'ops:admin:k1' });
    expect(s.appSecret).toBe('s3cr3t');
    expect(s.graphToken).toBe('tok');
    expect(s.adminKeys.get('k1')).toBe('ops:admin');
  });

  it('reads SIP digest credentials from WAGW_SIP_CREDENTIALS or its _FILE, and names a bad entry without its password', () => {
    expect([...loadSecrets({ WAGW_SIP_CREDENTIALS: 'pbx-a:pw1,pbx-b:p:w2' }).sipCredentials!]).toEqual([['pbx-a', 'pw1'], ['pbx-b', 'p:w2']]);
    expect(loadSecrets({ WAGW_SIP_CREDENTIALS_FILE: yamlFile('pbx-c:pw3\n') }).sipCredentials!.get('pbx-c')).toBe('pw3');
    const lines = problems(() => loadSecrets({ WAGW_SIP_CREDENTIALS: 'pbx-a:', WAGW_ADMIN_KEYS: 'ops:admin:k1' }));
    expect(lines[0]).toMatch(/WAGW_SIP_CREDENTIALS entry "pbx-a:…"/);
  });

  it('rejects an admin key with an unknown role', () => {
    expect(problems(() => loadSecrets({ WAGW_ADMIN_KEYS: 'ops:root:k1' }))[0]).toMatch(/WAGW_ADMIN_KEYS/);
  });

  it('names a bad WAGW_ADMIN_KEYS entry by its position and problem, never by its text (a bare key is the key)', () => {
    const lines = problems(() => loadSecrets({ WAGW_ADMIN_KEYS: 'ops:admin:k1, Sup3rSecretKey ,Half:Secret,x9Q:root:k2,ops2:supervisor:' }));
    expect(lines).toEqual([
      'config error: WAGW_ADMIN_KEYS entry 2 of 5 has 1 field: expected name:role:key (or name:role:tenant:key) with role admin, supervisor or reporting',
      'config error: WAGW_ADMIN_KEYS entry 3 of 5 has 2 fields: expected name:role:key (or name:role:tenant:key) with role admin, supervisor or reporting',
      'config error: WAGW_ADMIN_KEYS entry 4 of 5 has no valid role: expected name:role:key (or name:role:tenant:key) with role admin, supervisor or reporting',
      'config error: WAGW_ADMIN_KEYS entry 5 (name "ops2") has an empty name or key: expected name:role:key (or name:role:tenant:key) with role admin, supervisor or reporting',
    ]);
    expect(lines.join('\n')).not.toMatch(/Sup3r|Half|Secret|x9Q/);
  });
});
