/**
 * The Markdown documents read as written: no inline code span broken across paragraphs or
 * list items, and no list item that begins with a number taken from a sentence — what a
 * reflow does to a formula such as `(FORWARD_MAX_HOPS − 1) × ...` when a line starts with "- 1".
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';

const ROOT = path.join(import.meta.dirname, '../..');

function markdownFiles(): string[] {
  const docs = readdirSync(path.join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => path.join('docs', name));
  return ['README.md', 'helm/service-pool-leader/README.md', ...docs].filter((file) => {
    try {
      readFileSync(path.join(ROOT, file));
      return true;
    } catch {
      return false;
    }
  });
}

/** Paragraphs and list items outside fenced code blocks and tables, with their first line. */
function blocks(text: string): { line: number; text: string }[] {
  const result: { line: number; text: string }[] = [];
  let fenced = false;
  let current: { line: number; lines: string[] } | undefined;
  const flush = () => {
    if (current) result.push({ line: current.line, text: current.lines.join('\n') });
    current = undefined;
  };
  text.split('\n').forEach((raw, i) => {
    if (/^\s*(```|~~~)/.test(raw)) {
      fenced = !fenced;
      flush();
      return;
    }
    if (fenced || raw.trim() === '' || raw.trimStart().startsWith('|')) {
      flush();
      return;
    }
    // A new list item starts a new block.
    if (/^\s*([-+*]|\d+\.)\s/.test(raw)) flush();
    current ??= { line: i + 1, lines: [] };
    current.lines.push(raw);
  });
  flush();
  return result;
}

describe('the Markdown documents', () => {
  for (const file of markdownFiles()) {
    it(`${file}: every inline code span closes within its paragraph; no list item starts with a number out of a sentence`, () => {
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      const broken = blocks(text)
        .filter(
          (block) => (block.text.replace(/``[^`]*``/g, '').match(/`/g) ?? []).length % 2 === 1,
        )
        .map((block) => `line ${block.line}: ${block.text.slice(0, 80)}`);
      expect(broken, 'blocks with an unclosed code span').to.deep.equal([]);
      const numbered = text
        .split('\n')
        .map((line, i) => ({ line: i + 1, text: line }))
        .filter(({ text: line }) => /^\s*[-+*] \d+\.\s/.test(line))
        .map(({ line, text: t }) => `line ${line}: ${t}`);
      expect(numbered, 'list items that begin "- 1."').to.deep.equal([]);
    });
  }
});
