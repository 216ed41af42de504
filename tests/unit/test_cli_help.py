"""Every command's ``--help`` ends with examples; the checked-in man page and shell completions
are what the commands generate; bash completion completes through the real ``ddi``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ddi.cli import main
from ddi.cli.examples import EXAMPLES
from ddi.cli.manpage import COMPLETION_FILES, completion_script, man_page

ROOT = Path(__file__).resolve().parents[2]


def _paths(group: click.Group, path: tuple[str, ...] = ()) -> list[str]:
    found: list[str] = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _paths(command, (*path, name))
        else:
            found.append(" ".join((*path, name)))
    return found


@pytest.mark.parametrize("path", _paths(main))
def test_every_command_has_examples_in_its_help(path: str) -> None:
    assert path in EXAMPLES, f"add examples for `ddi {path}` to ddi/cli/examples.py"
    result = CliRunner().invoke(main, [*path.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output
    assert EXAMPLES[path][0] in result.output


def test_the_checked_in_man_page_is_the_generated_one() -> None:
    shipped = (ROOT / "share" / "man" / "ddi.1").read_text()
    assert shipped == man_page(main), "run: python -m ddi.cli.manpage"
    assert ".SS ddi reserve add" in shipped
    assert "\\-\\-client\\-id" in shipped


@pytest.mark.parametrize("shell", sorted(COMPLETION_FILES))
def test_the_checked_in_completions_are_the_generated_ones(shell: str) -> None:
    shipped = (ROOT / "share" / "completion" / COMPLETION_FILES[shell]).read_text()
    assert shipped == completion_script(main, shell), "run: python -m ddi.cli.manpage"


def test_bash_completion_completes_commands_and_options() -> None:
    def complete(words: str) -> list[str]:
        cword = len(words.split()) - (0 if words.endswith(" ") else 1)
        env = {**os.environ, "_DDI_COMPLETE": "bash_complete", "COMP_WORDS": words,
               "COMP_CWORD": str(cword)}  # fmt: skip
        # The installed entry point, as the completion script calls it.
        ddi = Path(sys.executable).parent / "ddi"
        result = subprocess.run(
            [str(ddi)], env=env, capture_output=True, text=True, timeout=30, check=False
        )
        return result.stdout.split()

    assert "plain,reserve" in complete("ddi res")
    assert "plain,reload" in complete("ddi rel")
    assert "plain,--client-id" in complete("ddi reserve add --cli")


def test_json_errors_go_to_stdout_with_the_exit_code(tmp_path: Path) -> None:
    gone = str(tmp_path / "none.sock")
    result = CliRunner().invoke(main, ["--socket", gone, "status", "--json"])
    assert result.exit_code == 3
    error = json.loads(result.stdout)
    assert error["error"] == "unreachable"
    assert error["exit_code"] == 3
    assert gone in error["message"]
    usage = CliRunner().invoke(main, ["reserve", "add", "--ip", "198.18.0.5", "--json"])
    assert usage.exit_code == 2
    assert json.loads(usage.stdout)["message"] == "Missing option '--hostname'."
    plain = CliRunner().invoke(main, ["--socket", gone, "status"])
    assert plain.exit_code == 3
    assert plain.stdout == ""
