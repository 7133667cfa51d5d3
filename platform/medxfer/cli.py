"""``medxfer <verb>``: one Typer app; thin, every verb calls into the modules.

Verb groups live beside the code they drive (``<package>/cli.py`` defines a ``typer.Typer``) and
are registered in ``_GROUPS`` / ``_COMMANDS`` below. Heavy imports (torch, ray, mlflow) happen
inside the commands so that ``medxfer --help`` stays fast.

Bad input raises :class:`medxfer.errors.MedxferInputError` (or ``ValueError`` from config
validation); :func:`main` prints it and exits with code 2.
"""

from __future__ import annotations

import importlib
import sys
import typer

from medxfer.errors import MedxferInputError

app = typer.Typer(
    name="medxfer",
    help="Medical-imaging transfer learning: sweeps on Ray Tune, runs in MLflow, "
         "transferability estimation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

from medxfer.cli_common import TrackingUriOption  # noqa: F401  (re-exported)

# (module, attribute, group name): sub-apps, e.g. `medxfer benchmark import`.
_GROUPS: list[tuple[str, str, str]] = [
    ("medxfer.tracking.cli", "benchmark_app", "benchmark"),
    ("medxfer.transferability.cli", "estimate_app", "estimate"),
    ("medxfer.data.cli", "data_app", "data"),
]
# (module, attribute): single verbs, e.g. `medxfer ui`.
_COMMANDS: list[tuple[str, str]] = [
    ("medxfer.tracking.cli", "ui"),
    ("medxfer.demo", "demo"),
    ("medxfer.train.cli", "train"),
]


def _register() -> None:
    for module, attr, name in _GROUPS:
        app.add_typer(getattr(importlib.import_module(module), attr), name=name)
    for module, attr in _COMMANDS:
        fn = getattr(importlib.import_module(module), attr)
        app.command(name=fn.__name__.replace("_", "-"))(fn)


_register()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app, map bad input to exit code 2."""
    try:
        rv = app(args=argv, standalone_mode=False)
        if isinstance(rv, int):  # click returns the code of typer.Exit in this mode
            return rv
    except MedxferInputError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        return 2
    except (typer.Abort, KeyboardInterrupt):
        typer.secho("aborted", err=True)
        return 130
    except SystemExit as exc:  # typer.Exit inside commands
        return int(exc.code or 0)
    except Exception as exc:  # click usage errors come through here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
