"""Every ``chronorec ...`` command shown in the README and docs/ parses against the real CLI: no
renamed command, removed option or wrong value type left in the documentation."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from chronorec.cli import _load_commands, app

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "src/chronorec/cli").glob("*.py")),
        REPO / "src/chronorec/train/experiment.py"]
COMMAND = re.compile(r"(?:^|\s|/)chronorec\s+([a-z].*)$")


def documented_commands(text: str) -> list[tuple[int, str]]:
    """``(line, arguments)`` of each ``chronorec`` command in fenced or indented code, continuation
    lines joined; comments, and the notation of optional ``[...]`` parts and ``a|b`` choices, dropped."""
    found: list[tuple[int, str]] = []
    fenced, pending = False, ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if not (fenced or line.startswith("    ")):
            pending = ""
            continue
        code = f"{pending} {line.strip()}".strip() if pending else line.strip()
        pending = ""
        if code.endswith("\\"):
            pending = code.rstrip("\\")  # "\\" in a Python docstring's source
            continue
        match = COMMAND.search(code)
        if match is None or code.startswith(("#", "import ", "from ")):
            continue
        args = re.sub(r"\s#.*$", "", match.group(1))  # trailing comment
        args = re.sub(r"[\[\]]", "", args).replace("...", "")  # [--opt X], RUN...
        args = re.sub(r"(\S+?)\|\S+", r"\1", args)  # best|last -> best
        args = re.sub(r"\$\{?\w+\}?", "0", args)  # shell variables
        found.append((number, args))
    return found


def parse(args: list[str]) -> None:
    """Parse ``chronorec ARGS`` down to the leaf command without running it."""
    _load_commands()
    command, name, ctx = typer.main.get_command(app), "chronorec", None
    while True:
        ctx = command.make_context(name, list(args), parent=ctx)
        if not hasattr(command, "get_command"):
            return
        rest = [*(getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", [])), *ctx.args]
        if not rest:
            return
        name, args = rest[0], rest[1:]
        sub = command.get_command(ctx, name)
        if sub is None:
            raise AssertionError(f"no command {name!r}")
        command = sub


CASES = [(f"{path.relative_to(REPO)}:{n}", args) for path in DOCS for n, args in documented_commands(path.read_text())]


def test_the_docs_show_many_commands() -> None:
    assert len(CASES) >= 40
    assert {a.split()[0] for _, a in CASES} >= {"prepare", "train", "evaluate", "predict", "reproduce", "analyze",
                                                "report", "serve", "export", "bench", "models"}


@pytest.mark.parametrize(("where", "args"), CASES, ids=[w for w, _ in CASES])
def test_documented_command_parses(where: str, args: str) -> None:
    try:
        parse(shlex.split(args))
    except Exception as err:  # click's usage errors, or a missing command
        pytest.fail(f"{where}: chronorec {args}\n  -> {type(err).__name__}: {err}")


def test_a_wrong_option_is_caught() -> None:
    with pytest.raises(Exception, match="--stepz"):
        parse(["bench", "train", "--data", "x", "--model", "din", "--stepz", "3"])
