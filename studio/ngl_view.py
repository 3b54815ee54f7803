"""3D structure view for the served studio: NGL (vendored, offline) in a Panel JSComponent.

The structure travels as PDB text written by ASE (with CRYST1, so NGL draws the periodic
cell); ghosts are removed before writing. `studio/static/ngl.js` is the UMD build of the
npm package `ngl` (MIT, see `static/NGL_LICENSE`), served by `panel serve studio` at
`/studio/static/ngl.js`. In Jupyter the studio uses nglview instead.
"""

from __future__ import annotations

import io

import param
from panel.custom import JSComponent

GHOST = 0  # core.material.GHOST; repeated so that drawing never imports the model stack
ELEMENT_COLORS = {
    "Si": "#F0C8A0", "O": "#FF0D0D", "P": "#FF8000", "Al": "#BFA6A6", "Li": "#CC80FF", "Be": "#C2FF00",
    "K": "#8F40D4", "Ca": "#3DFF00", "Ti": "#404040", "Ba": "#00C900", "Zn": "#7D80B0",
}
"""Atom colours of the 3D view, fixed for every element the systems hold: Jmol's (CPK-derived) colours
(O red, Si tan, P orange, Li and K violet, alkaline earths green, Zn blue-grey, Al pink-grey), except Ti,
dark grey instead of Jmol's light grey #BFC2C7, which was hard to tell from Al in one glass. Other
elements take NGL's own element colours."""


def atoms_to_pdb(atoms) -> str:
    """PDB text (with CRYST1 cell) of the real atoms of an `ase.Atoms`; empty string for None."""
    if atoms is None:
        return ""
    import ase.io

    real = atoms[atoms.numbers != GHOST]
    buf = io.StringIO()
    ase.io.write(buf, real, format="proteindatabank")
    return buf.getvalue()


class NGLView(JSComponent):
    """NGL viewer of one structure: ball+stick with bonds, colour by element (`ELEMENT_COLORS`), unit cell."""

    pdb = param.String(default="", doc="Structure as PDB text (see atoms_to_pdb)")
    colors = param.Dict(default={s.upper(): c for s, c in ELEMENT_COLORS.items()},
                        doc="Element (upper case, as NGL reads PDB) -> colour '#RRGGBB'")
    representation = param.Selector(default="ball+stick", objects=["ball+stick", "spacefill", "line"])
    ngl_url = param.String(default="/studio/static/ngl.js", doc="Where the page loads ngl.js from")
    atom_count = param.Integer(default=0, doc="Atoms NGL drew (set by the browser)")
    placeholder = param.String(default="No structure yet: set the controls and click Generate.",
                               doc="Shown instead of a blank canvas while there is no structure")

    _esm = """
    function loadNGL(url) {
      if (window.NGL) return Promise.resolve(window.NGL);
      if (!window.__studioNGL) {
        window.__studioNGL = new Promise((resolve, reject) => {
          const s = document.createElement("script");
          s.src = url;
          s.onload = () => resolve(window.NGL);
          s.onerror = () => reject(new Error("cannot load " + url));
          document.head.appendChild(s);
        });
      }
      return window.__studioNGL;
    }

    export function render({ model, el }) {
      const box = document.createElement("div");
      box.className = "ngl-view";
      box.style.width = "100%";
      box.style.height = "100%";
      box.style.position = "relative";
      const empty = document.createElement("div");
      empty.className = "ngl-placeholder";
      Object.assign(empty.style, { position: "absolute", inset: "0", display: "flex", alignItems: "center",
        justifyContent: "center", textAlign: "center", padding: "2em", color: "#555", zIndex: "1",
        background: "#f4f5f7", border: "1px dashed #bbb", fontFamily: "sans-serif" });
      box.appendChild(empty);
      let stage = null;

      function showEmpty() {
        empty.textContent = model.placeholder;
        empty.style.display = model.pdb ? "none" : "flex";
      }

      let scheme = null;
      function colorScheme(NGL) {
        // ELEMENT_COLORS as an NGL selection scheme ("_SI": element Si); other elements: NGL's own
        const rules = Object.entries(model.colors).map(([el, c]) => [c, "_" + el]);
        return NGL.ColormakerRegistry.addSelectionScheme(rules.concat([["element", "*"]]), "studio-elements");
      }

      function draw() {
        showEmpty();
        if (!stage) return;
        stage.removeAllComponents();
        if (!model.pdb) { box.dataset.natoms = "0"; model.atom_count = 0; return; }
        const blob = new Blob([model.pdb], { type: "text/plain" });
        stage.loadFile(blob, { ext: "pdb", defaultRepresentation: false }).then((comp) => {
          comp.addRepresentation(model.representation, { colorScheme: scheme, multipleBond: "off" });
          comp.addRepresentation("unitcell");
          stage.autoView();
          box.dataset.natoms = String(comp.structure.atomCount);
          model.atom_count = comp.structure.atomCount;
        });
      }

      loadNGL(model.ngl_url).then((NGL) => {
        stage = new NGL.Stage(box, { backgroundColor: "white", tooltip: true });
        scheme = colorScheme(NGL);
        stage.handleResize();
        draw();
      }).catch((err) => { box.textContent = String(err); });

      showEmpty();
      model.on(["pdb", "representation"], draw);
      model.on("placeholder", showEmpty);
      model.on("resize", () => { if (stage) stage.handleResize(); });
      model.on("remove", () => { if (stage) stage.dispose(); });
      return box;
    }
    """
