"""The argument parser of every facegan command: options only in full, and one-line errors that suggest a fix.

argparse by default accepts any unambiguous prefix of a long option, so `train --res 64` silently meant
`--resume 64`. `FaceganParser` turns that off (and every subcommand parser argparse makes from it inherits the
class), and answers an unknown option with the nearest real one, the reason it does not apply here
(`not_here`), or the other commands that have it.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from facegan.utils.text import is_number


class FaceganParser(argparse.ArgumentParser):
    """An ArgumentParser with prefix matching off, one-line errors, and hints for unknown options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.not_here: dict[str, str] = {}  # option → why this command has no such option

    def explain_absent(self, reason: str, *options: str) -> None:
        """Answer any of `options` (which this command does not have) with `reason` instead of a guess."""
        for option in options:
            self.not_here[option] = reason

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        """Parse like argparse; unknown arguments are reported by the (sub)command they were given to."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            owner = chosen_parser(self, parsed)
            owner.error(unrecognized_message(owner, extras, self))
        return parsed

    def error(self, message: str) -> NoReturn:
        """One line on stderr (no usage block; --help has it) and exit status 2, as argparse does."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def subcommand_actions(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:
    """The parser's subcommand groups (argparse keeps them among its actions)."""
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def walk_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every subcommand parser below it, each once."""
    seen: set[int] = set()
    stack = [parser]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for action in subcommand_actions(current):
            stack.extend(action.choices.values())


def chosen_parser(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost subcommand parser that `parsed` went through (the parser itself when it has none)."""
    for action in subcommand_actions(parser):
        chosen = action.choices.get(getattr(parsed, action.dest, None))
        if chosen is not None:
            return chosen_parser(chosen, parsed)
    return parser


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string the parser accepts, e.g. ['-h', '--help', '--out', ...]."""
    return [s for action in parser._actions for s in action.option_strings]



def unrecognized_message(owner: argparse.ArgumentParser, extras: list[str],
                         root: argparse.ArgumentParser | None = None) -> str:
    """What to tell the user about `extras`, arguments `owner` does not take: for the first unknown option, the
    reason it does not apply, the option meant (an abbreviation or a near miss), or the commands that have it."""
    options = [a.split("=", 1)[0] for a in extras if a.startswith("-") and len(a) > 1 and not is_number(a)]
    if not options:
        return f"unrecognized arguments: {' '.join(extras)}"
    name = options[0]
    return f"unrecognized option {name}: {option_hint(owner, name, root)}"


def option_hint(owner: argparse.ArgumentParser, name: str, root: argparse.ArgumentParser | None = None) -> str:
    """Why `owner` has no option `name`, or which option was probably meant."""
    reason = getattr(owner, "not_here", {}).get(name)
    if reason:
        return reason
    if root is not None and owner is not root and name in option_strings(root):
        return f"{name} is an option of {root.prog} itself; give it before the command"
    known = option_strings(owner)
    if root is not None and owner is not root:  # an option meant for `facegan` itself, given before the command
        known += [k for k in option_strings(root) if k not in known]
    longer = [k for k in known if k.startswith("--") and k.startswith(name) and len(name) > 2]
    if longer:
        return f"options are not abbreviated; did you mean {' or '.join(longer)}?"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
    if close:
        return f"did you mean {close[0]}?"
    elsewhere = [p.prog for p in walk_parsers(root) if p is not owner and name in option_strings(p)] if root else []
    if elsewhere:
        return f"that is an option of {', '.join(sorted(elsewhere))}, not of {owner.prog}"
    return "no such option"
