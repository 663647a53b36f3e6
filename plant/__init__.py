"""The simulated plant: one protocol server per simulated PLC on 127.0.0.1, machines that behave like machines,
and the ground truth of what happened. See plant/README.md.

    from plant import Plant, load_layout, default_layout
    plant = Plant(default_layout(), seed=1, time_scale=60).start()
    plant.endpoints(); plant.ground_truth("LINE-011"); plant.stop()
"""

from .layout import Layout, MachineSpec, PlantFileError, default_layout, default_layout_path, load_layout, parse_layout
from .model import GroundTruth, MachineModel, PlantModel, State
from .runtime import Plant, PlantStartError, PortInUseError, enip_available

__all__ = [
    "GroundTruth",
    "Layout",
    "MachineModel",
    "MachineSpec",
    "Plant",
    "PlantFileError",
    "PlantModel",
    "PlantStartError",
    "PortInUseError",
    "State",
    "default_layout",
    "default_layout_path",
    "enip_available",
    "load_layout",
    "parse_layout",
]
