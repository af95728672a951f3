"""fastact.lab: the vanishing-gradient lab (`fastact lab` on the command line).

    import fastact.lab
    res = fastact.lab.run()                               # 9 activations x depths 2..50
    res = fastact.lab.run(["sigmoid", "relu"], depths=[5, 20], inits=["standard", "he_normal"])
    res = fastact.lab.run(preset="remedies")
    print(res.report())                                   # table + verdicts
    res.records[0]["backprop_grad_ratio"]                 # ||dL/dz_1|| / ||dL/dz_L||
    res.to_csv("results.csv"); res.to_json("results.json"); res.to_pandas()
    res.save("out/")                                      # json, csv and PNG plots

Modules: config (a configuration and its checks), data (teacher, digits, files), measure
(one configuration -> one record), runners (serial, joblib, Dask), presets, verdicts,
result (LabResult), plots (matplotlib), sweep (run), cli (`fastact lab`).
"""

from __future__ import annotations

from .config import Config, build_network, make_optimizer
from .data import Data, load_data
from .measure import TIMING_FIELDS, gradient_batch, run_config
from .presets import PRESETS
from .result import LabResult
from .sweep import run

__all__ = [
    "run",
    "LabResult",
    "Config",
    "Data",
    "load_data",
    "PRESETS",
    "TIMING_FIELDS",
    "build_network",
    "make_optimizer",
    "gradient_batch",
    "run_config",
]
