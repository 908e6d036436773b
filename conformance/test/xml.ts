/**
 * A small XML well-formedness checker for the tests (no parser dependency in
 * node_modules): one root element, properly nested and closed tags, quoted
 * unique attributes, only the five predefined or numeric entities, no stray
 * "<" or "&" in text. Returns the problems found; empty means well-formed.
 */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = '[A-Za-z_:][-A-Za-z0-9_:.]*';
const ENTITY = /&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);/g;

function decodeEntities(text: string): string {
  return text.replace(ENTITY, (e) =>
    e === '&amp;' ? '&' : e === '&lt;' ? '<' : e === '&gt;' ? '>' : e === '&quot;' ? '"' : e === '&apos;' ? "'"
    : String.fromCodePoint(e.startsWith('&#x') ? parseInt(e.slice(3, -1), 16) : parseInt(e.slice(2, -1), 10)),
  );
}

/** Parses a document into its root element, or throws with the first problem. */
export function parseXml(xml: string): XmlElement {
  let rest = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const text = (chunk: string) => {
    if (/</.test(chunk)) throw new Error(`stray "<" in text: ${chunk.slice(0, 40)}`);
    if (chunk.replace(ENTITY, '').includes('&')) throw new Error(`stray "&" in text: ${chunk.slice(0, 40)}`);
    if (stack.length === 0) {
      if (chunk.trim() !== '') throw new Error(`text outside the root element: ${chunk.slice(0, 40)}`);
      return;
    }
    stack.at(-1)!.text += decodeEntities(chunk);
  };
  const tag = new RegExp(`^<(/?)(${NAME})((?:\\s+${NAME}\\s*=\\s*(?:"[^"<]*"|'[^'<]*'))*)\\s*(/?)>`);
  while (rest.length > 0) {
    const open = rest.indexOf('<');
    if (open < 0) {
      text(rest);
      break;
    }
    text(rest.slice(0, open));
    rest = rest.slice(open);
    if (rest.startsWith('<!--')) {
      const end = rest.indexOf('-->');
      if (end < 0) throw new Error('unterminated comment');
      rest = rest.slice(end + 3);
      continue;
    }
    const match = tag.exec(rest);
    if (!match) throw new Error(`malformed tag: ${rest.slice(0, 60)}`);
    const [whole, closing, name, attributeText, selfClosing] = match as unknown as [string, string, string, string, string];
    rest = rest.slice(whole.length);
    if (closing) {
      if (selfClosing || attributeText.trim()) throw new Error(`malformed closing tag </${name}>`);
      const top = stack.pop();
      if (!top || top.name !== name) throw new Error(`</${name}> closes <${top?.name ?? '(nothing)'}>`);
      continue;
    }
    const attributes: Record<string, string> = {};
    for (const [, key, value] of attributeText.matchAll(new RegExp(`(${NAME})\\s*=\\s*(?:"([^"]*)"|'([^']*)')`, 'g'))) {
      if (key! in attributes) throw new Error(`attribute ${key} repeated on <${name}>`);
      const raw = value ?? '';
      if (raw.replace(ENTITY, '').includes('&')) throw new Error(`stray "&" in attribute ${key}`);
      attributes[key!] = decodeEntities(raw);
    }
    const element: XmlElement = { name, attributes, children: [], text: '' };
    if (stack.length === 0) {
      if (root) throw new Error('more than one root element');
      root = element;
    } else {
      stack.at(-1)!.children.push(element);
    }
    if (!selfClosing) stack.push(element);
  }
  if (stack.length) throw new Error(`<${stack.at(-1)!.name}> is never closed`);
  if (!root) throw new Error('no root element');
  return root;
}
