// dw completion bash|zsh: a completion script generated from the command table, so a new command
// or option completes without anyone editing a script.
import { DwError, EXIT } from '../../protocol/errors.js';
import type { Command } from '../command.js';

/** Options whose value is a directory; other value options get no completion (a number, NAME=VALUE). */
const DIRECTORY_OPTIONS = new Set(['output-dir']);

interface Spec {
  name: string;
  summary: string;
  flags: string[];
  /** Flags that take a value, and of those the ones whose value is a directory. */
  valued: string[];
  directories: string[];
  /** 'workflow', 'any' (file) or '' for none, and the words a positional can be. */
  files: string;
  choices: string[];
}

function specs(commands: Command[]): Spec[] {
  return commands.flatMap((c) =>
    [c.name, ...(c.aliases ?? [])].map((name) => {
      const options = Object.entries(c.options);
      const flags = (o: [string, { short?: string }][]) => o.flatMap(([long, { short }]) => [`--${long}`, ...(short ? [`-${short}`] : [])]);
      return {
        name,
        summary: c.summary,
        flags: [...flags(options), '--help'],
        valued: flags(options.filter(([, o]) => o.type === 'string')),
        directories: flags(options.filter(([long]) => DIRECTORY_OPTIONS.has(long))),
        files: typeof c.completes === 'string' ? c.completes : '',
        choices: Array.isArray(c.completes) ? [...c.completes] : [],
      };
    }),
  );
}

const words = (xs: string[]) => xs.join(' ');

function bash(all: Spec[]): string {
  const perCommand = all
    .map(
      (s) =>
        `    ${s.name}) opts="${words(s.flags)}"; valued="${words(s.valued)}"; dirs="${words(s.directories)}"; files="${s.files}"; choices="${words(s.choices)}" ;;`,
    )
    .join('\n');
  return `# dw completion for bash. Load it in this shell:  eval "$(dw completion bash)"
# or for every shell:  dw completion bash > ~/.local/share/bash-completion/completions/dw
_dw() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${words(all.map((s) => s.name))} --help --version" -- "$cur") )
    return
  fi
  local opts valued dirs files choices
  case "\${COMP_WORDS[1]}" in
${perCommand}
    *) return ;;
  esac
  if [[ " $dirs " == *" $prev "* ]]; then
    compopt -o filenames 2>/dev/null
    COMPREPLY=( $(compgen -d -- "$cur") )
    return
  fi
  [[ " $valued " == *" $prev "* ]] && return
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
  elif [ "$files" = workflow ]; then
    compopt -o filenames 2>/dev/null
    COMPREPLY=( $(compgen -d -- "$cur") $(compgen -f -X '!*.json' -- "$cur") )
  elif [ "$files" = any ]; then
    compopt -o filenames 2>/dev/null
    COMPREPLY=( $(compgen -f -- "$cur") )
  elif [ -n "$choices" ]; then
    COMPREPLY=( $(compgen -W "$choices" -- "$cur") )
  fi
}
complete -F _dw dw
`;
}

function zsh(all: Spec[]): string {
  const described = all.map((s) => `    '${s.name}:${s.summary.replace(/'/g, "'\\''").replace(/:/g, '\\:')}'`).join('\n');
  const perCommand = all
    .map((s) => {
      const after = [
        ...(s.directories.length ? [`${s.directories.join('|')}) _files -/; return ;;`] : []),
        ...(s.valued.length ? [`${s.valued.join('|')}) return ;;`] : []),
      ];
      return `    ${s.name}) opts=(${words(s.flags)}); files=${s.files || 'none'}; choices=(${words(s.choices)})${after.length ? `; case $words[CURRENT-1] in ${after.join(' ')} esac` : ''} ;;`;
    })
    .join('\n');
  return `#compdef dw
# dw completion for zsh. Load it in this shell:  source <(dw completion zsh)
# or for every shell: save it as _dw in a directory of $fpath, e.g.
#   dw completion zsh > ~/.zfunc/_dw   (with fpath=(~/.zfunc $fpath) before compinit in ~/.zshrc)
_dw() {
  local -a commands opts choices
  local files
  commands=(
${described}
  )
  if (( CURRENT == 2 )); then
    _describe 'dw command' commands
    compadd -- --help --version
    return
  fi
  case $words[2] in
${perCommand}
    *) return ;;
  esac
  if [[ $PREFIX == -* ]]; then
    compadd -- $opts
  elif [[ $files == workflow ]]; then
    _files -g '*.json'
  elif [[ $files == any ]]; then
    _files
  elif (( $#choices )); then
    compadd -- $choices
  fi
}
compdef _dw dw
`;
}

const SHELLS: Record<string, (all: Spec[]) => string> = { bash, zsh };

/** The completion command, over the command table it is part of (given lazily: it is in it). */
export function completion(commands: () => Command[]): Command {
  return {
    name: 'completion',
    summary: 'print a shell completion script (bash or zsh)',
    help: `Usage: dw completion bash|zsh

Prints a script that completes dw's commands, their options and workflow files.

  bash, this shell:     eval "$(dw completion bash)"
  bash, every shell:    dw completion bash > ~/.local/share/bash-completion/completions/dw
  zsh, this shell:      source <(dw completion zsh)
  zsh, every shell:     dw completion zsh > ~/.zfunc/_dw
                        (and fpath=(~/.zfunc $fpath) before compinit in ~/.zshrc)

Options:
  -h, --help   show this help`,
    positionals: 1,
    completes: Object.keys(SHELLS),
    options: {},
    async run(_values, positionals) {
      const shell = positionals[0];
      const make = shell !== undefined && Object.hasOwn(SHELLS, shell) ? SHELLS[shell] : undefined;
      if (!make)
        throw new DwError(
          'DW_ERR_USAGE',
          `dw completion takes a shell: ${Object.keys(SHELLS).join(' or ')}${shell === undefined ? '' : `, not "${shell}"`}; see dw completion --help`,
        );
      process.stdout.write(make(specs(commands())));
      return EXIT.OK;
    },
  };
}
