"""The forward model shared by lane processing (`acquisition.dsp`) and boreholes.

One place for the physics the fits invert: the point-dipole field
(`dipole`), what each sensor kind reads (`geometry.SensorGeometry`,
`dipole.design_matrix`) and elongated bodies as lines of dipoles (`line`).
Pure numpy, like its users.
"""

from acquisition.forward.dipole import (
    MU0_4PI_NT,
    dipole_basis,
    dipole_field,
    dipole_rows,
    field_rows,
    reference_field,
)
from acquisition.forward.geometry import (
    DEFAULT_SENSOR_HEIGHT_M,
    DEFAULT_SEPARATION_M,
    GRADIENT_KINDS,
    KINDS,
    SensorGeometry,
)
from acquisition.forward.lane import (
    design_batch,
    design_matrix,
    forward,
    induced_moment,
    reference_reading,
    sensor_levels,
)
from acquisition.forward.line import (
    LINE_POINTS,
    describe,
    ends_from,
    fold_ends,
    line_design,
    line_points,
)
from acquisition.forward.probe import gradient_basis, gradient_reading, vector_basis

__all__ = [
    "DEFAULT_SENSOR_HEIGHT_M", "DEFAULT_SEPARATION_M", "GRADIENT_KINDS", "KINDS", "LINE_POINTS",
    "MU0_4PI_NT", "SensorGeometry", "describe", "design_batch", "design_matrix", "dipole_basis",
    "dipole_field", "dipole_rows", "ends_from", "field_rows", "fold_ends", "forward",
    "gradient_basis", "gradient_reading", "induced_moment", "line_design", "line_points",
    "reference_field", "reference_reading", "sensor_levels", "vector_basis",
]
