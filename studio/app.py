"""`Studio`: the one app object behind `panel serve studio` and the Jupyter widgets.

State lives in param objects (`GenerationSettings`, `BackgroundTask`, `Results`); widgets are
made from those params and views are functions of them. Each browser session builds its own
`Studio`, so sessions never share state (only the read-only model cache in `backend`).
"""

from __future__ import annotations

import io
import math
import time

import panel as pn
import param

from studio.backend import CoreBackend
from studio.catalog import ASSETS, data_dir, discover, formula
from studio.compare import PAPER_PLAN, Comparison, Run, paper_plan, run_label
from studio.inverse import InverseSweep, sweep_points
from studio.ngl_view import ELEMENT_COLORS, NGLView, atoms_to_pdb
from studio.plots import PLOT_WIDTH, adf_plot, compare_adf_plot, compare_rdf_plot, coordination_plot, rdf_plot
from studio.results import Results, analyse, property_rows
from studio.settings import GenerationSettings
from studio.tasks import BackgroundTask

SIDEBAR_WIDTH = 330
STEP_BUTTONS_CSS = ".bk-btn { padding-left: 0; padding-right: 0; min-width: 0; font-size: 13px; }"
"""Nine step buttons share the sidebar: with Bokeh's default padding "250" was cut off."""
VIEW_SIZE = (520, 440)  # NGL canvas width, height in px (explicit: a 0-px canvas never draws)


def _served() -> bool:
    doc = pn.state.curdoc
    return doc is not None and doc.session_context is not None


def _notify(event) -> None:
    """Also pop an error up as a toast when the page has notifications enabled."""
    if event.new and pn.state.notifications is not None:
        pn.state.notifications.error(event.new, duration=8000)


