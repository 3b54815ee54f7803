"""A servable studio backed by `tests.studio_fakes` (browser tests run before a checkpoint exists).

Serve with: panel serve tests/studio_fake_app.py --static-dirs studio/static=studio/static
Needs AMSHORTCUT_ASSETS pointing at a tree made by `tests.studio_fakes.make_assets`.
"""

import os
import sys
from pathlib import Path

import panel as pn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from studio import Studio  # noqa: E402
from tests.studio_fakes import FakeBackend  # noqa: E402

pn.extension(notifications=True)
Studio(backend=FakeBackend(step_delay=float(os.environ.get("FAKE_STEP_DELAY", "0"))),
       assets=Path(os.environ["AMSHORTCUT_ASSETS"])).servable(title="AMShortcut Studio (fake backend)")
