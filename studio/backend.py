"""The studio's door into `core`'s science: every call that loads a model or computes goes
through `CoreBackend`.

The studio holds no science; besides this module it only reads `core.catalog` (metadata from
`config.json`) and `core.errors` (studio/README.md). This module imports `core` lazily (inside
each method) so the app starts, and shows a clear message, even while a piece of `core` is
missing. Tests pass their own backend object with the same methods to `Studio(backend=...)`.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

_MODEL_CACHE: dict[tuple[str, int], object] = {}
REFERENCE_KEYS = {"r": ("r_A", "rdf_r"), "rdf": ("g", "g_r", "rdf_g"),
                  "theta": ("theta_deg", "adf_theta"), "adf": ("p", "p_theta", "adf_p")}
"""Names accepted in reference.npz for each curve (a 2-D array is averaged over its rows)."""
_MODEL_LOCK = threading.Lock()
_GENERATE_LOCK = threading.Lock()
_REFERENCE_CACHE: dict[tuple, dict] = {}
_REFERENCE_LOCK = threading.Lock()
REFERENCE_MAX = 256  # training structures averaged when reference.npz is missing
CHECKS_MAX = 32  # training structures the structure checks (and 16 of them the energies) are measured on
CHEAP_PROPERTIES = ("ring_size_mean", "li_concentration")
"""Properties measured on every generated structure for the table (about a second or less each); the
moduli take LAMMPS minutes and are measured on request."""
_CHECKS_CACHE: dict[tuple, dict] = {}


def _model_key(path) -> tuple[str, int]:
    path = Path(path).resolve()
    return str(path), (path / "config.json").stat().st_mtime_ns


class CoreBackend:
    """Thin adapter from the studio to `core` (checkpoints, sampling, metrics, properties)."""

    def load_model(self, path: Path):
        """Load a checkpoint directory once per process; models are shared read-only by sessions."""
        from core.checkpoint import load_checkpoint

        key = _model_key(path)  # a retrained checkpoint at the same path is loaded afresh
        with _MODEL_LOCK:
            if key not in _MODEL_CACHE:
                _MODEL_CACHE[key] = load_checkpoint(path)
            return _MODEL_CACHE[key]

    def generate(self, model, *, n_samples, steps, cell, rho_max, properties, seed, progress, grid_power=1.0,
                 guidance=0.0):
        """Sample structures (ghosts stripped) with `core.sampling.generate` on the best device.

        One generation at a time per process: core seeds torch's global RNG, so two sessions
        sampling at once would mix their random streams (and share the same cores anyway).
        A waiting request still reacts to Cancel through `progress`.
        """
        from core.sampling import generate

        while not _GENERATE_LOCK.acquire(timeout=0.2):
            progress(0, steps, "Waiting for another session's generation to finish…")
        try:
            return generate(model, n_samples=n_samples, steps=steps, cell=cell, rho_max=rho_max,
                            properties=properties, device="auto", seed=seed, progress=progress,
                            grid_power=grid_power, guidance=guidance)
        finally:
            _GENERATE_LOCK.release()

    def estimate_memory(self, model_path: Path, *, n_samples, cell, rho_max):
        """Peak memory in bytes of one generation request (`core.sampling.estimate_memory`)."""
        from core.sampling import estimate_memory

        model = _MODEL_CACHE.get(_model_key(model_path))  # exact sizes once loaded
        return estimate_memory(n_samples, cell, rho_max, model=model)

    def default_device(self) -> str:
        """The device `generate(device="auto")` will use: a GPU when there is one."""
        from core.sampling import resolve_device

        return str(resolve_device("auto"))

    def device(self, structures) -> str:
        """Device that produced the structures, as recorded by core in `atoms.info`."""
        for atoms in structures:
            if "device" in atoms.info:
                return str(atoms.info["device"])
        return "unknown"

    def request_notes(self, model, cell) -> list[str]:
        """Caveats core can state before sampling (the cell's t = 1 marginal vs the uniform prior)."""
        from core.sampling import PRIOR_MISMATCH_WARN, as_cell

        mismatch = float(model.framework.prior_mismatch(as_cell(cell)))
        if mismatch > PRIOR_MISMATCH_WARN:
            return [f"In this cell the model's t = 1 distribution differs from the uniform start by "
                    f"{mismatch:.2g} (Fourier modulation): few-step samples may be biased."]
        return []

    def reference(self, data_dir: Path) -> dict:
        """Averaged training-set curves {r, rdf, theta, adf} (+ scalars such as n) of a dataset.

        Read from `<data_dir>/reference.npz`; without it, measured once per process (core
        metrics) on up to `REFERENCE_MAX` training structures of the dataset's shards.
        Raises FileNotFoundError when there is neither.
        """
        npz = Path(data_dir) / "reference.npz"
        if not npz.exists():
            return self._reference_from_shards(Path(data_dir))
        with np.load(npz) as ref:
            raw = {key: np.asarray(ref[key]) for key in ref.files}
        out = {}
        for key, aliases in REFERENCE_KEYS.items():
            for alias in (key, *aliases):
                if alias in raw:
                    value = raw[alias]
                    out[key] = value.mean(axis=0) if value.ndim == 2 else value
                    break
        # scalars ride along: n (structures averaged), *_split_half_rmsd (the set against itself)
        out.update({key: float(value) for key, value in raw.items() if value.ndim == 0})
        return out

    def _reference_from_shards(self, data_dir: Path) -> dict:
        units = _shard_units(data_dir, "no reference.npz and no dataset shards")
        key = (str(data_dir.resolve()), units)
        with _REFERENCE_LOCK:
            if key not in _REFERENCE_CACHE:
                train = _first_train_structures(data_dir, units, REFERENCE_MAX)
                r, g = self.rdf(train)
                theta, p = self.adf(train)
                _REFERENCE_CACHE[key] = {"r": r, "rdf": g.mean(axis=0), "theta": theta, "adf": p.mean(axis=0),
                                         "n": len(train)}
            return _REFERENCE_CACHE[key]

    def structure_checks(self, structures, system=None) -> dict:
        """Coordination histogram and close pairs under ``system``'s rules (`core.metrics.structure_checks`)."""
        from core.metrics import structure_checks

        return structure_checks(structures, system=system)

    def composition_values(self, structures, system) -> tuple[str, list[float]] | None:
        """(label, one value per structure) of the system's composition rule (a-SiO2 O/Si, MEG Σq/N_O;
        `core.metrics.composition_values`), or None without one."""
        from core.metrics import composition_values

        found = composition_values(structures, system)
        return None if found is None else (found[0], [float(v) for v in found[1]])

    def potential_name(self, system) -> str:
        """Short name of the classical potential of ``system`` (`core.relax.POTENTIALS`)."""
        from core.relax import POTENTIALS

        return POTENTIALS[system].name.split(" (")[0].split(",")[0] if system in POTENTIALS else "classical potential"

    def energies_per_atom(self, structures) -> list[float]:
        """Potential energies in eV/atom with the composition's classical potential (LAMMPS, single
        points, one LAMMPS instance for the set; `core.properties.energies_per_atom`)."""
        from core.properties import energies_per_atom

        return energies_per_atom(structures)

    def reference_checks(self, data_dir: Path, system=None) -> dict:
        """Structure checks (under ``system``'s rules) and mean energy per atom of up to `CHECKS_MAX`
        training structures of a dataset's shards, measured once per process; FileNotFoundError
        without shards."""
        data_dir = Path(data_dir)
        units = _shard_units(data_dir, "no dataset shards")
        key = (str(data_dir.resolve()), units, system)
        with _REFERENCE_LOCK:
            if key not in _CHECKS_CACHE:
                train = _first_train_structures(data_dir, units, CHECKS_MAX)
                checks = self.structure_checks(train, system)
                checks["energy"] = float(np.mean(self.energies_per_atom(train[:16])))
                checks["n"] = len(train)
                _CHECKS_CACHE[key] = checks
            return _CHECKS_CACHE[key]

    def relax(self, structures, system, progress) -> tuple[list, dict]:
        """(relaxed structures, report) by `core.relax.relax`: fixed cell, the system's classical
        potential (LAMMPS); the report gains ``rows``, (check, before, after) display strings."""
        from core.relax import relax, report_rows

        relaxed, report = relax(structures, system, progress=progress)
        return relaxed, {**report, "rows": report_rows(report)}

    def rdf(self, structures):
        """(r Å, g[n, bins]) via `core.metrics.rdf`."""
        from core.metrics import rdf

        return rdf(structures)

    def adf(self, structures):
        """(θ degrees, P[n, bins]) via `core.metrics.adf`."""
        from core.metrics import adf

        return adf(structures)

    def curve_rmsd(self, generated, reference) -> float:
        """RMSD of set-averaged curves (paper App. B.5) via `core.metrics.curve_rmsd`."""
        from core.metrics import curve_rmsd

        return curve_rmsd(generated, reference)

    def density(self, atoms) -> float:
        """Number density of real atoms in atoms/Å^3 (`core.material.MaterialSample`)."""
        from core.material import MaterialSample

        return MaterialSample.from_atoms(atoms).density

    def cheap_properties(self, atoms, system=None) -> dict[str, float]:
        """The system's conditioning properties that take a second or less (`CHEAP_PROPERTIES`, by
        `core.properties.measure_property`): a-SiO2 mean ring size, MEG Li concentration. Without a
        system: the ring size of any structure with O (core defines rings on the Si–O network)."""
        from core.catalog import SYSTEM_PROPERTIES
        from core.properties import measure_property

        if system is None:
            names = ["ring_size_mean"] if "O" in set(atoms.get_chemical_symbols()) else []
        else:
            names = [p for p in SYSTEM_PROPERTIES.get(system, ()) if p in CHEAP_PROPERTIES]
        return {name: measure_property(name, atoms) for name in names}

    def measure_property(self, name: str, atoms) -> float:
        """A conditioning property of one structure, in dataset units (`core.properties.measure_property`)."""
        from core.properties import measure_property

        return measure_property(name, atoms)

    def inverse_errors(self, targets, achieved) -> dict:
        """MAE, RMSE, MAPE (%) and slope of achieved vs target values (`core.metrics`, paper App. B.7);
        the slope is NaN with one target."""
        from core.metrics import inverse_errors

        e = inverse_errors(targets, achieved)
        return {"MAE": e["mae"], "RMSE": e["rmse"], "MAPE %": e["mape"], "slope": e["slope"]}

    def shear_modulus(self, atoms) -> float:
        """Shear modulus in GPa by LAMMPS (slow: seconds to minutes)."""
        from core.properties import shear_modulus

        return float(shear_modulus(atoms))

    def write_extxyz(self, path: Path, structures) -> None:
        """Write structures to extxyz with `core.material.write_structures`."""
        from core.material import write_structures

        write_structures(path, structures)


def _shard_units(data_dir: Path, missing: str) -> tuple:
    """The dataset's shard units in order; FileNotFoundError ("<missing> in DIR") without any."""
    from core.datasets.shards import existing_units

    units = tuple(sorted(existing_units(data_dir)))
    if not units:
        raise FileNotFoundError(f"{missing} in {data_dir}")
    return units


def _first_train_structures(data_dir: Path, units, limit: int) -> list:
    """Up to ``limit`` training-split structures of the shards ``units``, in shard order (reading
    stops once enough are in); FileNotFoundError when the shards hold none."""
    from core.datasets.shards import read_shard, shard_path

    train = []
    for unit in units:
        train += [a for a in read_shard(shard_path(data_dir, unit)) if a.info.get("split") == "train"]
        if len(train) >= limit:
            break
    if not train:
        raise FileNotFoundError(f"no training structures in the shards of {data_dir}")
    return train[:limit]
