"""``python -m medxfer``: the same entry point as the ``medxfer`` script."""

from medxfer.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
