"""`amshortcut generate`: sample structures from a trained checkpoint into an extxyz file."""

from __future__ import annotations

from pathlib import Path

import typer

from core.catalog import DEFAULT_STEPS, FRAMEWORK_LABELS, SYSTEM_CELL, SYSTEM_DEFAULT_STEPS, SYSTEMS
from core.cli import app
from core.errors import UserError

HELP = (
    "Generate amorphous structures with a trained checkpoint and write them (ghosts removed) to an "
    "extxyz file. AMShortcut uses probability-flow shortcuts below 50 steps and Euler–Maruyama "
    "from 50 on. Targets are given in dataset units; unnamed properties are left free.\n\n"
    "Without --checkpoint the shipped model assets/checkpoints/<system>/<framework>/ is used.\n\n"
    "Example: amshortcut generate --system a-SiO2 --framework shortcut --steps 1 --n 10 "
    "--cell 18 --property shear_modulus=30 --out gen.extxyz\n\n"
    "With --relax each structure is also relaxed at fixed cell with the system's classical potential "
    "(LAMMPS; a-Si: Stillinger–Weber, a-SiO2: Tersoff Si–O, MEG: BMP-shrm): --out then holds the relaxed "
    "structures, <out stem>.unrelaxed<suffix> the model's own, and a table of the structure checks before and after "
    "(first-shell shares, close pairs, composition, energy per atom) and the seconds is printed."
)


def unrelaxed_path(out: Path) -> Path:
    """Where --relax writes the model's own structures: gen.extxyz -> gen.unrelaxed.extxyz."""
    return out.with_name(f"{out.stem}.unrelaxed{out.suffix}")


def _structures(n: int, adjective: str = "") -> str:
    """'1 structure', '2 relaxed structures'."""
    return " ".join([str(n), *([adjective] if adjective else []), "structure" if n == 1 else "structures"])


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
    system: str = typer.Option("a-Si", help=f"Material system of the shipped checkpoint ({', '.join(SYSTEMS)})."),
    framework: str = typer.Option("shortcut", help="Framework of the shipped checkpoint: shortcut | sde | ode."),
    out: Path = typer.Option(..., help="Output file; its name gives the format (.extxyz keeps the targets "
                             "and provenance; any structure format ase writes, e.g. .cif, .traj)."),
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
    seed: int = typer.Option(0, help="Random seed, 0 to 2^31-1 (same seed, same structures on one device)."),
    cell: str = typer.Option("", help="Cell edge in Å (cubic) or 'a,b,c'; default: the system's generation cell ("
                             + ", ".join(f"{s} {a:g} Å" for s, a in SYSTEM_CELL.items())
                             + "; core.catalog.SYSTEM_CELL), else the first training cell."),
    rho_max: float = typer.Option(0.0, help="Atoms/Å^3 incl. ghosts (0 = the model's training value)."),
    prop: list[str] = typer.Option(None, "--property", help="Target property name=value (repeatable)."),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    batch_size: int = typer.Option(0, help="Structures per batch (0 = as many as fit in memory)."),
    compile: bool = typer.Option(False, "--compile", help="Compile the network's kernels with torch.compile "
                                 "first (about half a minute, then 1.1-1.3x faster on CPU): for many structures."),
    relax: bool = typer.Option(False, "--relax", help="Relax the structures (fixed cell, the system's classical "
                               "potential, LAMMPS minimisation to a force 2-norm < 1e-4 eV/Å or 2,000 iterations): "
                               "--out gets the relaxed ones, <out stem>.unrelaxed<suffix> the unrelaxed; prints the "
                               "checks before and after and the seconds."),
):
    from core.catalog import default_cell, default_steps, property_ranges, shipped_checkpoint
    from core.request import as_cell, check_batch_size, check_seed, extrapolation_warnings
    from core.material import check_writable, structure_format

    # Everything that needs no model is checked first: a refusal costs no loading and writes nothing.
    props = _parse_properties(prop)
    check_seed(seed)
    check_batch_size(batch_size or None)
    if n < 1:
        raise UserError(f"--n must be a positive whole number of structures, got {n}")
    if steps is not None and steps < 1:
        raise UserError(f"--steps must be a positive whole number, got {steps}")
    if rho_max < 0:
        raise UserError(f"--rho-max must be a positive density in atoms/Å^3 (or 0 for the model's), got {rho_max:g}")
    fmt = structure_format(out, n)
    check_writable(out, make_parents=True)
    if relax:
        check_writable(unrelaxed_path(out))
    cell_value = None
    if cell:
        try:
            lengths = [float(x) for x in cell.split(",")]
        except ValueError:
            raise UserError(f"--cell expects a length in Å or 'a,b,c', got {cell!r}") from None
        if len(lengths) not in (1, 3):
            raise UserError(f"--cell expects one length or three (a,b,c), got {len(lengths)}")
        cell_value = lengths[0] if len(lengths) == 1 else lengths
        as_cell(cell_value)  # positive lengths

    from tqdm.auto import tqdm

    from core.checkpoint import load_checkpoint
    from core.material import write_structures
    from core.sampling import generate

    model = load_checkpoint(checkpoint if checkpoint is not None else shipped_checkpoint(system, framework))
    if steps is None:
        steps = default_steps(model.framework.name, system if checkpoint is None else None)
    if cell_value is None and checkpoint is None:
        cell_value = default_cell(system)
    if cell_value is None:
        cell_value = model.training.get("cell")
        if cell_value is None:
            raise UserError("this checkpoint records no training cell; give --cell")
    if relax:
        from ase.data import chemical_symbols

        from core.relax import relax_system

        relax_for = relax_system(chemical_symbols[z] for z in model.species)  # refused before sampling
    ranges = property_ranges({"properties": model.property_names, "property_stats": model.property_stats})
    for line in extrapolation_warnings(ranges, props):
        typer.echo(f"warning: {line}", err=True)
    bars = []

    def progress(done, total):
        if not bars:
            bars.append(tqdm(total=total, desc="generate", unit="step"))
        bars[0].update(done - bars[0].n)

    structures = generate(model, n, steps, cell_value, rho_max or None, props, device=device, seed=seed,
                          progress=progress, batch_size=batch_size or None, grid_power=grid_power, guidance=guidance,
                          compile=compile)
    for bar in bars:
        bar.close()
    if not relax:
        write_structures(out, structures)
        typer.echo(f"wrote {_structures(len(structures))} to {out}")
        return
    from core.relax import relax as relax_structures, report_rows

    relaxed, report = relax_structures(structures, relax_for)
    write_structures(unrelaxed_path(out), structures, format=fmt)
    write_structures(out, relaxed)
    typer.echo(f"relaxed {_structures(report['n_structures'])} in {report['seconds']:.1f} s with "
               f"{report['potential']} ({report['tolerance']}): {report['converged']} converged, largest force "
               f"left {report['max_force']:.2g} eV/Å")
    rows = [("check", "before", "after")] + report_rows(report)
    width = max(len(r[0]) for r in rows)
    for check, before, after in rows:
        typer.echo(f"  {check:<{width}}  {before:>8}  {after:>8}")
    typer.echo(f"wrote {_structures(len(relaxed), 'relaxed')} to {out} and the unrelaxed ones to {unrelaxed_path(out)}")
