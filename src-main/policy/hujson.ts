/**
 * HuJSON: JSON with comments (`//`, `/* *\/`) and trailing commas, as Tailscale's
 * policy files use. Parses to plain JSON values and records the line and column of
 * every value by its path (e.g. "acls.2.src.0"; "acls.2.proto@key" for a key) so later
 * checks can point at the text.
 */

export interface Position {
  line: number;
  column: number;
}

export class HujsonError extends Error {
  constructor(
    readonly reason: string,
    readonly position: Position,
  ) {
    super(`${position.line}:${position.column}: ${reason}`);
  }
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface Parsed {
  value: JsonValue;
  /** Path ("" for the root, "a.0.b") → position of the value. */
  positions: Map<string, Position>;
}

const MAX_DEPTH = 64;

export function parseHujson(text: string): Parsed {
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const positions = new Map<string, Position>();
  const pos = (): Position => ({ line, column: i - lineStart + 1 });
  const fail = (reason: string, at: Position = pos()): never => {
    throw new HujsonError(reason, at);
  };

  const skip = () => {
    for (;;) {
      const c = text[i];
      if (c === '\n') {
        i++;
        line++;
        lineStart = i;
      } else if (c === ' ' || c === '\t' || c === '\r' || c === '\uFEFF') i++;
      else if (c === '/' && text[i + 1] === '/') {
        while (i < text.length && text[i] !== '\n') i++;
      } else if (c === '/' && text[i + 1] === '*') {
        const start = pos();
        i += 2;
        while (i < text.length && !(text[i] === '*' && text[i + 1] === '/')) {
          if (text[i] === '\n') {
            line++;
            lineStart = i + 1;
          }
          i++;
        }
        if (i >= text.length) fail('unterminated /* comment', start);
        i += 2;
      } else return;
    }
  };

  const parseString = (): string => {
    const start = pos();
    i++;
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string', start);
      const c = text[i++];
      if (c === '"') return out;
      if (c < ' ') fail(c === '\n' ? 'newline inside a string' : `control character ${JSON.stringify(c)} inside a string (escape it)`, start);
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = text[i++];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e in simple) out += simple[e];
      else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i, i + 4))) {
        out += String.fromCharCode(parseInt(text.slice(i, i + 4), 16));
        i += 4;
      } else fail(`invalid escape \\${e ?? ''} in string`);
    }
  };

  const parseValue = (path: string, depth: number): JsonValue => {
    skip();
    if (depth > MAX_DEPTH) fail('nesting too deep');
    positions.set(path, pos());
    const c = text[i];
    const child = (k: string | number) => (path === '' ? String(k) : `${path}.${k}`);
    if (c === '{') {
      i++;
      const obj: { [key: string]: JsonValue } = Object.create(null);
      for (;;) {
        skip();
        if (text[i] === '}') {
          i++;
          return obj;
        }
        if (text[i] !== '"') fail(`expected a "quoted" key or "}", found ${describe(text[i])}`);
        const keyPos = pos();
        const key = parseString();
        positions.set(`${child(key)}@key`, keyPos);
        if (Object.prototype.hasOwnProperty.call(obj, key)) fail(`duplicate key "${key}"`, keyPos);
        skip();
        if (text[i] !== ':') fail(`expected ":" after key "${key}", found ${describe(text[i])}`);
        i++;
        obj[key] = parseValue(child(key), depth + 1);
        skip();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') fail(`expected "," or "}" after the value of "${key}", found ${describe(text[i])}`);
      }
    }
    if (c === '[') {
      i++;
      const arr: JsonValue[] = [];
      for (;;) {
        skip();
        if (text[i] === ']') {
          i++;
          return arr;
        }
        arr.push(parseValue(child(arr.length), depth + 1));
        skip();
        if (text[i] === ',') i++;
        else if (text[i] !== ']') fail(`expected "," or "]" in list, found ${describe(text[i])}`);
      }
    }
    if (c === '"') return parseString();
    const m = /^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)/.exec(text.slice(i, i + 64));
    if (!m) return fail(`unexpected ${describe(c)}`);
    i += m[0].length;
    return m[0] === 'true' ? true : m[0] === 'false' ? false : m[0] === 'null' ? null : Number(m[0]);
  };

  const value = parseValue('', 0);
  skip();
  if (i < text.length) fail(`unexpected ${describe(text[i])} after the end of the document`);
  return { value, positions };
}

function describe(c: string | undefined): string {
  return c === undefined ? 'end of input' : JSON.stringify(c);
}
