/**
 * Failed requests, logged without flooding. The first failure of each error code in a window
 * is logged at once with its reason; the rest of that window are counted and logged as one
 * summary line when the window ends. Under an outage of thousands of failures a second this
 * writes two lines per code per window, and every line is plain JSON with one `msg`.
 *
 * Never blocks: `record` is a map update; a window's summary is written by a timer (unref'd,
 * so it never holds the process open). `flush` writes pending summaries at once (shutdown).
 */
import type { Logger } from 'pino';

interface Window {
  suppressed: number;
  lastReason: string;
  timer: ReturnType<typeof setTimeout>;
}

export class FailureLog {
  private readonly windows = new Map<string, Window>();

  /** `windowMs`: length of a window in milliseconds. */
  constructor(
    private readonly logger: Logger,
    private readonly message: string,
    private readonly windowMs = 10_000,
  ) {}

  /** One failure with its error code and the reason given to the client. */
  record(code: string, reason: string): void {
    const window = this.windows.get(code);
    if (window) {
      window.suppressed++;
      window.lastReason = reason;
      return;
    }
    this.logger.info({ code, reason }, this.message);
    const timer = setTimeout(() => this.close(code), this.windowMs);
    timer.unref();
    this.windows.set(code, { suppressed: 0, lastReason: reason, timer });
  }

  /** Writes every pending summary now and closes the windows. */
  flush(): void {
    for (const code of [...this.windows.keys()]) this.close(code);
  }

  private close(code: string): void {
    const window = this.windows.get(code);
    if (!window) return;
    clearTimeout(window.timer);
    this.windows.delete(code);
    if (window.suppressed === 0) return;
    this.logger.info(
      {
        code,
        count: window.suppressed,
        windowMs: this.windowMs,
        lastReason: window.lastReason,
      },
      `${this.message}: ${window.suppressed} more in ${this.windowMs / 1000} s`,
    );
  }
}
