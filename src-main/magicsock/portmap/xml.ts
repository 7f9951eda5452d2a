// Minimal, defensive XML text extraction for UPnP descriptions and SOAP replies. It is not a
// general parser: it finds elements by local name (ignoring namespace prefixes) with linear
// indexOf scans (no backtracking regexes), refuses DTDs, and decodes only the five predefined
// entities and character references, so there is no entity expansion of any kind.
import { PortmapError } from './errors.js';

/** Throws on a DOCTYPE/ENTITY declaration: UPnP documents never need one (billion-laughs guard). */
export function assertNoDtd(xml: string): void {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new PortmapError('malformed', 'XML with a DTD is refused');
}

function localName(tag: string): string {
  const colon = tag.indexOf(':');
  return colon >= 0 ? tag.slice(colon + 1) : tag;
}

/** Reads the tag name starting at `start` (just after '<' or '</'). */
function tagNameAt(xml: string, start: number): string {
  let end = start;
  while (end < xml.length && !' \t\r\n/>'.includes(xml[end] as string)) end++;
  return xml.slice(start, end);
}

/** Inner text (raw, undecoded) of every `name` element, in document order; no nesting of `name`. */
export function elements(xml: string, name: string): string[] {
  const out: string[] = [];
  let pos = 0;
  while (true) {
    const open = xml.indexOf('<', pos);
    if (open < 0) return out;
    pos = open + 1;
    if (xml[pos] === '/' || xml[pos] === '!' || xml[pos] === '?') continue;
    if (localName(tagNameAt(xml, pos)) !== name) continue;
    const tagEnd = xml.indexOf('>', pos);
    if (tagEnd < 0) return out;
    if (xml[tagEnd - 1] === '/') {
      out.push('');
      pos = tagEnd + 1;
      continue;
    }
    let search = tagEnd + 1;
    let close: number;
    while (true) {
      const c = xml.indexOf('</', search);
      if (c < 0) return out;
      if (localName(tagNameAt(xml, c + 2)) === name) {
        close = c;
        break;
      }
      search = c + 2;
    }
    out.push(xml.slice(tagEnd + 1, close));
    pos = xml.indexOf('>', close);
    if (pos < 0) return out;
  }
}

/** Decoded, trimmed text of the first `name` element, or undefined. */
export function text(xml: string, name: string): string | undefined {
  const raw = elements(xml, name)[0];
  return raw === undefined ? undefined : decodeEntities(raw).trim();
}

const NAMED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|lt|gt|amp|quot|apos);/g, (m, ref: string) => {
    if (ref[0] !== '#') return NAMED[ref] ?? m;
    const cp = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
    return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
  });
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&${({ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' } as Record<string, string>)[c]};`);
}
