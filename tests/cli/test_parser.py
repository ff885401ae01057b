"""Options are accepted only in full, and an unknown option gets one line that says what was meant or why not."""

from __future__ import annotations

import argparse

import pytest

from facegan.cli.main import build_parser, main
from facegan.cli.parser import chosen_parser, option_strings, walk_parsers


def command_path(root: argparse.ArgumentParser, parser: argparse.ArgumentParser) -> list[str]:
    """The words after `facegan` that select `parser` (e.g. ['data', 'info'])."""
    return parser.prog.split()[len(root.prog.split()):]


def filled_arguments(parser: argparse.ArgumentParser) -> list[str]:
    """Placeholder values for the parser's required positionals and required options, so that parsing gets past
    them and only the option under test decides the outcome."""
    words: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        value = str(action.choices[0]) if action.choices else "1"
        if not action.option_strings and action.nargs not in ("?", "*"):
            words.append(value)
        elif action.option_strings and action.required:
            words += [action.option_strings[-1], value]
    return words


def test_every_parser_refuses_option_prefixes() -> None:
    root = build_parser()
    parsers = list(walk_parsers(root))
    assert len(parsers) >= 14  # facegan, its 11 commands, data and its 2 actions
    tried = 0
    for parser in parsers:
        assert parser.allow_abbrev is False, parser.prog
        if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
            continue  # its options are tried through the leaf commands below it
        known = set(option_strings(parser))
        for option in (s for s in option_strings(parser) if s.startswith("--") and len(s) >= 5):
            prefix = option[:-1]
            if prefix in known:
                continue  # e.g. --lr, a prefix of --lr-g, is an option in its own right
            argv = command_path(root, parser) + filled_arguments(parser) + [prefix]
            # With prefixes allowed, argparse would take `prefix` as `option` (or stop at a missing value or an
            # ambiguous prefix); without, it is left over, unrecognized.
            parsed, extras = root.parse_known_args(argv)
            assert extras == [prefix], f"{parser.prog} took {prefix} as {option}"
            assert chosen_parser(root, parsed) is parser
            tried += 1
    assert tried > 100


def one_error_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_train_res_says_why_it_does_not_apply(capsys: pytest.CaptureFixture[str]) -> None:
    err = one_error_line(["train", "--data", "D", "--out", "R", "--res", "64"], capsys)
    assert err.startswith("facegan train: error: unrecognized option --res:")
    assert "resolution" in err and "from the prepared dataset" in err and "facegan prepare" in err
    assert "--resume" not in err  # the old behaviour: --res taken as --resume
    assert "facegan train: error: unrecognized option --res:" in one_error_line(["train", "--res=32"], capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--batchsize", "4"], "unrecognized option --batchsize: did you mean --batch-size?"),
        (["train", "--check", "4"], "options are not abbreviated; did you mean --checkpoint-every?"),
        (["train", "--resu", "R"], "options are not abbreviated; did you mean --resume or --resume-if-exists?"),
        (["prepare", "src", "--out", "d", "--wor", "2"], "did you mean --workers?"),
        (["data", "info", "d", "--verif"], "facegan data info: error: unrecognized option --verif"),
        (["export", "run", "--out", "g.onnx", "--force"], "an option of facegan prepare, not of facegan export"),
        (["train", "-v"], "-v is an option of facegan itself; give it before the command"),
        (["train", "--qqqq"], "unrecognized option --qqqq: no such option"),
        (["train", "stray"], "unrecognized arguments: stray"),
    ],
)
def test_unknown_options_get_a_hint(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_error_line(argv, capsys)
    assert message in err
    assert err.rstrip().endswith(f"(see facegan {' '.join(argv[:2] if argv[0] == 'data' else argv[:1])} --help)")


def test_other_parse_errors_are_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert "invalid int value: 'many'" in one_error_line(["train", "--batch-size", "many"], capsys)
    assert "invalid choice: 'nope'" in one_error_line(["nope"], capsys)
