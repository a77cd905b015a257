/**
 * The library's API is what docs/library.md says it is: every export of src/index.ts has a
 * doc comment where it is declared and a line in the document's reference; every name the
 * document presents as the API — in that reference, and imported from 'service-pool-leader'
 * in its code blocks — is exported. The exports are read with the TypeScript compiler API,
 * following re-exports to their declarations; imports of packages are left unresolved, so
 * that only src/ is parsed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import ts from 'typescript';

const ROOT = path.join(import.meta.dirname, '../..');
const PACKAGE = 'service-pool-leader';

const OPTIONS: ts.CompilerOptions = {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  noLib: true,
  types: [],
};

interface Export {
  name: string;
  documented: boolean;
}

/** The exports of `entry`, each with whether its declaration has a doc comment. */
function exportsOf(entry: string, files: Record<string, string> = {}): Export[] {
  const host = ts.createCompilerHost(OPTIONS);
  const read = host.readFile.bind(host);
  host.fileExists = (file) => file in files || ts.sys.fileExists(file);
  host.directoryExists = (dir) =>
    Object.keys(files).some((file) => file.startsWith(dir + path.sep)) ||
    ts.sys.directoryExists(dir);
  host.readFile = (file) => files[file] ?? read(file);
  host.getSourceFile = (file, language) => {
    const text = host.readFile(file);
    return text === undefined ? undefined : ts.createSourceFile(file, text, language, true);
  };
  host.resolveModuleNameLiterals = (literals, containing, _redirect, options) =>
    literals.map((literal) =>
      literal.text.startsWith('.')
        ? ts.resolveModuleName(literal.text, containing, options, host)
        : { resolvedModule: undefined },
    );
  const program = ts.createProgram([entry], OPTIONS, host);
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  return checker.getExportsOfModule(module).map((symbol) => {
    const declared =
      symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    return { name: symbol.name, documented: (declared.declarations ?? []).some(hasDocComment) };
  });
}

/**
 * Whether a doc comment with text stands right above `declaration`. TypeScript attaches the
 * last `/** ... *\/` before a statement even across blank lines, so a file's header comment
 * would document its first export; a blank line between them says it does not.
 */
function hasDocComment(declaration: ts.Declaration): boolean {
  const doc = ts.getJSDocCommentsAndTags(declaration).filter(ts.isJSDoc).at(-1);
  if (!doc || !ts.getTextOfJSDocComment(doc.comment)?.trim()) return false;
  const between = declaration.getSourceFile().text.slice(doc.end, declaration.getStart());
  return !/\n\s*\n/.test(between);
}

/** The names docs/library.md presents as the API: its reference, and its code's imports. */
function documentedNames(markdown: string): { reference: string[]; imported: string[] } {
  const section = markdown.split('\n## Reference\n')[1]?.split('\n## ')[0] ?? '';
  const reference = [...section.matchAll(/^- `([A-Za-z_$][\w$]*)/gm)].map((match) => match[1]!);
  const code = [...markdown.matchAll(/^```[a-z]*\n([\s\S]*?)^```/gm)].map((match) => match[1]!);
  const importLists = code.flatMap((block) => [
    ...block.matchAll(
      new RegExp(`import\\s*(?:type\\s*)?\\{([^}]*)\\}\\s*from\\s*'${PACKAGE}'`, 'g'),
    ),
  ]);
  const imported = importLists.flatMap((match) =>
    match[1]!
      .split(',')
      .map(
        (name) =>
          name
            .trim()
            .replace(/^type\s+/, '')
            .split(/\s+as\s+/)[0]!,
      )
      .filter((name) => name !== ''),
  );
  return { reference, imported };
}

/** What is wrong between the exports and the document; empty when they agree. */
function disagreements(exported: Export[], markdown: string) {
  const { reference, imported } = documentedNames(markdown);
  const names = new Set(exported.map((e) => e.name));
  return {
    undocumented: exported.filter((e) => !e.documented).map((e) => e.name),
    notInReference: exported.filter((e) => !reference.includes(e.name)).map((e) => e.name),
    notExported: [...new Set([...reference, ...imported])].filter((name) => !names.has(name)),
  };
}

describe("the library's API and docs/library.md", function () {
  // Compiling src/ with the TypeScript API takes a few seconds on a loaded machine.
  this.timeout(30_000);

  it('every export of src/index.ts has a doc comment and a line in the reference; every name the document presents is exported', () => {
    const exported = exportsOf(path.join(ROOT, 'src/index.ts'));
    const markdown = readFileSync(path.join(ROOT, 'docs/library.md'), 'utf8');
    expect(exported.map((e) => e.name)).to.include.members(['PoolMember', 'configFrom']);
    expect(documentedNames(markdown).imported).to.include('PoolMember');
    expect(disagreements(exported, markdown)).to.deep.equal({
      undocumented: [],
      notInReference: [],
      notExported: [],
    });
  });

  it('finds an export without a doc comment, one missing from the reference, and a documented name that is not exported', () => {
    const dir = path.join(ROOT, 'test/unit/virtual-library');
    const exported = exportsOf(path.join(dir, 'index.ts'), {
      [path.join(dir, 'index.ts')]: "export { told, untold, type Shape } from './parts.js';\n",
      [path.join(dir, 'parts.ts')]: [
        '/** The header of the file, which documents no export. */',
        '',
        'export function untold() {}',
        '/** Documented. */',
        'export const told = 1;',
        '/** A shape. */',
        'export interface Shape { side: number }',
      ].join('\n'),
    });
    const markdown = [
      '# API',
      '```js',
      `import { told, type Shape, gone as renamed } from '${PACKAGE}';`,
      '```',
      '## Reference',
      '- `told` — documented.',
      '- `untold()` — not documented in code.',
      '- `missing` — named here, exported nowhere.',
      '## Later',
      '- `elsewhere` — not in the reference.',
    ].join('\n');
    expect(disagreements(exported, markdown)).to.deep.equal({
      undocumented: ['untold'],
      notInReference: ['Shape'],
      notExported: ['missing', 'gone'],
    });
  });
});
