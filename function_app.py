"""The Function App: builds the DFApp and registers the blueprints; nothing else."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from functions import blueprints

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint in blueprints():
    app.register_functions(blueprint)
