"""HEALPix maps: simulate one from a TT spectrum, read one from FITS, draw it."""

from __future__ import annotations

import math
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# 12 * 256^2 = 786k pixels: synthesis takes well under a second and the map (6 MB)
# fits any pod; larger maps belong in a batch job, not an interactive page.
NSIDE_CHOICES = (16, 32, 64, 128, 256)
NSIDE_MAX = NSIDE_CHOICES[-1]
# Maps read from files are degraded to this before drawing: a mollview image is
# 800 px wide, so finer pixels are invisible and only cost memory.
DISPLAY_NSIDE = 256

_PYPLOT_LOCK = threading.Lock()


def check_nside(nside: int) -> int:
    """`nside` if it is a power of two within the simulation bound, else ValueError."""
    nside = int(nside)
    if nside < 1 or nside & (nside - 1) or nside > NSIDE_MAX:
        raise ValueError(f"nside must be a power of two between 1 and {NSIDE_MAX}")
    return nside


def simulate_map(
    ell: np.ndarray, dl_tt: np.ndarray, nside: int, seed: int, lmax: int | None = None
) -> np.ndarray:
    """A Gaussian temperature map (muK) whose power spectrum is `dl_tt`.

    `ell` and `dl_tt` are D_ell = ell(ell+1)C_ell/2pi in muK^2 (what the CMB page
    computes); multipoles that are not given count as zero power. This is what
    `healpy.synfast` does, except that the harmonic coefficients are drawn from a
    `numpy.random.Generator` seeded per call: synfast uses numpy's global random
    state, which concurrent Streamlit sessions (threads of one process) share, so the
    same seed would not reliably give the same map.
    """
    import healpy as hp  # heavy: only on the HEALPix page

    nside = check_nside(nside)
    ell = np.asarray(ell, dtype=int)
    dl_tt = np.asarray(dl_tt, dtype=float)
    if ell.shape != dl_tt.shape or ell.ndim != 1:
        raise ValueError("ell and dl_tt must be 1-D arrays of the same length")
    if np.any(ell < 0) or np.any(dl_tt < 0) or not np.all(np.isfinite(dl_tt)):
        raise ValueError("the spectrum must be finite and non-negative")
    lmax = min(3 * nside - 1, int(ell.max())) if lmax is None else int(lmax)

    cl = np.zeros(lmax + 1)
    keep = (ell >= 2) & (ell <= lmax)
    cl[ell[keep]] = dl_tt[keep] * 2 * math.pi / (ell[keep] * (ell[keep] + 1.0))

    alm = _gaussian_alm(cl, np.random.default_rng(seed))
    return hp.alm2map(alm, nside, lmax=lmax)


def _gaussian_alm(cl: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Harmonic coefficients with <|a_lm|^2> = C_l, in healpy's (m-major) ordering."""
    import healpy as hp

    lmax = len(cl) - 1
    ell, m = hp.Alm.getlm(lmax)
    sigma = np.sqrt(cl[ell])
    # m = 0 coefficients are real; for m > 0 the variance splits between the real and
    # imaginary parts (the a_l,-m are their conjugates and are not stored).
    real_part = rng.standard_normal(ell.size)
    imag_part = rng.standard_normal(ell.size)
    alm = np.where(
        m == 0,
        sigma * real_part,
        sigma / math.sqrt(2) * (real_part + 1j * imag_part),
    )
    return alm.astype(np.complex128)


def read_map(path: Path, field: int = 0) -> np.ndarray:
    """A HEALPix map from a FITS file, in RING ordering, degraded to DISPLAY_NSIDE."""
    import healpy as hp

    healpix_map = hp.read_map(str(path), field=field)
    if hp.get_nside(healpix_map) > DISPLAY_NSIDE:
        healpix_map = hp.ud_grade(healpix_map, DISPLAY_NSIDE)
    return healpix_map


def write_map(path: Path, healpix_map: np.ndarray, *, overwrite: bool = False) -> None:
    """Save a map as HEALPix FITS (RING ordering, temperature in muK)."""
    import healpy as hp

    hp.write_map(str(path), healpix_map, overwrite=overwrite, column_units="uK", dtype=np.float32)


def mollview_figure(healpix_map: np.ndarray, title: str = "", unit: str = "muK") -> Figure:
    """A Mollweide projection of the map (hp.mollview) as a matplotlib figure for
    st.pyplot."""
    import healpy as hp
    import matplotlib.pyplot as plt

    # hp.mollview only draws through pyplot's global figure registry, which the
    # threads serving concurrent sessions share: hold a lock while drawing, then
    # unregister the figure so it is neither leaked nor drawn into by another session.
    with _PYPLOT_LOCK:
        figure = plt.figure(figsize=(10, 6))
        try:
            with warnings.catch_warnings():
                # mollview asks for its own figsize on the figure made above; fine.
                warnings.filterwarnings("ignore", message="Ignoring specified arguments")
                hp.mollview(healpix_map, fig=figure.number, title=title, unit=unit, cmap="RdBu_r")
        finally:
            plt.close(figure)
    return figure
