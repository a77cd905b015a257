/**
 * The status page's element tree: the tags and attributes it may use (the page's script
 * refuses anything else), `h` to build a node, and `toHtml` to write it out with every text
 * and attribute value escaped. Built on the server (statusView.ts, leaderStrip.ts), sent as
 * JSON to the page's script, or written as HTML for the first paint (statusHtml.ts).
 */
export const VIEW_TAGS = [
  'section',
  'h2',
  'h3',
  'p',
  'strong',
  'span',
  'code',
  'time',
  'a',
  'div',
  'ul',
  'li',
  'table',
  'caption',
  'thead',
  'tbody',
  'tr',
  'th',
  'td',
  // The leader timeline strip (inline SVG; the page's script creates these in SVG's namespace).
  'svg',
  'g',
  'rect',
  'text',
  'title',
] as const;

/** The tags that belong to SVG's namespace, not HTML's. */
export const SVG_TAGS: readonly ViewTag[] = ['svg', 'g', 'rect', 'text', 'title'];

export const VIEW_ATTRIBUTES = [
  'id',
  'class',
  'href',
  'scope',
  'colspan',
  'datetime',
  'role',
  'tabindex',
  'aria-labelledby',
  'data-pool',
  'data-summary',
  'data-member',
  'aria-label',
  'viewBox',
  'x',
  'y',
  'width',
  'height',
  'text-anchor',
] as const;

export type ViewTag = (typeof VIEW_TAGS)[number];
export type ViewAttributes = Partial<Record<(typeof VIEW_ATTRIBUTES)[number], string>>;
/** An element as `[tag, attributes, ...children]`, or a text node. */
export type ViewNode = string | [ViewTag, ViewAttributes, ...ViewNode[]];

export const h = (tag: ViewTag, attributes: ViewAttributes, ...children: ViewNode[]): ViewNode => [
  tag,
  attributes,
  ...children,
];

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]!);
}

/** The tree as HTML, every text and attribute value escaped. */
export function toHtml(node: ViewNode): string {
  if (typeof node === 'string') return escapeHtml(node);
  const [tag, attributes, ...children] = node;
  const attributeText = Object.entries(attributes)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => ` ${name}="${escapeHtml(value)}"`)
    .join('');
  return `<${tag}${attributeText}>${children.map(toHtml).join('')}</${tag}>`;
}
