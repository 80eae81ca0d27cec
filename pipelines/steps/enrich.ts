// `enrich`: left join with a table (a compacted topic loaded by key), adding its row as a variable.
import { z } from 'zod';
import { didYouMean } from '../topology/diagnostics.ts';
import { duration, expression, identifier } from '../topology/durations.ts';
import type { FieldType } from '../topology/types.ts';
import { DYN, nullable } from '../topology/types.ts';
import { defineStep, type Output, type RecordContext, RejectedRecord, type SourceRecord, type Vars } from './step.ts';

const missing = z.enum(['keep', 'drop', 'deadLetter', 'wait']);

export const enrich = defineStep({
  kind: 'enrich',
  summary: 'Left join with a table: add the row found by key as a variable.',
  description:
    'Looks the key up in a table declared under `spec.tables` and adds the row as variable `as`. ' +
    '`onMissing` decides what happens when there is no row: `keep` (the variable is the `defaults`, or null), ' +
    '`drop`, `deadLetter`, or `wait` (hold the record until the row arrives or `waitTimeout` of wall-clock ' +
    'time passes, then apply `afterWait`). Offline, `wait` is exact with respect to the table updates the ' +
    'driver is given; in the worker, held records keep their offsets from being committed.',
  config: z.strictObject({
    table: z.string().describe('Name of a table declared under `spec.tables`.'),
    key: expression('the key to look up (converted to a string)'),
    as: identifier().optional().describe('Name of the variable that holds the row (default: the table name).'),
    onMissing: missing.default('keep').describe('What to do when the table has no row for the key.'),
    defaults: z
      .record(identifier(), expression('a default field value'))
      .optional()
      .describe(
        "With `onMissing: keep`, the row used when none is found: these fields, and the table's other fields as null " +
          '(typed as nullable for later steps and sinks). Without it the variable itself is null.',
      ),
    waitTimeout: duration().prefault('30s').describe('With `onMissing: wait`, how long to hold a record.'),
    afterWait: z
      .enum(['keep', 'drop', 'deadLetter'])
      .default('deadLetter')
      .describe('With `onMissing: wait`, what to do when the timeout passes.'),
  }),
  examples: [
    { table: 'customers', key: 'event.data.customerId', as: 'customer', onMissing: 'keep' },
    { table: 'products', key: 'item.productId', onMissing: 'wait', waitTimeout: '1m', afterWait: 'deadLetter' },
  ],
  stateful: true,
  describe: (c) => `${c.table} by ${c.key}`,
  tables: (c) => [c.table],
  idHint: (c) => c.as ?? c.table,
  check(c, ctx) {
    const table = ctx.tables.get(c.table);
    if (!table)
      ctx.report(
        'ref-unknown-table',
        `table '${c.table}' is not declared`,
        ['table'],
        didYouMean(c.table, ctx.tables.keys()),
      );
    ctx.expr(c.key, ['key']);
    const usesDlq = c.onMissing === 'deadLetter' || (c.onMissing === 'wait' && c.afterWait === 'deadLetter');
    if (usesDlq && !ctx.hasDeadLetter) {
      ctx.report('ref-dead-letter-missing', 'this step dead-letters records but `spec.errors.deadLetter` is not set', [
        'onMissing',
      ]);
    }
    if (c.defaults) for (const [f, e] of Object.entries(c.defaults)) ctx.expr(e, ['defaults', f], { scope: {} });
    let row: FieldType = table?.row ?? DYN;
    const keeps = c.onMissing === 'keep' || (c.onMissing === 'wait' && c.afterWait === 'keep');
    if (keeps && !c.defaults) row = nullable(row);
    else if (keeps && c.defaults && row.kind === 'record') {
      // The default row has every field of the table: those without a default are null when no row is found.
      const given = Object.keys(c.defaults);
      for (const f of given) {
        if (!(f in row.fields)) {
          ctx.report(
            'expr-unknown-field',
            `table '${c.table}' has no field '${f}'`,
            ['defaults', f],
            didYouMean(f, Object.keys(row.fields)),
          );
        }
      }
      const fields = Object.fromEntries(
        Object.entries(row.fields).map(([f, t]) => [f, given.includes(f) ? t : nullable(t)]),
      );
      row = { ...row, fields };
    }
    return { ...ctx.scope, [c.as ?? c.table]: row };
  },
  create(c, ctx) {
    const key = ctx.compile(c.key);
    const table = ctx.table(c.table);
    const as = c.as ?? c.table;
    const given = c.defaults
      ? Object.fromEntries(Object.entries(c.defaults).map(([f, e]) => [f, ctx.compile(e).evaluate({})]))
      : null;
    // Every field of the table's rows, null unless defaulted, so that `as.field` reads null rather than failing.
    const defaults = given && { ...Object.fromEntries(table.fields().map((f) => [f, null])), ...given };
    interface Held {
      vars: Vars;
      rc: RecordContext;
      deadline: number;
    }
    const waiting = new Map<string, Held[]>();
    const ready = new Set<string>();
    if (c.onMissing === 'wait') table.onUpsert((k) => waiting.has(k) && ready.add(k));
    const onAbsent = (
      policy: 'keep' | 'drop' | 'deadLetter',
      k: string,
      vars: Vars,
      rc: RecordContext,
      out: Output,
    ) => {
      if (policy === 'keep') {
        vars[as] = defaults ? { ...defaults } : null;
        out.emit(vars, rc);
      } else if (policy === 'deadLetter') {
        out.reject(rc, new RejectedRecord('MissingTableRow', `no row in table '${c.table}' for key '${k}'`));
      }
    };
    return {
      process(vars, rc, out) {
        const k = String(key.evaluate(vars));
        const row = table.get(k);
        if (row !== undefined) {
          vars[as] = row;
          out.emit(vars, rc);
        } else if (c.onMissing === 'wait') {
          const list = waiting.get(k) ?? [];
          // The deadline starts at the end of this batch (the next time the plan reads its clock).
          list.push({ vars, rc, deadline: -1 });
          waiting.set(k, list);
        } else onAbsent(c.onMissing, k, vars, rc, out);
      },
      advance(t, out) {
        for (const k of ready) {
          const row = table.get(k);
          const list = waiting.get(k);
          if (row === undefined || !list) continue;
          waiting.delete(k);
          for (const h of list) {
            h.vars[as] = row;
            out.emit(h.vars, h.rc);
          }
        }
        ready.clear();
        for (const [k, list] of waiting) {
          for (const h of list) if (h.deadline < 0) h.deadline = t.now + c.waitTimeout;
          const expired = t.final ? list : list.filter((h) => h.deadline <= t.now);
          if (expired.length === 0) continue;
          const rest = t.final ? [] : list.filter((h) => h.deadline > t.now);
          if (rest.length === 0) waiting.delete(k);
          else waiting.set(k, rest);
          for (const h of expired) onAbsent(c.afterWait, k, h.vars, h.rc, out);
        }
      },
      snapshot: () => ({ waiting: [...waiting].map(([k, l]) => [k, l.length]) }),
      *held(): Iterable<{ key: string; record: SourceRecord }> {
        for (const [key, l] of waiting) for (const h of l) yield { key, record: h.rc.record };
      },
    };
  },
});
