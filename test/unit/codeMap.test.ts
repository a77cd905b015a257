/**
 * docs/design.md's "Where things are" is the newcomer's map: every folder under src/ is on it,
 * and every path it names exists, so a move or a split that forgets the map fails here.
 */
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';

const root = path.resolve(import.meta.dirname, '../..');
const design = readFileSync(path.join(root, 'docs/design.md'), 'utf8');
const section = design.slice(
  design.indexOf('## Where things are'),
  design.indexOf('\n## ', design.indexOf('## Where things are') + 1),
);

/** The folders of the map's table, e.g. `src/election/`. */
function mappedFolders(text: string): string[] {
  return [...text.matchAll(/^\| (.+?) \|/gm)].flatMap(([, cell]) =>
    [...cell!.matchAll(/`([^`]+\/)`/g)].map(([, folder]) => folder!),
  );
}

/** Every path the map names with a folder, e.g. `src/work/router.ts`. */
function namedPaths(text: string): string[] {
  return [...text.matchAll(/`((?:src|test)\/[^`\s]+)`/g)].map(([, named]) => named!);
}

function sourceFolders(dir: string): string[] {
  return readdirSync(path.join(root, dir))
    .filter((entry) => statSync(path.join(root, dir, entry)).isDirectory())
    .flatMap((entry) => [`${dir}/${entry}/`, ...sourceFolders(`${dir}/${entry}`)]);
}

describe('the code map in docs/design.md', () => {
  it('has a table of folders and the four questions', () => {
    expect(mappedFolders(section).length, 'folders in the table').to.be.greaterThan(10);
    expect(section).to.include('Where is the leader chosen?');
    expect(section).to.include('What happens on SIGTERM?');
  });

  it('shows every folder of src/ (a folder inside another counts when its parent is shown)', () => {
    const shown = new Set(mappedFolders(section));
    const missing = sourceFolders('src').filter(
      (folder) => !shown.has(folder) && !shown.has(`${path.posix.dirname(folder)}/`),
    );
    expect(missing).to.deep.equal([]);
  });

  it('names only paths that exist', () => {
    const named = namedPaths(section);
    expect(named.length).to.be.greaterThan(10);
    expect(named.filter((p) => !existsSync(path.join(root, p)))).to.deep.equal([]);
  });

  it('names only files that exist in the folder its row is about', () => {
    const gone: string[] = [];
    for (const [, cell, owns] of section.matchAll(/^\| `(src\/[a-z/]+\/)`.*? \| (.+) \|$/gm)) {
      for (const [, file] of owns!.matchAll(/`([A-Za-z/]+\.ts|[A-Za-z]+\/)`/g)) {
        if (!existsSync(path.join(root, cell!, file!))) gone.push(`${cell}${file}`);
      }
    }
    expect(gone).to.deep.equal([]);
  });
});
