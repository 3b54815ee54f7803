"""`amshortcut generate`: sample structures from a trained checkpoint into an extxyz file."""

from __future__ import annotations

from pathlib import Path

import typer

from core.catalog import DEFAULT_STEPS, FRAMEWORK_LABELS, SYSTEM_DEFAULT_STEPS
from core.cli import app
from core.errors import UserError

HELP = (
    "Generate amorphous structures with a trained checkpoint and write them (ghosts removed) to an "
    "extxyz file. AMShortcut uses probability-flow shortcuts below 50 steps and Euler–Maruyama "
    "from 50 on. Targets are given in dataset units; unnamed properties are left free.\n\n"
    "Without --checkpoint the shipped model assets/checkpoints/<system>/<framework>/ is used.\n\n"
    "Example: amshortcut generate --system a-SiO2 --framework shortcut --steps 1 --n 10 "
    "--cell 18 --property shear_modulus=30 --out gen.extxyz"
)


def _parse_properties(items):
    props = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--property expects name=value, got {item!r}")
        try:
            props[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"--property {name.strip()}: {value!r} is not a number") from None
    return props


@app.command("generate", help=HELP)
def generate_command(
    checkpoint: Path = typer.Option(None, help="Checkpoint directory (config.json + weights.pt); "
                                    "overrides --system/--framework."),
    system: str = typer.Option("a-Si", help="Material system of the shipped checkpoint (a-Si, a-SiO2)."),
    framework: str = typer.Option("shortcut", help="Framework of the shipped checkpoint: shortcut | sde | ode."),
    out: Path = typer.Option(..., help="Output extxyz file."),
    steps: int = typer.Option(None, help="Integration steps (default: the framework's, "
                                         + ", ".join(f"{FRAMEWORK_LABELS[f]} {n}" for f, n in DEFAULT_STEPS.items())
                                         + "".join(f"; {s} {FRAMEWORK_LABELS[f]} {n}" for s, d in
                                                   SYSTEM_DEFAULT_STEPS.items() for f, n in d.items())
                                         + "; see core.catalog.DEFAULT_STEPS).",
                              show_default=False),
    grid_power: float = typer.Option(1.0, help="Sampling grid t_k = (1 - k/steps)^P: 1 = uniform steps (the "
                                     "paper's); 1.5-3 = shorter steps near t = 0, where bonds form."),
    guidance: float = typer.Option(0.0, help="Classifier-free guidance weight w: (1 + w) conditional - w "
                                   "unconditional output, when a --property is given (0 = none, the "
                                   "paper's; doubles the cost of a step)."),
    n: int = typer.Option(1, help="Number of structures."),
    seed: int = typer.Option(0, help="Random seed (same seed, same structures on one device)."),
    cell: str = typer.Option("", help="Cell edge in Å (cubic) or 'a,b,c'; default: the first training cell."),
    rho_max: float = typer.Option(0.0, help="Atoms/Å^3 incl. ghosts (0 = the model's training value)."),
    prop: list[str] = typer.Option(None, "--property", help="Target property name=value (repeatable)."),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    batch_size: int = typer.Option(0, help="Structures per batch (0 = as many as fit in memory)."),
):
    from tqdm.auto import tqdm

    from core.catalog import default_steps, shipped_checkpoint
    from core.checkpoint import load_checkpoint
    from core.material import write_structures
    from core.sampling import generate

    model = load_checkpoint(checkpoint if checkpoint is not None else shipped_checkpoint(system, framework))
    props = _parse_properties(prop)
    if steps is None:
        steps = default_steps(model.framework.name, system if checkpoint is None else None)
    if cell:
        try:
            lengths = [float(x) for x in cell.split(",")]
        except ValueError:
            raise UserError(f"--cell expects a length in Å or 'a,b,c', got {cell!r}") from None
        cell_value = lengths[0] if len(lengths) == 1 else lengths
    else:
        cell_value = model.training.get("cell")
        if cell_value is None:
            raise UserError("this checkpoint records no training cell; give --cell")
    bars = []

    def progress(done, total):
        if not bars:
            bars.append(tqdm(total=total, desc="generate", unit="step"))
        bars[0].update(done - bars[0].n)

    structures = generate(model, n, steps, cell_value, rho_max or None, props, device=device, seed=seed,
                          progress=progress, batch_size=batch_size or None, grid_power=grid_power, guidance=guidance)
    for bar in bars:
        bar.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    write_structures(out, structures)
    typer.echo(f"wrote {len(structures)} structures to {out}")
