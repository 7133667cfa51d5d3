"""The CLI shell: fast to start, every verb documented with an example."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from medxfer.cli import app, main


def test_import_does_not_pull_heavy_libraries():
    code = ("import sys, medxfer.cli; "
            "print(','.join(m for m in ('torch', 'mlflow', 'ray', 'sklearn', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""


def _verbs():
    root = typer.main.get_command(app)
    stack = [((), root)]
    while stack:
        path, cmd = stack.pop()
        if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
            stack.extend((path + (n,), c) for n, c in cmd.commands.items())
        else:
            yield path


@pytest.mark.parametrize("verb", sorted(_verbs()), ids=" ".join)
def test_every_verb_has_help_with_an_example(verb, capsys):
    assert main([*verb, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example" in out and "medxfer " in out.split("Example", 1)[1]


def test_unknown_verb_is_a_usage_error(capsys):
    assert main(["no-such-verb"]) == 2
    assert "No such command" in capsys.readouterr().err
