// What a number-valued expression holds (an integer, a count, epoch milliseconds), read from its syntax: CEL
// types every record number as a double, so the checker alone cannot tell a copied Avro long from a price. Sinks
// use it to pick column types; expressions are unaffected. Only what is certain is said: anything else stays a
// plain double (Float64).
import type { FieldType, NumberSort, Scope } from './types.ts';

/** The parts of a cel-js AST node read here. */
export interface CelNode {
  op: string;
  args: unknown;
}

const integral = (s: NumberSort | undefined) => s === 'integer' || s === 'count';

/** The type of the field a plain path (`event.data.placedAt`, `qty`) names, or undefined. */
export function pathType(node: CelNode, scope: Scope): FieldType | undefined {
  if (node.op === 'id') return typeof node.args === 'string' ? scope[node.args] : undefined;
  if (node.op !== '.') return undefined;
  const [target, field] = node.args as [CelNode, string];
  const t = pathType(target, scope);
  return t?.kind === 'record' && typeof field === 'string' ? t.fields[field] : undefined;
}

export function numberSort(node: CelNode, scope: Scope): NumberSort | undefined {
  const args = node.args as CelNode[];
  switch (node.op) {
    case 'value':
      return typeof node.args === 'bigint' ? 'integer' : undefined;
    case 'id':
    case '.': {
      const t = pathType(node, scope);
      return t?.kind === 'double' ? t.number : undefined;
    }
    case '-_':
      return integral(numberSort(node.args as CelNode, scope)) ? 'integer' : undefined;
    case '+':
    case '-': {
      const a = numberSort(args[0]!, scope);
      const b = numberSort(args[1]!, scope);
      if (a === 'epochMs' && integral(b)) return 'epochMs';
      if (node.op === '+' && integral(a) && b === 'epochMs') return 'epochMs';
      if (node.op === '-' && a === 'epochMs' && b === 'epochMs') return 'integer';
      if (a === 'count' && b === 'count' && node.op === '+') return 'count';
      return integral(a) && integral(b) ? 'integer' : undefined;
    }
    case '*':
    case '%':
      return integral(numberSort(args[0]!, scope)) && integral(numberSort(args[1]!, scope)) ? 'integer' : undefined;
    case '?:': {
      const a = numberSort(args[1]!, scope);
      return a !== undefined && a === numberSort(args[2]!, scope) ? a : undefined;
    }
    case 'call': {
      const [fn] = node.args as [string, CelNode[]];
      if (fn === 'size') return 'count';
      return fn === 'int' || fn === 'uint' ? 'integer' : undefined;
    }
    default:
      return undefined;
  }
}

/**
 * The checker's type, made more precise from the syntax: a plain path keeps the type of the field it names
 * (nullable scalars are `dyn` to the checker), and a number says what it holds where that is certain.
 */
export function refineType(type: FieldType, node: CelNode, scope: Scope): FieldType {
  const named = pathType(node, scope);
  if (named && (named.kind === type.kind || type.kind === 'dyn')) return named;
  if (type.kind !== 'double') return type;
  const number = numberSort(node, scope);
  return number ? { ...type, number } : type;
}
