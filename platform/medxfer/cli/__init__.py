"""``medxfer <verb>``: one Typer app; thin, every verb calls into the modules.

Every verb lives in this package (the top layer: it may import every other layer, and nothing
imports it): a module per verb or verb group (``benchmark.py`` defines a ``typer.Typer``), each
registered in ``_GROUPS`` / ``_COMMANDS`` below. Heavy imports (torch, ray, mlflow) happen
inside the commands so that ``medxfer --help`` stays fast.

Bad input raises :class:`medxfer.errors.MedxferInputError` (or ``ValueError`` from config
validation); :func:`main` prints it and exits with code 2. A sweep stopped by its stall
watchdog exits 3 with the ``--resume`` command (:func:`stopped_exit_code`).
"""

from __future__ import annotations

import importlib
import sys
import typer

from medxfer.cli.common import TrackingUriOption  # noqa: F401  (re-exported)
from medxfer.errors import MedxferInputError

app = typer.Typer(
    name="medxfer",
    help="Medical-imaging transfer learning: sweeps on Ray Tune, runs in MLflow, "
         "transferability estimation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (module, attribute, group name): sub-apps, e.g. `medxfer benchmark import`.
_GROUPS: list[tuple[str, str, str]] = [
    ("medxfer.cli.benchmark", "benchmark_app", "benchmark"),
    ("medxfer.cli.estimate", "estimate_app", "estimate"),
    ("medxfer.cli.data", "data_app", "data"),
    ("medxfer.cli.analyze", "analyze_app", "analyze"),
]
# (module, attribute): single verbs, e.g. `medxfer ui`.
_COMMANDS: list[tuple[str, str]] = [
    ("medxfer.cli.benchmark", "ui"),
    ("medxfer.cli.demo", "demo"),
    ("medxfer.cli.sweep", "sweep"),
    ("medxfer.cli.study", "study"),
    ("medxfer.cli.train", "train"),
    ("medxfer.cli.report", "report"),
]


def _register() -> None:
    for module, attr, name in _GROUPS:
        app.add_typer(getattr(importlib.import_module(module), attr), name=name)
    for module, attr in _COMMANDS:
        fn = getattr(importlib.import_module(module), attr)
        app.command(name=fn.__name__.replace("_", "-"))(fn)


_register()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code (bad input -> 2, usage errors -> 2)."""
    from medxfer.quiet import quiet_third_party

    quiet_third_party()
    try:
        app(args=argv, standalone_mode=True)
    except MedxferInputError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        return 2
    except SystemExit as exc:  # click ends every standalone run with sys.exit(code)
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:
        code = stopped_exit_code(exc)
        if code is None:  # a crash: its traceback is the report
            raise
        typer.secho(f"error: {exc}", err=True, fg="red")
        return code
    return 0


def stopped_exit_code(exc: BaseException) -> int | None:
    """The exit code of a command stopped on purpose, None for any other error: a sweep the
    stall watchdog stopped exits 3 (its message is the ``--resume`` command)."""
    from medxfer.tune.stalled import EXIT_STALLED, SweepStalled

    return EXIT_STALLED if isinstance(exc, SweepStalled) else None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
