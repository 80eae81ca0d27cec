// `explode`: one record per element of a list (a flatMap), each built like a `map` with the element and its
// position in scope beside the record's own variables: order lines without a TypeScript module.
import { z } from 'zod';
import { expression, identifier } from '../topology/durations.ts';
import type { FieldType, Scope } from '../topology/types.ts';
import { COUNT, DYN, describeType } from '../topology/types.ts';
import { defineStep, shortHash, type Vars } from './step.ts';

export const explode = defineStep({
  kind: 'explode',
  summary: 'One record per element of a list (flatMap): each built from the element and the record it came from.',
  description:
    '`list` is a CEL expression that gives a list; for each element, in order, the output record has exactly the ' +
    '`fields` named (as with `map`), computed with the element as `as` (default `item`) and its position from 0 as ' +
    '`index` (default `index`), besides the variables at this step. An empty or missing list gives no record; ' +
    "each output record keeps the input record's key, offset and time.",
  config: z
    .object({
      list: expression('the list whose elements become records'),
      as: identifier().default('item').describe('the name of the element in `fields` (default `item`)'),
      index: identifier().default('index').describe('the name of its position, from 0 (default `index`)'),
      fields: z
        .record(identifier(), expression('the value of the field'))
        .refine((r) => Object.keys(r).length > 0, 'an explode needs at least one field')
        .describe('the output record: each key a field, each value a CEL expression (as in `map`)'),
    })
    .strict(),
  examples: [
    {
      list: 'event.data.items',
      as: 'item',
      index: 'line',
      fields: { orderId: 'event.data.orderId', line: 'line', productId: 'item.productId', quantity: 'item.quantity' },
    },
  ],
  stateful: false,
  describe: (c) => `${c.list} as ${c.as}: ${Object.keys(c.fields).join(', ')}`,
  idHint: (c) => shortHash(`${c.list}|${Object.keys(c.fields).join(',')}`),
  check(c, ctx) {
    const list = ctx.expr(c.list, ['list']);
    let item: FieldType = DYN;
    if (list?.kind === 'list') item = list.items;
    else if (list && list.kind !== 'dyn') {
      ctx.report('expr-type', `\`list\` must give a list; it gives ${describeType(list)}`, ['list']);
    }
    const scope: Scope = { ...ctx.scope, [c.as]: item, [c.index]: COUNT };
    const out: Scope = {};
    for (const [name, src] of Object.entries(c.fields)) out[name] = ctx.expr(src, ['fields', name], { scope }) ?? DYN;
    return out;
  },
  create(c, ctx) {
    const list = ctx.compile(c.list);
    const names = Object.keys(c.fields);
    const exprs = names.map((n) => ctx.compile(c.fields[n]!));
    return {
      process(vars, rc, out) {
        const elements = list.evaluate(vars);
        if (elements === null || elements === undefined) return;
        if (!Array.isArray(elements)) throw new TypeError(`explode: \`${c.list}\` gave ${typeof elements}, not a list`);
        for (let i = 0; i < elements.length; i++) {
          const scope: Vars = { ...vars, [c.as]: elements[i], [c.index]: i };
          const next: Vars = {};
          for (let f = 0; f < names.length; f++) next[names[f]!] = exprs[f]!.evaluate(scope);
          out.emit(next, rc);
        }
      },
    };
  },
});
