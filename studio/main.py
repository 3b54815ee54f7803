"""Entry point of `panel serve studio --address 127.0.0.1` (one Studio per browser session)."""

import panel as pn

from studio import Studio

pn.extension(notifications=True)
Studio().servable()