class Studio(param.Parameterized):
    """Generate amorphous structures with a trained checkpoint, look at them, measure them, export."""

    def __init__(self, backend=None, assets=ASSETS, dispatch=None, **params):
        super().__init__(**params)
        self.backend = backend or CoreBackend()
        self.assets = assets
        self.settings = GenerationSettings(discover(assets))
        self.task = BackgroundTask(dispatch=dispatch)
        self.shear_task = BackgroundTask(dispatch=dispatch)
        self.results = Results()
        self.comparison = Comparison()
        self.inverse = InverseSweep()
        self.inverse_task = BackgroundTask(dispatch=dispatch)
        self.inverse.set_targets(self.settings.targets)
        self.settings.param.watch(lambda *_: self.inverse.set_targets(self.settings.targets), "targets")
        self._jupyter_view = None
        self._epoch = 0  # bumped on a system switch: results of an older request are dropped
        self.settings.param.watch(self._on_system_switch, "system")
        try:
            self._device = self.backend.default_device()
        except Exception as exc:  # noqa: BLE001 - core not importable: say so, keep the page alive
            self._device = f"unknown ({type(exc).__name__})"

    # ------------------------------------------------------------------ actions

    def generate(self, *_) -> bool:
        """Validate the settings and start generating in the background; False if refused."""
        errors = self.settings.errors()
        if errors:
            self.task.error = "Cannot generate: " + "; ".join(errors)
            return False
        ckpt, request = self.settings.checkpoint, self.settings.request()
        system, framework, relax = self.settings.system, self.settings.framework, self.settings.relax
        label = f"Generating {request['n_samples']} × {self.settings.atoms_per_sample}-atom cells, {request['steps']} step(s)"
        label += ", relaxed" if relax else ""
        epoch = self._epoch

        def work(progress):
            return self._generate_and_measure(progress, ckpt, request, system, relax=relax)

        def done(result):
            if epoch == self._epoch:  # still the system it was asked for
                self.results.param.update(selected=0, **result)
                self.comparison.add(self._run(result, system, framework, request))

        return self.task.start(work, done, label=label)

    def reproduce_paper(self, *_) -> bool:
        """Generate the paper's comparison (AMShortcut 1 and 5 steps, Material SDE 250) into the compare view.

        Uses the sidebar's system, number of samples, cell and seed, without conditioning; False if refused.
        """
        from core.errors import UserError

        s = self.settings
        try:
            plan = paper_plan(s.catalog.get(s.system, {}))
        except UserError as exc:
            self.task.error = f"Cannot reproduce the paper's comparison: {exc}"
            return False
        errors = [e for e in s.errors() if not e.startswith("Target for")]
        if errors:
            self.task.error = "Cannot reproduce the paper's comparison: " + "; ".join(errors)
            return False
        system, base = s.system, {**s.request(), "properties": {}, "grid_power": 1.0, "guidance": 0.0}
        total = sum(steps for _, steps in plan)
        epoch = self._epoch

        def work(progress):
            runs, offset = [], 0
            for framework, steps in plan:
                ckpt = s.catalog[system][framework]
                request = {**base, "steps": steps, "rho_max": ckpt.rho_max}
                name = run_label(framework, steps)

                def sub(k, n, text=None, offset=offset, steps=steps, name=name):
                    progress(offset + round(k * steps / max(n, 1)), total, text or f"{name}…")

                result = self._generate_and_measure(sub, ckpt, request, system)
                runs.append(self._run(result, system, framework, request))
                offset += steps
            return runs

        def done(runs):
            if epoch == self._epoch:
                self.comparison.add(*runs)

        return self.task.start(work, done, label="The paper's comparison: " + ", ".join(
            run_label(f, n) for f, n in plan))

    def run_inverse_sweep(self, *_) -> bool:
        """Generate `per_target` structures at each target of the sweep and measure the property on each,
        in the background (cancellable); False if refused."""
        s, sweep = self.settings, self.inverse
        errors = sweep.errors() or [e for e in s.errors() if not e.startswith("Target for")]
        if errors:
            self.inverse_task.error = "Cannot run the sweep: " + "; ".join(errors)
            return False
        ckpt, name, targets, per = s.checkpoint, sweep.prop, sweep.targets(), int(sweep.per_target)
        base = {**s.request(), "n_samples": per}
        base["properties"] = {k: v for k, v in base["properties"].items() if k != name}  # others stay as set
        steps, epoch = base["steps"], self._epoch
        total = len(targets) * (steps + per)

        def work(progress):
            model = self.backend.load_model(ckpt.path)
            done, rows_t, rows_y = 0, [], []
            for k, target in enumerate(targets):
                head = f"Target {k + 1}/{len(targets)}: {name} = {target:.4g}"

                def sub(i, n, text=None, done=done, head=head):
                    progress(done + round(i * steps / max(n, 1)), total, text or f"{head}, generating…")

                request = {**base, "properties": {**base["properties"], name: float(target)}}
                structures = [a for a in self.backend.generate(model, progress=sub, **request) if len(a)]
                done += steps
                for i, atoms in enumerate(structures):
                    progress(done, total, f"{head}, measuring structure {i + 1}/{len(structures)}…")
                    try:
                        value = self.backend.measure_property(name, atoms)
                    except Exception:  # noqa: BLE001 - one failed measurement leaves a gap, not a failed sweep
                        value = math.nan
                    rows_t.append(float(target))
                    rows_y.append(value)
                    done += 1
                done = (k + 1) * (steps + per)
                progress(done, total, f"{head}: done")
            return sweep_points(rows_t, rows_y)

        def finish(points):
            if epoch != self._epoch:
                return
            finite = points.dropna()
            scores = self.backend.inverse_errors(finite["target"], finite["achieved"]) if len(finite) else {}
            sweep.param.update(points=points, scores=scores)

        sweep.clear()
        return self.inverse_task.start(work, finish, label=f"Sweep of {len(targets)} {name} targets × {per}")

    def _generate_and_measure(self, progress, ckpt, request, system, relax: bool = False) -> dict:
        """Worker side of one generation: sample, drop empty cells, relax when asked, measure (fields
        of `Results`; the curves and checks are those of the structures shown, relaxed or not)."""
        model = self.backend.load_model(ckpt.path)
        notes = self.backend.request_notes(model, request["cell"])
        t0 = time.perf_counter()  # sampling only: loading a model is paid once per process
        structures = self.backend.generate(model, progress=progress, **request)
        elapsed = time.perf_counter() - t0
        empty = sum(len(a) == 0 for a in structures)
        structures = [a for a in structures if len(a) > 0]
        if not structures:
            raise RuntimeError("every generated structure came out empty (all atoms became ghosts)")
        if empty:
            notes.append(f"{empty} structure(s) came out empty (all atoms became ghosts) and were dropped")
        device = self.backend.device(structures)
        report = None
        if relax:
            structures, report = self.backend.relax(structures, system, lambda k, n: progress(
                k, n, f"Relaxing structure {min(k + 1, n)}/{n} (LAMMPS, {system} potential)…"))
        progress(1, 1, f"Measuring {len(structures)} structures (RDF, ADF, properties)…")
        analysis = analyse(self.backend, structures, self._reference(system), self._reference_checks(system), system)
        table = property_rows(self.backend, structures, request["properties"], system)
        return dict(structures=list(structures), analysis=analysis, table=table, notes=notes,
                    device=device, elapsed=elapsed, relax_report=report)

    @staticmethod
    def _run(result: dict, system: str, framework: str, request: dict) -> Run:
        label = run_label(framework, request["steps"], request.get("grid_power", 1.0), request["properties"],
                          request.get("guidance", 0.0))
        label += " · relaxed" if result.get("relax_report") else ""
        return Run(label=label, system=system, framework=framework, steps=request["steps"],
                   n_structures=len(result["structures"]), seconds=result["elapsed"], device=result["device"],
                   analysis=result["analysis"])

    def cancel(self, *_) -> None:
        self.task.cancel()

    def _on_system_switch(self, *_) -> None:
        """A new system makes the shown structures, curves and status lines stale: clear them."""
        self._epoch += 1
        for task in (self.task, self.shear_task, self.inverse_task):
            task.cancel()
            if not task.running:
                task.param.update(message="", error="")
        self.results.clear()
        self.comparison.clear()

    def compute_shear_modulus(self, *_) -> bool:
        """Shear modulus (LAMMPS) of the selected structure, in the background."""
        atoms, index = self.results.current, self.results.selected
        if atoms is None:
            self.shear_task.error = "Generate a structure first"
            return False
        epoch = self._epoch

        def work(progress):
            progress(0, 1)
            return self.backend.shear_modulus(atoms)

        def done(g):
            if epoch == self._epoch:
                self.results.set_shear_modulus(index, g)

        return self.shear_task.start(work, done, label=f"Shear modulus of structure {index} (LAMMPS)")

    def _reference_checks(self, system):
        try:
            return self.backend.reference_checks(data_dir(system, self.assets), system)
        except FileNotFoundError:
            return None

    def _reference(self, system):
        try:
            return self.backend.reference(data_dir(system, self.assets))
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------ views

    @param.depends("settings.param", "settings.revision")
    def _size_info(self):
        s = self.settings
        n = s.atoms_per_sample
        text = f"{n} atoms per cell (ghosts included), {n * (s.n_samples or 0)} in total; device {self._device}"
        ckpt = s.checkpoint
        if ckpt is not None and not s.errors():
            try:
                nbytes = self.backend.estimate_memory(ckpt.path, n_samples=s.n_samples, cell=s.cell,
                                                      rho_max=ckpt.rho_max)
                if nbytes:
                    text += f"; estimated memory ≈ {nbytes / 2**20:.0f} MiB"
            except Exception as exc:  # noqa: BLE001 - an estimate must never break the page
                text += f"; memory estimate unavailable ({exc})"
        return pn.pane.Markdown(text, styles={"font-size": "0.9em"}, margin=(0, 10))

    @param.depends("settings.system", "settings.framework")
    def _checkpoint_info(self):
        ckpt = self.settings.checkpoint
        if ckpt is None:
            return pn.pane.Markdown("")
        try:
            where = ckpt.path.relative_to(self.assets)
        except ValueError:
            where = ckpt.path
        text = (f"{', '.join(ckpt.species) or '?'} · ρ_max {ckpt.rho_max:g} atoms/Å³ · "
                f"`{where}`")
        return pn.pane.Markdown(text, styles={"font-size": "0.85em"}, margin=(0, 10))

    @param.depends("settings.system", "settings.framework")
    def _framework_note(self):
        """Why the framework selector is greyed out: one trained framework for this system."""
        s = self.settings
        if s.checkpoint is None or len(s.param.framework.objects) != 1:  # none trained: the alert says so
            return pn.pane.Markdown("", margin=0)
        only = next(iter(s.param.framework.names or {}), s.framework)
        return pn.pane.Markdown(f"*Only {only} is trained for {s.system}: other frameworks appear here once "
                                f"their checkpoints exist in assets/checkpoints/{s.system}/.*",
                                styles={"font-size": "0.85em", "color": "#555"}, margin=(0, 10),
                                css_classes=["framework-note"])

    @param.depends("settings.param", "settings.revision", "task.error", "shear_task.error", "inverse_task.error",
                   "results.notes", "results.analysis")
    def _alerts(self):
        items = []
        for line in self.settings.errors():
            items.append(pn.pane.Alert(line, alert_type="danger", margin=(2, 5)))
        notes = self.results.notes + (self.results.analysis.notes if self.results.analysis else [])
        for line in self.settings.warnings() + notes:
            items.append(pn.pane.Alert(line, alert_type="warning", margin=(2, 5)))
        for err in (self.task.error, self.shear_task.error, self.inverse_task.error):
            if err:
                items.append(pn.pane.Alert(err, alert_type="danger", margin=(2, 5), css_classes=["task-error"]))
        return pn.Column(*items, sizing_mode="stretch_width")

    @param.depends("settings.targets")
    def _property_controls(self):
        rows = []
        for t in self.settings.targets:
            box = pn.widgets.Checkbox.from_param(t.param.enabled, label=t.label())
            value = pn.widgets.FloatInput.from_param(t.param.target, label="target", width=140,
                                                     css_classes=[f"target-{t.name}"])
            flag = pn.pane.Markdown(pn.bind(lambda v, e, t=t: "⚠ extrapolation" if e and t.extrapolating else "",
                                            t.param.target, t.param.enabled), width=120)
            rows.append(pn.Column(box, pn.Row(value, flag)))
        if not rows:
            rows.append(pn.pane.Markdown("*This checkpoint has no conditioning properties.*" if self.settings.checkpoint
                                         else "*No trained checkpoint: no properties to condition on.*"))
        return pn.Column(*rows)

    @param.depends("results.analysis")
    def _checks_text(self):
        a = self.results.analysis
        if a is None or not a.checks:
            return pn.pane.Markdown("*Structure checks (coordination, close pairs, energy per atom) appear "
                                    "after a generation.*", css_classes=["checks"])
        c, ref = a.checks, a.ref_checks
        vs = lambda key, fmt: f" (training {format(ref[key], fmt)})" if key in ref else ""  # noqa: E731
        potential = c.get("potential", "classical potential")
        against = f"training: {ref['n']} structures" if "n" in ref else "no training structures to compare"
        lines = [f"**Structure checks** ({c['rule']}; {against})",
                 f"- {c['ideal']}-fold: **{100 * c['ideal_share']:.1f} %**"
                 + (f" (training {100 * ref['ideal_share']:.1f} %)" if "ideal_share" in ref else ""),
                 f"- close pairs per structure: **{c['close_pairs']:.2f}**{vs('close_pairs', '.2f')}"
                 f" ({c.get('close_rule', 'closer than 0.75 × the covalent radii')})"]
        if "energy" in c:
            state = "relaxed" if self.results.relax_report else "unrelaxed"
            lines.append(f"- energy: **{c['energy']:.3f} eV/atom**{vs('energy', '.3f')}, {potential}, {state}")
        return pn.pane.Markdown("\n".join(lines), css_classes=["checks"])

    @param.depends("results.relax_report")
    def _relax_text(self):
        """The structure checks before and after relaxation, and what the relaxation was."""
        rep = self.results.relax_report
        if not rep:
            return pn.pane.Markdown("", margin=0, css_classes=["relax-report"])
        rows = "\n".join(f"| {check} | {before} | {after} |" for check, before, after in rep["rows"])
        return pn.pane.Markdown(
            f"**Relaxation** of {rep['n_structures']} structures in **{rep['seconds']:.1f} s** with {rep['potential']} "
            f"({rep['tolerance']}; {rep['converged']} converged, largest force left {rep['max_force']:.2g} eV/Å)\n\n"
            f"| check | before | after |\n|---|---|---|\n{rows}", css_classes=["relax-report"])

    def _structure_picker(self):
        picker = pn.widgets.Select(label="Structure shown", options={}, width=SIDEBAR_WIDTH - 20)

        def sync_options(*_):
            picker.options = {f"{i}: {formula(a.get_chemical_symbols(), self.settings.system)}": i
                              for i, a in enumerate(self.results.structures)}
            picker.value = self.results.selected if self.results.structures else None

        def sync_selected(event):
            if event.new is not None:
                self.results.selected = event.new

        self.results.param.watch(sync_options, "structures")
        picker.param.watch(sync_selected, "value")
        sync_options()
        return picker

    @param.depends("results.structures", "results.device", "results.elapsed",
                   "results.relax_report")
    def _run_info(self):
        r = self.results
        if not r.structures:
            return pn.pane.Markdown("*No structures yet: set the controls and click Generate.*")
        secs = "" if math.isnan(r.elapsed) else f" in {r.elapsed:.1f} s"
        text = f"**{len(r.structures)} structures**{secs} on device **{r.device}**"
        if r.relax_report:
            text += (f", then **relaxed** in {r.relax_report['seconds']:.1f} s: the curves, checks and exports "
                     "below are the relaxed set's")
        return pn.pane.Markdown(text, css_classes=["run-info"])

    def _view3d(self):
        if not _served():
            return pn.pane.Markdown("*3D view: shown below with nglview (Jupyter).*")
        return NGLView(pdb=pn.bind(lambda s, i: atoms_to_pdb(self.results.current),
                                   self.results.param.structures, self.results.param.selected),
                       width=VIEW_SIZE[0], height=VIEW_SIZE[1], css_classes=["ngl-panel"])

    @param.depends("results.structures", "results.selected")
    def _element_legend(self):
        """The 3D view's colours of the elements in the shown structure (studio.ngl_view.ELEMENT_COLORS)."""
        atoms = self.results.current
        if atoms is None:
            return pn.pane.HTML("", margin=0, css_classes=["element-legend"])
        symbols = formula(atoms.get_chemical_symbols(), self.settings.system).split()
        items = []
        for item in symbols:
            element = item.rstrip("0123456789")
            color = ELEMENT_COLORS.get(element, "#909090")
            items.append(f'<span style="white-space:nowrap"><span style="color:{color};font-size:1.3em">●</span> '
                         f'{item}</span>')
        return pn.pane.HTML(" &nbsp; ".join(items), width=VIEW_SIZE[0], margin=(0, 10),
                            css_classes=["element-legend"])

    def _downloads(self):
        def getter(which):
            def callback():
                return io.BytesIO(self.results.export(self.backend, which))
            return callback

        name = pn.bind(lambda *_: f"{self.settings.system}_{self.settings.steps}steps.extxyz",
                       self.results.param.structures)
        none = pn.bind(lambda structures: not structures, self.results.param.structures)
        return pn.Row(
            pn.widgets.FileDownload(callback=getter("selected"), filename=name, label="Export selected (.extxyz)",
                                    embed=False, disabled=none),
            pn.widgets.FileDownload(callback=getter("all"), filename=name, label="Export all (.extxyz)",
                                    embed=False, disabled=none),
        )

    @param.depends("results.structures")
    def _needs_structures(self):
        if self.results.structures:
            return pn.pane.Markdown("", margin=0)
        return pn.pane.Markdown("*Export and the shear modulus act on generated structures: click Generate first.*",
                                styles={"color": "#555"}, css_classes=["needs-structures"])

    @param.depends("results.table")
    def _table(self):
        if self.results.table is None:
            return pn.pane.Markdown("*The property table fills after the first generation.*",
                                    css_classes=["table-empty"])
        return pn.pane.DataFrame(self.results.table, index=False, max_rows=100, sizing_mode="stretch_width",
                                 css_classes=["property-table"])

    def controls(self) -> pn.Column:
        """Sidebar: system, framework, properties, steps, size, seed, Generate/Cancel."""
        s = self.settings
        # off while a generation runs, and for a system without a trained checkpoint (the alert says why)
        unavailable = pn.bind(lambda running, *_: running or s.checkpoint is None,
                              self.task.param.running, s.param.system, s.param.framework)
        generate = pn.widgets.Button(label="Generate", color="primary", disabled=unavailable, css_classes=["generate"])
        generate.on_click(self.generate)
        cancel = pn.widgets.Button(label="Cancel", disabled=self.task.param.running.rx.not_())
        cancel.on_click(self.cancel)
        one_choice = pn.bind(lambda *_: len(s.param.framework.objects) < 2, s.param.system, s.param.framework)
        framework = pn.widgets.Select.from_param(s.param.framework, label="Framework", disabled=one_choice)
        return pn.Column(
            pn.widgets.Select.from_param(s.param.system, label="Material system"),
            framework,
            self._framework_note,
            self._checkpoint_info,
            pn.pane.Markdown("**Condition on properties**", margin=(10, 10, 0, 10)),
            self._property_controls,
            pn.widgets.Select.from_param(s.param.guidance, label="Guidance towards the targets",
                                         css_classes=["guidance"],  # only a conditioned model has targets
                                         visible=pn.bind(lambda targets: bool(targets), s.param.targets)),
            pn.pane.Markdown("**Sampling steps**", margin=(10, 10, 0, 10)),
            pn.widgets.RadioButtonGroup.from_param(s.param.steps, label="Sampling steps", width=SIDEBAR_WIDTH - 20,
                                                   stylesheets=[STEP_BUTTONS_CSS], css_classes=["steps"]),
            pn.widgets.Select.from_param(s.param.grid_power, label="Step spacing", css_classes=["grid-power"]),
            pn.widgets.IntInput.from_param(s.param.n_samples, label="Number of samples", css_classes=["n-samples"]),
            pn.widgets.FloatInput.from_param(s.param.cell_size, label="Cubic cell edge (Å)", css_classes=["cell-size"]),
            pn.widgets.IntInput.from_param(s.param.seed, label="Seed"),
            self._size_info,
            pn.widgets.Checkbox.from_param(s.param.relax, label="Relax (classical potential, LAMMPS)",
                                           css_classes=["relax"]),
            pn.Row(generate, cancel),
            pn.indicators.Progress(value=self.task.param.step, max=self.task.param.total,
                                   width=SIDEBAR_WIDTH - 20, css_classes=["gen-progress"]),
            pn.pane.Markdown(pn.bind(lambda msg, k, n, running: f"{msg} (step {k} / {n})" if running else msg,
                                     self.task.param.message, self.task.param.step, self.task.param.total,
                                     self.task.param.running), css_classes=["gen-message"]),
            width=SIDEBAR_WIDTH,
        )

    def outputs(self) -> pn.Column:
        """Main area: 3D view, RDF/ADF overlays, property table, exports."""
        shear = pn.widgets.Button(label="Shear modulus of shown structure (LAMMPS, slow)",
                                  disabled=pn.bind(lambda running, structures: running or not structures,
                                                   self.shear_task.param.running, self.results.param.structures),
                                  css_classes=["shear"])
        shear.on_click(self.compute_shear_modulus)
        plots = pn.Column(
            pn.pane.HoloViews(pn.bind(rdf_plot, self.results.param.analysis), width=PLOT_WIDTH, height=270,
                              linked_axes=False, css_classes=["rdf-plot"]),
            pn.pane.HoloViews(pn.bind(adf_plot, self.results.param.analysis), width=PLOT_WIDTH, height=270,
                              linked_axes=False, css_classes=["adf-plot"]),
        )
        return pn.Column(
            self._run_info,
            pn.Row(pn.Column(self._structure_picker(), self._view3d(), self._element_legend), plots),
            pn.Row(pn.pane.HoloViews(pn.bind(coordination_plot, self.results.param.analysis), width=PLOT_WIDTH,
                                     height=270, linked_axes=False, css_classes=["coordination-plot"]), self._checks_text),
            self._relax_text,
            self._table,
            self._needs_structures,
            pn.Row(shear, pn.pane.Markdown(self.shear_task.param.message)),
            self._downloads(),
            sizing_mode="stretch_width",
        )

    @param.depends("comparison.runs")
    def _compare_table(self):
        table = self.comparison.table()
        if table is None:
            return pn.pane.Markdown("*No runs kept yet: every generation lands here, or click the button above.*",
                                    css_classes=["compare-empty"])
        shown = table.astype(object).where(table.notna(), "–")  # the training row has no RMSD or seconds
        return pn.pane.DataFrame(shown, index=False, sizing_mode="stretch_width", css_classes=["compare-table"])

    @param.depends("settings.system")
    def _paper_note(self):
        from core.errors import UserError

        try:
            paper_plan(self.settings.catalog.get(self.settings.system, {}))
        except UserError as exc:
            return pn.pane.Markdown(f"*Not available for {self.settings.system}: {exc}.*", styles={"color": "#555"},
                                    css_classes=["paper-note"])
        return pn.pane.Markdown(
            "The paper (Sec. 5.4, Table 1): AMShortcut's ADF RMSD at **1 step** is on par with the Material "
            "SDE's at **250 steps**, and its RDF RMSD at **5 steps** lower, in 1–3 % of the time. The button "
            "generates the three runs with the sidebar's samples, cell and seed.", css_classes=["paper-note"])

    def compare_view(self) -> pn.Column:
        """Kept runs: one table (RMSD, seconds), RDF and ADF overlays; the paper's comparison in one click."""
        def unavailable(running, system):
            frameworks = self.settings.catalog.get(system, {})
            return running or not {f for f, _ in PAPER_PLAN} <= set(frameworks)

        reproduce = pn.widgets.Button(label="Reproduce the paper's comparison", color="primary",
                                      disabled=pn.bind(unavailable, self.task.param.running, self.settings.param.system),
                                      css_classes=["reproduce"])
        reproduce.on_click(self.reproduce_paper)
        clear = pn.widgets.Button(label="Clear kept runs", disabled=self.task.param.running)
        clear.on_click(self.comparison.clear)
        runs = self.comparison.param.runs
        # linked_axes=False on every plot: panes sharing a dimension (this ADF and the Generate tab's)
        # would otherwise share one y range, and the first plot drawn would fix it
        return pn.Column(
            pn.Row(reproduce, clear),
            self._paper_note,
            self._compare_table,
            pn.pane.HoloViews(pn.bind(compare_rdf_plot, runs), linked_axes=False, css_classes=["compare-rdf"]),
            pn.pane.HoloViews(pn.bind(compare_adf_plot, runs), linked_axes=False, css_classes=["compare-adf"]),
            sizing_mode="stretch_width",
        )

    def inverse_view(self) -> pn.Column:
        """Sweep of targets: achieved vs target with the identity line and the training range."""
        sweep, task = self.inverse, self.inverse_task
        run = pn.widgets.Button(label="Run the sweep", color="primary", disabled=task.param.running,
                                css_classes=["run-sweep"])
        run.on_click(self.run_inverse_sweep)
        cancel = pn.widgets.Button(label="Cancel", disabled=task.param.running.rx.not_(), css_classes=["cancel-sweep"])
        cancel.on_click(lambda *_: task.cancel())
        controls = pn.Row(
            pn.widgets.Select.from_param(sweep.param.prop, label="Property", width=170, css_classes=["sweep-prop"]),
            pn.widgets.FloatInput.from_param(sweep.param.low, label="First target", width=110,
                                             css_classes=["sweep-low"]),
            pn.widgets.FloatInput.from_param(sweep.param.high, label="Last target", width=110,
                                             css_classes=["sweep-high"]),
            pn.widgets.IntInput.from_param(sweep.param.n_targets, label="Targets", width=80,
                                           css_classes=["sweep-targets"]),
            pn.widgets.IntInput.from_param(sweep.param.per_target, label="Structures each", width=110,
                                           css_classes=["sweep-per-target"]),
        )
        status = pn.pane.Markdown(pn.bind(lambda msg, k, n, running: f"{msg} ({k} / {n})" if running else msg,
                                          task.param.message, task.param.step, task.param.total, task.param.running),
                                  css_classes=["sweep-message"])
        note = pn.pane.Markdown(
            "Generates the structures with the sidebar's framework, steps, cell and seed, then measures the "
            "property on each in the background (shear modulus: LAMMPS, seconds to minutes a structure).",
            styles={"color": "#555"})
        empty = pn.bind(lambda prop: "" if prop else "*This checkpoint has no conditioning property to sweep: "
                        "choose a system whose model was trained with properties (a-SiO2).*", sweep.param.prop)
        return pn.Column(
            pn.pane.Markdown(empty, css_classes=["sweep-empty"]), controls, note, pn.Row(run, cancel),
            pn.indicators.Progress(value=task.param.step, max=task.param.total, width=400,
                                   css_classes=["sweep-progress"]),
            status,
            pn.pane.HoloViews(pn.bind(sweep.plot, sweep.param.points, sweep.param.scores, sweep.param.prop),
                              linked_axes=False, css_classes=["inverse-plot"]),
            self._inverse_table,
            sizing_mode="stretch_width",
        )

    @param.depends("inverse.points", "inverse.scores")
    def _inverse_table(self):
        table = self.inverse.table()
        if table is None:
            return pn.pane.Markdown("*The table of targets and achieved values fills after a sweep.*",
                                    css_classes=["inverse-empty"])
        scores = ", ".join(f"{k} {v:.3g}" for k, v in self.inverse.scores.items() if v == v)  # NaN: not shown
        return pn.Column(pn.pane.Markdown(f"All structures: {scores}" if scores else "",
                                          css_classes=["inverse-scores"]),
                         pn.pane.DataFrame(table, index=False, sizing_mode="stretch_width",
                                           css_classes=["inverse-table"]), sizing_mode="stretch_width")

    def panel(self) -> pn.viewable.Viewable:
        """The whole studio as one Panel layout."""
        header = pn.pane.Markdown("## AMShortcut Studio — generative design of amorphous materials",
                                  margin=(5, 10))
        if _served():
            pn.state.on_session_destroyed(lambda ctx: [t.cancel() for t in (self.task, self.shear_task,
                                                                              self.inverse_task)])
            for task in (self.task, self.shear_task, self.inverse_task):
                task.param.watch(_notify, "error")
        # dynamic: only the shown tab is rendered, so a generation does not redraw the hidden views' plots
        tabs = pn.Tabs(("Generate", self.outputs()), ("Compare", self.compare_view()),
                       ("Inverse design", self.inverse_view()), dynamic=True,
                       sizing_mode="stretch_width", css_classes=["views"])
        return pn.Column(header, pn.Row(self.controls(), pn.Column(self._alerts, tabs, sizing_mode="stretch_width")),
                         sizing_mode="stretch_width")

    def __panel__(self):
        return self.panel()

    def servable(self, title: str = "AMShortcut Studio"):
        """Mark the layout servable (for `panel serve studio`)."""
        return self.panel().servable(title=title)

    # ------------------------------------------------------------------ Jupyter

    def structure_widget(self):
        """A native nglview widget showing the selected structure; it follows the selection."""
        import nglview

        if self._jupyter_view is None:
            view = nglview.NGLWidget()
            view._studio_component = None

            def show(*_):
                atoms = self.results.current
                if view._studio_component is not None:
                    view.remove_component(view._studio_component)
                    view._studio_component = None
                if atoms is not None:
                    comp = view.add_component(nglview.ASEStructure(atoms[atoms.numbers != 0]), default=False)
                    comp.add_representation("ball+stick", colorScheme="element")
                    comp.add_unitcell()
                    view._studio_component = comp

            self.results.param.watch(show, ["structures", "selected"])
            show()
            self._jupyter_view = view
        return self._jupyter_view

    def _ipython_display_(self):
        from IPython.display import display

        if not getattr(pn.extension, "_loaded", False):
            pn.extension()
        display(self.panel())
        display(self.structure_widget())
