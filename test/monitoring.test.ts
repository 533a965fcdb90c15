/**
 * monitoring/alerts.yaml and monitoring/grafana-dashboard.json name only metrics and labels the gateway exports, and
 * README's catalogue documents every metric the gateway exports.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { noteSkipped } from './peers/drachtio.js';
import { parse as parseYaml } from 'yaml';
import { createMetrics } from '../src/observability/metrics.js';

const metrics = createMetrics();
// Prometheus's own checker, when installed (Debian package prometheus): real PromQL parsing of every expression.
const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
if (!promtool) noteSkipped('promtool not found (apt-get install prometheus)', 1, 'PromQL syntax of alerts and dashboard');
const HIST_SUFFIX = /_(bucket|sum|count)$/;
/** Labels Prometheus adds at scrape time, or that histograms carry. */
const IMPLICIT_LABELS = new Set(['le', 'instance', 'job', 'quantile']);

function labelsOf(name: string): string[] | undefined {
  const m = metrics.registry.getSingleMetric(name) ?? metrics.registry.getSingleMetric(name.replace(HIST_SUFFIX, ''));
  return m ? (m as unknown as { labelNames: string[] }).labelNames ?? [] : undefined;
}

/** Problems with one PromQL expression: unknown metrics, unknown labels in matchers or in by (…). */
function checkExpr(expr: string): string[] {
  const problems: string[] = [];
  const names = [...expr.matchAll(/\b((?:wagw|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
  if (names.length === 0) problems.push(`no metric in: ${expr}`);
  for (const n of names) if (!labelsOf(n)) problems.push(`unknown metric ${n}`);
  for (const [, name, matchers] of expr.matchAll(/\b((?:wagw|process|nodejs)_[a-z0-9_]+)\{([^}]*)\}/g)) {
    const known = labelsOf(name!) ?? [];
    for (const [, label] of matchers!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
      if (!known.includes(label!) && !IMPLICIT_LABELS.has(label!)) problems.push(`${name} has no label ${label}`);
    }
  }
  const allLabels = new Set(names.flatMap((n) => labelsOf(n) ?? []));
  for (const [, list] of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
    for (const label of list!.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (!allLabels.has(label) && !IMPLICIT_LABELS.has(label)) problems.push(`by (${label}): no metric of the expression has it`);
    }
  }
  return problems;
}

interface Rule { alert: string; expr: string; for?: string; labels: { severity: string }; annotations: { summary: string } }

describe('monitoring/alerts.yaml', () => {
  const doc = parseYaml(readFileSync('monitoring/alerts.yaml', 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
  const rules = doc.groups.flatMap((g) => g.rules);

  it('is a Prometheus rule file whose every rule has a name, an expression, a severity and a summary', () => {
    expect(doc.groups.length).toBeGreaterThan(0);
    for (const g of doc.groups) expect(g.name).toMatch(/\S/);
    for (const r of rules) {
      expect(r.alert).toMatch(/^[A-Za-z][A-Za-z0-9]+$/);
      expect(r.expr).toMatch(/\S/);
      expect(['critical', 'warning', 'info']).toContain(r.labels.severity);
      expect(r.annotations.summary).toMatch(/\S/);
      if (r.for) expect(r.for).toMatch(/^\d+[smh]$/);
    }
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  it('has the alerts the issue asks for', () => {
    const exprOf = (name: string) => rules.find((r) => r.alert === name)?.expr ?? '';
    expect(exprOf('WagwCallsOfferedNoneAnswered')).toContain('wagw_calls_answered_total');
    expect(exprOf('WagwRejectRatioHigh')).toContain('wagw_calls_total');
    expect(exprOf('WagwGraphApiErrors')).toContain('wagw_graph_requests_total');
    expect(exprOf('WagwMosLow')).toMatch(/wagw_call_mos.*< 3\.5/s);
    expect(exprOf('WagwRtpPortsNearlyExhausted')).toContain('wagw_rtp_ports_free');
    expect(exprOf('WagwDrachtioDisconnected')).toContain('wagw_drachtio_connected');
    expect(exprOf('WagwWebhookSignatureFailures')).toContain('result="bad_signature"');
  });

  it.each(rules.map((r) => [r.alert, r.expr] as const))('%s names only exported metrics and labels', (_name, expr) => {
    expect(checkExpr(expr)).toEqual([]);
  });
});

describe('monitoring/grafana-dashboard.json', () => {
  interface Panel { id: number; type: string; title: string; targets?: { expr: string; refId: string }[]; gridPos: { h: number; w: number; x: number; y: number } }
  const dash = JSON.parse(readFileSync('monitoring/grafana-dashboard.json', 'utf8')) as { title: string; uid: string; panels: Panel[]; __inputs: { name: string }[] };
  const panels = dash.panels.filter((p) => p.type !== 'row');
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  it('is importable: title, uid, a Prometheus datasource input, panels with unique ids inside the 24-column grid', () => {
    expect(dash.title).toBe('wa-sip-gateway');
    expect(dash.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dash.__inputs.map((i) => i.name)).toContain('DS_PROMETHEUS');
    expect(new Set(dash.panels.map((p) => p.id)).size).toBe(dash.panels.length);
    for (const p of dash.panels) expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    for (const p of panels) expect(p.targets?.length, p.title).toBeGreaterThan(0);
  });

  it.each(exprs.map((e) => [e] as const))('%s names only exported metrics and labels', (expr) => {
    expect(checkExpr(expr)).toEqual([]);
  });

  it('has panels for the catalogue the issue lists', () => {
    const all = exprs.join('\n');
    for (const name of [
      'wagw_calls_total', 'wagw_active_calls', 'wagw_call_setup_seconds', 'wagw_graph_request_seconds', 'wagw_graph_requests_total',
      'wagw_webhooks_total', 'wagw_webhook_events_total', 'wagw_sip_final_responses_total', 'wagw_rtp_packets_total',
      'wagw_rtp_packets_lost_total', 'wagw_rtp_jitter_seconds', 'wagw_call_mos', 'wagw_transcode_seconds', 'wagw_rtp_ports_free',
      'wagw_permission_requests_total', 'wagw_event_loop_lag_seconds', 'wagw_drachtio_connected',
    ]) expect(all, name).toContain(name);
  });
});

describe("README's metrics catalogue", () => {
  it('documents every wagw_ metric the gateway exports, with its type', async () => {
    const readme = readFileSync('README.md', 'utf8');
    const missing: string[] = [];
    for (const m of await metrics.registry.getMetricsAsJSON()) {
      if (!m.name.startsWith('wagw_')) continue;
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${m.name}\``));
      if (!row || !row.includes(`| ${m.type} |`)) missing.push(`${m.name} (${m.type})`);
    }
    expect(missing).toEqual([]);
  });

  it('lists each metric once, and only metrics the gateway registers', () => {
    const rows = readFileSync('README.md', 'utf8').split('\n').map((l) => /^\| `(wagw_[a-z0-9_]+)`/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
    const unknown = rows.filter((n) => !metrics.registry.getSingleMetric(n));
    const twice = rows.filter((n, i) => rows.indexOf(n) !== i);
    expect({ unknown, twice }).toEqual({ unknown: [], twice: [] });
  });
});

describe.skipIf(!promtool)('promtool', () => {
  it('accepts the alert rules and every dashboard expression', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wagw-promtool-'));
    try {
      const dash = JSON.parse(readFileSync('monitoring/grafana-dashboard.json', 'utf8')) as { panels: { id: number; targets?: { refId: string; expr: string }[] }[] };
      const rules = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ record: `dashboard:p${p.id}:${t.refId}`, expr: t.expr.replaceAll('$__rate_interval', '5m') })));
      writeFileSync(join(dir, 'dashboard-rules.yaml'), toYaml({ groups: [{ name: 'dashboard', rules }] }));
      for (const file of ['monitoring/alerts.yaml', join(dir, 'dashboard-rules.yaml')]) {
        const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
        expect(`${r.stdout}${r.stderr}`, file).toMatch(/SUCCESS/);
        expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
