// The PromQL Spillway ships (PrometheusRule alerts and the Grafana dashboard), for tests that parse it
// and check that every metric it names is one Spillway exports.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { parse } from 'yaml';

const monitoring = join(import.meta.dirname, '..', '..', 'manifests', 'monitoring');

export interface ShippedExpression {
  readonly where: string;
  readonly expr: string;
}

export function shippedExpressions(): ShippedExpression[] {
  const rule = parse(readFileSync(join(monitoring, 'prometheusrule.yaml'), 'utf8')) as {
    spec: { groups: { rules: { alert: string; expr: string }[] }[] };
  };
  const dashboard = JSON.parse(readFileSync(join(monitoring, 'dashboard.json'), 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  return [
    ...rule.spec.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
    ...dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: `panel ${p.title}`, expr: t.expr }))),
  ];
}

/** PromQL syntax errors in an expression (none: an empty list). */
export function promqlErrors(expr: string): string[] {
  const errors: string[] = [];
  parser.parse(expr).iterate({
    enter(node) {
      if (node.type.isError)
        errors.push(`syntax error at ${node.from}: ${expr.slice(node.from, node.from + 20)}`);
    },
  });
  return errors;
}

/** The Spillway metric families an expression reads (histogram series mapped to their family). */
export function spillwayFamilies(expr: string): string[] {
  return [
    ...new Set(
      [...expr.matchAll(/\bspillway_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')),
    ),
  ];
}
