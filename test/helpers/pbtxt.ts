/**
 * A reader of protobuf text format (what Triton's config.pbtxt is written in) and a checker of a parsed message
 * against a schema of its fields, for the static tests of the Triton model repository. Every field comes back
 * as a list of its occurrences, so repeated and singular fields are told apart by the schema, as protobuf does.
 */

export type PbValue = string | number | boolean | { enum: string } | PbMessage;
export interface PbMessage {
  [field: string]: PbValue[];
}

export function parsePbtxt(text: string): PbMessage {
  const tokens = text
    .replace(/#[^\n]*/g, '')
    .match(/"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|[A-Za-z_][A-Za-z0-9_]*|[{}[\]:,]|\S/g) ?? [];
  let at = 0;
  const peek = () => tokens[at];
  const take = (want?: string) => {
    const t = tokens[at++];
    if (t === undefined) throw new Error(`unexpected end of config${want ? `, expected ${want}` : ''}`);
    if (want !== undefined && t !== want) throw new Error(`expected ${want}, got ${t} (token ${at})`);
    return t;
  };
  const scalar = (t: string): PbValue => {
    if (t.startsWith('"')) return JSON.parse(t) as string;
    if (/^-?\d/.test(t)) return Number(t);
    if (t === 'true' || t === 'false') return t === 'true';
    if (/^[A-Za-z_]/.test(t)) return { enum: t };
    throw new Error(`unexpected token ${t}`);
  };
  const value = (): PbValue => (peek() === '{' ? (take('{'), message('}')) : scalar(take()));
  const message = (end?: string): PbMessage => {
    const out: PbMessage = {};
    while (at < tokens.length && peek() !== end) {
      const name = take();
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`expected a field name, got ${name}`);
      if (peek() === ':') take(':');
      const list = (out[name] ??= []);
      if (peek() === '[') {
        take('[');
        while (peek() !== ']') {
          list.push(value());
          if (peek() === ',') take(',');
        }
        take(']');
      } else list.push(value());
      if (peek() === ',' || peek() === ';') take();
    }
    if (end) take(end);
    return out;
  };
  return message();
}

export type FieldType = 'string' | 'int' | 'bool' | { enum: readonly string[] } | { message: string };
export interface FieldSpec {
  type: FieldType;
  repeated?: boolean;
}
export type Schema = Record<string, Record<string, FieldSpec>>;

/** Problems of `msg` as a `type` of `schema`: unknown fields, wrong types, several values of a singular field. */
export function checkMessage(msg: PbMessage, type: string, schema: Schema, where = type): string[] {
  const fields = schema[type];
  const problems: string[] = [];
  for (const [name, values] of Object.entries(msg)) {
    const spec = fields[name];
    if (!spec) {
      problems.push(`${where}.${name}: not a field of ${type}`);
      continue;
    }
    if (!spec.repeated && values.length > 1) problems.push(`${where}.${name}: singular field given ${values.length} times`);
    values.forEach((v, i) => {
      const at = `${where}.${name}${spec.repeated ? `[${i}]` : ''}`;
      const t = spec.type;
      if (t === 'string' && typeof v !== 'string') problems.push(`${at}: expected a string`);
      else if (t === 'int' && !(typeof v === 'number' && Number.isInteger(v))) problems.push(`${at}: expected an integer`);
      else if (t === 'bool' && typeof v !== 'boolean') problems.push(`${at}: expected true or false`);
      else if (typeof t === 'object' && 'enum' in t && !(typeof v === 'object' && 'enum' in v && t.enum.includes(v.enum as string))) problems.push(`${at}: expected one of ${t.enum.join(', ')}`);
      else if (typeof t === 'object' && 'message' in t) {
        if (typeof v !== 'object' || 'enum' in v) problems.push(`${at}: expected a ${t.message} message`);
        else problems.push(...checkMessage(v as PbMessage, t.message, schema, at));
      }
    });
  }
  return problems;
}
