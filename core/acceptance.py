"""The acceptance protocol: whether a trained checkpoint still generates real structure.

The protocol: ``n_samples`` structures at ``steps`` sampling steps (grid ``grid_power``, default
1 = uniform), seed ``seed``, on the CPU, in the cell of the first validation structure of the
system's dataset, scored by the RDF RMSD against its ``reference.npz``. A shipped checkpoint
carries the settings and its limit in ``acceptance.json``; the limit is a factor times the RDF
RMSD that ``benchmarks/structure.py`` measured for it, and it is kept only if it separates the
trained network (below) from the same network freshly initialised (above), so a broken loader,
a wrong schedule or an untrained model fails it. The CI test of every shipped checkpoint,
``benchmarks/acceptance.py`` (writes the file) and ``benchmarks/protocol.py`` (the protocol at
several step counts, with bonding diagnostics) all use this module.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from core.errors import UserError
from core.metrics.checks import FIRST_SHELL

DEFAULT_FACTOR = 1.5
"""Limit = factor x the benchmark's RDF RMSD at the protocol's step count."""

BONDS = FIRST_SHELL
"""Per system: the first-shell rules the bonding diagnostics count (`core.metrics.checks`)."""


def protocol_data(system: str, assets=None):
    """(first validation structure, whose cell the protocol samples in; reference RDF) of ``system``."""
    from core.catalog import data_dir
    from core.datasets import load_dataset

    directory = data_dir(system, assets)
    with np.load(directory / "reference.npz") as ref:
        reference = ref["rdf"]
    return load_dataset(directory, split="val")[0], reference


def protocol_samples(checkpoint, acceptance: dict, cell):
    """The protocol's structures: ``acceptance``'s n_samples, steps, seed and grid_power (default 1,
    uniform), on the CPU, in ``cell``."""
    from core.sampling import generate

    return generate(checkpoint, acceptance["n_samples"], acceptance["steps"], cell,
                    seed=acceptance["seed"], device="cpu", grid_power=acceptance.get("grid_power", 1.0))


def protocol_rdf_rmsd(checkpoint, acceptance: dict, system: str, assets=None) -> float:
    """RDF RMSD of the acceptance protocol's samples against the system's reference curves."""
    from core.metrics import curve_rmsd, rdf

    structure, reference = protocol_data(system, assets)
    return curve_rmsd(rdf(protocol_samples(checkpoint, acceptance, structure.cell.array))[1], reference)


def untrained(checkpoint, seed: int = 0):
    """The same checkpoint with a freshly initialised network (torch seed ``seed``)."""
    import torch

    from core.model import Denoiser

    torch.manual_seed(seed)
    return dataclasses.replace(checkpoint, network=Denoiser(checkpoint.network.cfg).eval())


def acceptance_record(checkpoint, system: str, *, steps: int, benchmark: float, n_samples: int = 8,
                      seed: int = 0, factor: float = DEFAULT_FACTOR, note: str = "", assets=None) -> dict:
    """The ``acceptance.json`` content for ``checkpoint``: protocol settings, ``max_rdf_rmsd`` =
    ``factor`` x ``benchmark`` (rounded to 3 decimals) and its ``basis``; also the measured
    ``trained`` and ``untrained`` RDF RMSD (not written to the file).

    Raises ``UserError`` when the limit does not separate the trained network from an untrained one.
    """
    if not (math.isfinite(benchmark) and benchmark > 0 and math.isfinite(factor) and factor > 0):
        raise UserError(f"the benchmark RDF RMSD and the factor must be positive, got {benchmark} and {factor}")
    acceptance = {"steps": int(steps), "n_samples": int(n_samples), "seed": int(seed)}
    limit = round(factor * benchmark, 3)
    trained = protocol_rdf_rmsd(checkpoint, acceptance, system, assets)
    fresh = protocol_rdf_rmsd(untrained(checkpoint), acceptance, system, assets)
    if not trained < limit < fresh:
        raise UserError(f"the limit {limit} does not separate the trained network ({trained:.3f}) from an "
                        f"untrained one ({fresh:.3f}); choose another step count or factor")
    step = checkpoint.training.get("step")
    basis = (f"{factor:g} x the {steps}-step RDF RMSD {benchmark:.3f} of benchmarks/structure.py"
             f"{' (' + note + ')' if note else ''}; this protocol ({n_samples} samples, seed {seed}, first val "
             f"cell) measured {trained:.3f} trained (training step {step}), {fresh:.3f} for the untrained network")
    return {**acceptance, "max_rdf_rmsd": limit, "basis": basis, "trained": trained, "untrained": fresh}


def write_acceptance(directory, record: dict) -> Path:
    """Write ``record`` (from ``acceptance_record``, measured values left out) as ``<directory>/acceptance.json``."""
    path = Path(directory) / "acceptance.json"
    kept = {k: v for k, v in record.items() if k not in ("trained", "untrained")}
    path.write_text(json.dumps(kept, indent=1) + "\n")
    return path


# ----------------------------------------------------------------------------- diagnostics


def bonding(structures, system: str) -> dict[str, float]:
    """{"<centre>-<n><neighbour> %": share with the ideal count, "sd <centre>-<neighbour>": spread
    (Å) of the first bond's lengths} for ``system``'s ``BONDS`` (empty for other systems)."""
    from core.metrics import neighbour_pairs

    out = {}
    for k, (centre, neighbour, r_cut, ideal) in enumerate(BONDS.get(system, [])):
        counts, lengths = neighbour_pairs(structures, centre, neighbour, r_cut)  # one neighbour list per bond
        out[f"{centre}-{ideal}{neighbour} %"] = 100 * float(np.mean(counts == ideal)) if len(counts) else float("nan")
        if k == 0:
            out[f"sd {centre}-{neighbour}"] = float(np.std(lengths)) if len(lengths) else float("nan")
    return out


def species_counts(structures) -> dict[str, float]:
    """Mean number of real atoms per element symbol over ``structures``."""
    counts: dict[str, list[int]] = {}
    for atoms in structures:
        symbols = atoms.get_chemical_symbols()
        for s in set(symbols):
            counts.setdefault(s, []).append(symbols.count(s))
    return {s: float(np.sum(c)) / len(structures) for s, c in sorted(counts.items())}
