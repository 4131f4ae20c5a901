"""Euler deconvolution (structural index 3): the classic cheap locator.

Kept as the baseline the dipole fit must beat (bench/accuracy_lanes.py) and as
an optional seed. The lane samples around a signal are gridded (linear
interpolation, 0.2 m cells), the horizontal derivatives taken by finite
differences and the vertical one in the wavenumber domain (|k| filter), then
Euler's homogeneity equation

    (x - x0) ∂T/∂x + (y - y0) ∂T/∂y + (z - z0) ∂T/∂z = N (B - T)

is solved by least squares for (x0, y0, z0, B) over the cells where the signal
is strong. Gridding 1 m lanes smears shallow sources: that is the method's
known weakness (docs/field.md), and why the product fits the raw samples instead.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.interpolate import griddata

from acquisition.numfail import swallowed


def euler_locate(x: np.ndarray, y: np.ndarray, v: np.ndarray, sensor_height_m: float,
                 structural_index: float = 3.0,
                 cell_m: float = 0.2) -> tuple[float, float, float] | None:
    """(x0, y0, depth below ground) from samples around one signal, or None."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if v.size < 10 or np.ptp(x) < 0.5 or np.ptp(y) < 0.5:
        return None
    gx = np.arange(x.min(), x.max() + cell_m / 2, cell_m)
    gy = np.arange(y.min(), y.max() + cell_m / 2, cell_m)
    if gx.size < 4 or gy.size < 4:
        return None
    XX, YY = np.meshgrid(gx, gy)
    T = griddata((x, y), v, (XX, YY), method="linear")
    valid = np.isfinite(T)
    if valid.sum() < 10:
        return None
    Tf = np.where(valid, T, 0.0)
    Ty, Tx = np.gradient(Tf, cell_m, cell_m)
    ky = np.fft.fftfreq(gy.size, d=cell_m) * 2 * math.pi
    kx = np.fft.fftfreq(gx.size, d=cell_m) * 2 * math.pi
    K = np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    # z up: upward continuation multiplies by exp(-|k| dz), so d/dz is -|k|.
    Tz = np.real(np.fft.ifft2(np.fft.fft2(Tf) * -K))
    a = np.abs(Tf)
    use = valid & (a >= 0.2 * a[valid].max())
    # Keep away from the grid's edges, where the derivatives are poor.
    use[:1, :] = use[-1:, :] = False
    use[:, :1] = use[:, -1:] = False
    if use.sum() < 6:
        return None
    N = structural_index
    zs = sensor_height_m
    xs, ys, tx, ty, tz, t = (arr[use] for arr in (XX, YY, Tx, Ty, Tz, Tf))
    # x0 Tx + y0 Ty + z0 Tz + N B = x Tx + y Ty + z Tz + N T
    A = np.column_stack((tx, ty, tz, np.full(t.size, N)))
    b = xs * tx + ys * ty + zs * tz + N * t
    try:
        sol, *_ = np.linalg.lstsq(A, b, rcond=None)
    except np.linalg.LinAlgError as exc:
        swallowed("euler.euler_locate", exc)
        return None
    x0, y0, z0 = float(sol[0]), float(sol[1]), float(sol[2])
    if not all(map(math.isfinite, (x0, y0, z0))):
        return None
    return x0, y0, max(0.0, -z0)
