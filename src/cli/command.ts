import type { ParseArgsConfig } from 'node:util';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface Command {
  name: string;
  aliases?: string[];
  summary: string;
  /** Full --help text of the command. */
  help: string;
  options: Options;
  /** What its positional arguments are, for shell completion: workflow files, any file, or one of these words. */
  completes?: 'workflow' | 'any' | readonly string[];
  /** How many positional arguments it takes at most (extra ones are a usage error). */
  positionals: number;
  /** Returns the process exit code. */
  run(values: Values, positionals: string[]): Promise<number>;
}

/** Options every command takes. */
export const COMMON: Options = {
  help: { type: 'boolean', short: 'h' },
};
