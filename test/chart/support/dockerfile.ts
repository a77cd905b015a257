/**
 * A Dockerfile read as the builder reads it: comments and parser directives dropped, lines
 * joined at a trailing backslash, instructions grouped into stages, the ARGs declared before
 * the first FROM substituted into the FROM lines (`--build-arg` values over their defaults).
 * Enough to check the Dockerfile without a Docker engine; not a full implementation of the
 * syntax (no heredocs, no escape directive, no `${NAME:-word}` forms), which a test would notice
 * as an unknown instruction or an unresolved FROM.
 */

export interface Instruction {
  keyword: string;
  /** The arguments as written, whitespace-trimmed. */
  args: string;
  line: number;
}

export interface Stage {
  /** The image of FROM with its ARGs substituted, e.g. node:24-slim. */
  base: string;
  /** The image of FROM as written, e.g. ${NODE_IMAGE}. */
  baseAsWritten: string;
  /** The name of `FROM ... AS name`. */
  name?: string;
  instructions: Instruction[];
}

const KEYWORDS = new Set([
  'FROM',
  'RUN',
  'CMD',
  'LABEL',
  'EXPOSE',
  'ENV',
  'ADD',
  'COPY',
  'ENTRYPOINT',
  'VOLUME',
  'USER',
  'WORKDIR',
  'ARG',
  'ONBUILD',
  'STOPSIGNAL',
  'HEALTHCHECK',
  'SHELL',
]);

/** The instructions in file order, each continued line joined into one. */
function logicalInstructions(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const startLine = i + 1;
    let logical = lines[i]!;
    if (/^\s*#/.test(logical) || logical.trim() === '') continue;
    while (logical.trimEnd().endsWith('\\') && i + 1 < lines.length) {
      logical = logical.trimEnd().slice(0, -1);
      i++;
      // Comment lines inside a continued instruction are dropped, as the builder does.
      if (!/^\s*#/.test(lines[i]!)) logical += ` ${lines[i]!.trim()}`;
    }
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(logical);
    if (!match || !KEYWORDS.has(match[1]!.toUpperCase())) {
      throw new Error(`Dockerfile line ${startLine}: not an instruction: ${logical}`);
    }
    instructions.push({
      keyword: match[1]!.toUpperCase(),
      args: match[2]!.trim(),
      line: startLine,
    });
  }
  return instructions;
}

/**
 * The ARGs declared before the first FROM, the only ones a FROM line can use: name to default
 * (undefined for `ARG NAME` without one).
 */
export function globalArgs(text: string): Map<string, string | undefined> {
  const args = new Map<string, string | undefined>();
  for (const instruction of logicalInstructions(text)) {
    if (instruction.keyword === 'FROM') break;
    if (instruction.keyword !== 'ARG') {
      throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} before FROM`);
    }
    const arg = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(instruction.args);
    if (!arg) throw new Error(`Dockerfile line ${instruction.line}: bad ARG: ${instruction.args}`);
    args.set(arg[1]!, arg[2]?.replace(/^"(.*)"$/, '$1'));
  }
  return args;
}

/**
 * The stages of a Dockerfile. `buildArgs` are the `--build-arg` values: they replace the
 * defaults of the global ARGs in FROM lines; a FROM that names an ARG with neither throws.
 */
export function parseDockerfile(text: string, buildArgs: Record<string, string> = {}): Stage[] {
  const args = globalArgs(text);
  const substitute = (written: string, line: number) =>
    written.replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (_whole, braced: string | undefined, bare: string | undefined) => {
        const name = (braced ?? bare)!;
        const value = args.has(name) ? (buildArgs[name] ?? args.get(name)) : undefined;
        if (value === undefined) {
          throw new Error(
            `Dockerfile line ${line}: FROM uses ${name}, a global ARG without a value`,
          );
        }
        return value;
      },
    );
  const stages: Stage[] = [];
  for (const instruction of logicalInstructions(text)) {
    if (instruction.keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (!from)
        throw new Error(`Dockerfile line ${instruction.line}: bad FROM: ${instruction.args}`);
      stages.push({
        base: substitute(from[1]!, instruction.line),
        baseAsWritten: from[1]!,
        ...(from[2] ? { name: from[2] } : {}),
        instructions: [],
      });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return stages;
}

/** The arguments of an exec-form instruction (CMD ["node", ...]); undefined for shell form. */
export function execForm(instruction: Instruction): string[] | undefined {
  if (!instruction.args.startsWith('[')) return undefined;
  const parsed = JSON.parse(instruction.args) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((part) => typeof part === 'string')) {
    throw new Error(`Dockerfile line ${instruction.line}: not a JSON array of strings`);
  }
  return parsed;
}

export interface Copy {
  from?: string;
  sources: string[];
  destination: string;
}

/** COPY [--from=stage] [--chown=...] src... dest */
export function parseCopy(instruction: Instruction): Copy {
  const words = execForm(instruction) ?? instruction.args.split(/\s+/);
  let from: string | undefined;
  const rest: string[] = [];
  for (const word of words) {
    if (word.startsWith('--from=')) from = word.slice('--from='.length);
    else if (!word.startsWith('--')) rest.push(word);
  }
  const destination = rest.pop();
  if (destination === undefined || rest.length === 0) {
    throw new Error(`Dockerfile line ${instruction.line}: COPY needs a source and a destination`);
  }
  return { ...(from ? { from } : {}), sources: rest, destination };
}

/**
 * Whether a .dockerignore excludes a context path. Patterns: one a line, `#` comments, `*`
 * within a path segment, `**` across segments, a leading `!` re-includes; a pattern that
 * matches a folder excludes everything under it.
 */
export function isIgnored(dockerignore: string, contextPath: string): boolean {
  let ignored = false;
  for (const raw of dockerignore.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    const pattern = (negated ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
    const regex = new RegExp(
      '^' +
        pattern
          .split('**')
          .map((part) =>
            part
              .split('*')
              .map((text) => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
              .join('[^/]*'),
          )
          .join('.*') +
        '(/.*)?$',
    );
    if (regex.test(contextPath)) ignored = !negated;
  }
  return ignored;
}
