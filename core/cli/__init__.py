"""`amshortcut` command line: one Typer app, each command group in its own module."""

import sys

import typer

from core.errors import UserError

app = typer.Typer(
    name="amshortcut",
    help="AMShortcut Studio: generate amorphous structures (a-Si, a-SiO2, multi-element oxide glasses) with few-step "
    "shortcut diffusion models, build MD datasets, train models and measure structures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _flags_show_no_type() -> None:
    """Typer's help labels on/off flags (--json, --resume, --help) `<bool>`, as if they took a
    value; a flag takes none, so its type column stays empty."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_flags_show_no_type", False):
        return
    original = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) else original(self, ctx)

    display_type_rich._flags_show_no_type = True
    TyperOption.display_type_rich = display_type_rich


_flags_show_no_type()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"amshortcut {version('amshortcut-studio')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("amshortcut (not installed: pip install -e .)")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the installed version and exit."),
):
    # A callback keeps `amshortcut metrics ...` a subcommand even while only one command exists.
    pass


# Each command module registers itself on `app` when imported.
from core.cli import metrics_cmd  # noqa: E402,F401
from core.cli import generate_cmd, train_cmd  # noqa: E402,F401
from core.cli import dataset_cmd  # noqa: E402,F401


def main(argv=None):
    """Entry point: user errors become one clear line on stderr and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: Typer vendors click, `import click` fails
        if hasattr(exc, "show"):
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        raise
