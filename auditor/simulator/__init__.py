"""A local Bitbucket Cloud 2.0 simulator, the ground every test, demo and benchmark stands on.

``Simulator(dataset)`` serves a dataset over real HTTP on 127.0.0.1 (``demo_dataset()`` is the
workspace of docs/DEMO.md, ``synthetic_dataset(...)`` a large generated one); ``Faults`` and
``FaultRule`` inject latency, rate limits and broken answers. Standard library only.
"""

from auditor.simulator.demo import demo_dataset
from auditor.simulator.faults import FaultRule, Faults
from auditor.simulator.model import Credential, Dataset
from auditor.simulator.server import Simulator
from auditor.simulator.synthetic import synthetic_dataset

__all__ = [
    "Credential",
    "Dataset",
    "FaultRule",
    "Faults",
    "Simulator",
    "demo_dataset",
    "synthetic_dataset",
]
