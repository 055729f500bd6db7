// Where a run's own files come from: by default the daemon opens the paths a request names; a
// request sent by content (a dw over ssh, or of another user) names paths on the client's host,
// and a FileSource fetches their bytes from the client instead. Model paths are not among them:
// models always resolve on the daemon's host.

export interface FileSource {
  /** For messages: the host the paths are on. */
  readonly where: string;
  /** A workflow file's bytes; TooLarge (media/read.ts) when it has more than maxBytes. */
  read(path: string, maxBytes: number): Promise<Buffer>;
  /**
   * An input or plugin file: the path the runner opens instead. `what` names it in errors; `ext`
   * is the extension the copy needs ('' for inputs, which keep their own; '.mjs' for a plugin).
   */
  provide(path: string, what: string, ext?: string): Promise<string>;
}
