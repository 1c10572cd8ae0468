"""Shell completion for supplyctl, written from its argparse parser, so that it follows every
command and choice added there: `source <(supplyctl completion bash)` (or zsh)."""

from __future__ import annotations

import argparse
import shlex


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def words(parser: argparse.ArgumentParser) -> list[str]:
    """What may follow a command: its options, its positionals' choices, its own subcommands."""
    out: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            out.extend(action.choices)
        elif action.option_strings:
            out.extend(o for o in action.option_strings if o not in ("-h",))
        elif action.choices:
            out.extend(str(c) for c in action.choices)
    return list(dict.fromkeys(out))


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    prog = parser.prog
    fn = "_" + prog.replace("-", "_")
    cases = "\n".join(f"        {shlex.quote(name)}) words={shlex.quote(' '.join(words(sub)))} ;;"
                      for name, sub in _subparsers(parser).items())
    bash = f"""{fn}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" words
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W {shlex.quote(' '.join(words(parser)))} -- "$cur"))
        return
    fi
    case "${{COMP_WORDS[1]}}" in
{cases}
        *) words="" ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F {fn} {prog}"""
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + bash
    return bash
