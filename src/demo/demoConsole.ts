/**
 * The demo's prompt. On a terminal: a `demo>` prompt with line editing, news printed above the
 * line being typed, leader changes in bold and errors in red. Otherwise (a pipe, a test) it
 * reads line by line and echoes each command as `> command`, so the output reads as a
 * transcript.
 */
import readline from 'node:readline';
import { styleText } from 'node:util';
import type { Tone } from './demoCommands.js';

const PROMPT = 'demo> ';

export class DemoConsole {
  readonly terminal: boolean;
  private readonly rl: readline.Interface;
  private readonly lines: AsyncIterator<string>;
  private prompting = false;

  /** `onInterrupt`: Ctrl-C on a terminal (where the prompt, not the process, receives it). */
  constructor(
    input: NodeJS.ReadableStream,
    private readonly out: NodeJS.WritableStream,
    onInterrupt: () => void,
  ) {
    this.terminal =
      (input as { isTTY?: boolean }).isTTY === true && (out as { isTTY?: boolean }).isTTY === true;
    this.rl = readline.createInterface({
      input,
      terminal: this.terminal,
      prompt: PROMPT,
      ...(this.terminal ? { output: out } : {}),
    });
    // Created at once: lines that arrive before anyone asks are kept, not dropped.
    this.lines = this.rl[Symbol.asyncIterator]();
    this.rl.on('SIGINT', onInterrupt);
  }

  /** Prints one line (or a block) of output without mangling the line being typed. */
  say(text: string, tone: Tone = 'plain'): void {
    const styled = this.style(text, tone);
    if (this.prompting) {
      readline.clearLine(this.out, 0);
      readline.cursorTo(this.out, 0);
      this.out.write(`${styled}\n`);
      this.rl.prompt(true);
    } else {
      this.out.write(`${styled}\n`);
    }
  }

  /** The next command line, trimmed and not empty; undefined at the end of the input. */
  async nextCommand(): Promise<string | undefined> {
    for (;;) {
      if (this.terminal) {
        this.prompting = true;
        this.rl.prompt();
      }
      const next = await this.lines.next();
      // At the end of the input (Ctrl-D) the cursor is still on the prompt's line.
      if (next.done) return undefined;
      this.prompting = false;
      const line = next.value.trim();
      if (line === '') continue;
      if (!this.terminal) this.out.write(`> ${line}\n`);
      return line;
    }
  }

  close(): void {
    // Ctrl-C, Ctrl-D or a stop signal at the prompt: what follows starts on a line of its own.
    if (this.prompting) this.out.write('\n');
    this.prompting = false;
    this.rl.close();
  }

  private style(text: string, tone: Tone): string {
    if (!this.terminal || tone === 'plain' || process.env.NO_COLOR) return text;
    return styleText(tone === 'news' ? 'bold' : 'red', text);
  }
}
