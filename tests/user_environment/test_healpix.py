"""HEALPix: synthesis, FITS round trip, drawing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from envapp import healpix


def test_simulated_map_has_12_nside2_pixels_and_is_reproducible(
    planck_spectra: pd.DataFrame,
) -> None:
    ell, tt = planck_spectra["ell"].to_numpy(), planck_spectra["TT"].to_numpy()
    first = healpix.simulate_map(ell, tt, 32, seed=7)
    assert first.shape == (12 * 32**2,)
    np.testing.assert_array_equal(first, healpix.simulate_map(ell, tt, 32, seed=7))
    assert not np.array_equal(first, healpix.simulate_map(ell, tt, 32, seed=8))
    # CMB temperature anisotropies are ~100 muK rms.
    assert 50 < first.std() < 200


def test_anafast_recovers_the_input_spectrum(planck_spectra: pd.DataFrame) -> None:
    import healpy as hp

    nside = 128
    ell, tt = planck_spectra["ell"].to_numpy(), planck_spectra["TT"].to_numpy()
    sky = healpix.simulate_map(ell, tt, nside, seed=1)
    lmax = 2 * nside
    # No pixel-window correction: the map is synthesized without one (like synfast's
    # default), and healpy would download the window files to apply it.
    measured = hp.anafast(sky, lmax=lmax)
    ells = np.arange(lmax + 1)
    expected = np.zeros(lmax + 1)
    expected[2:] = tt[: lmax - 1] * 2 * np.pi / (ells[2:] * (ells[2:] + 1))
    # Binned over ell=20..256 cosmic variance is a few percent; a factor-of-2 or an
    # ell(ell+1) mistake would be far outside this.
    band = slice(20, lmax + 1)
    ratio = measured[band].sum() / expected[band].sum()
    assert ratio == pytest.approx(1.0, abs=0.05)
    assert measured[0] < 1e-3 * measured[2:].max()  # no monopole injected


def test_map_variance_matches_the_spectrum(planck_spectra: pd.DataFrame) -> None:
    # Variance of a map = sum (2l+1) C_l / 4pi: a check independent of anafast.
    nside = 64
    lmax = 3 * nside - 1
    ell, tt = planck_spectra["ell"].to_numpy(), planck_spectra["TT"].to_numpy()
    cl = tt[: lmax - 1] * 2 * np.pi / (ell[: lmax - 1] * (ell[: lmax - 1] + 1))
    expected = np.sum((2 * ell[: lmax - 1] + 1) * cl) / (4 * np.pi)
    variances = [healpix.simulate_map(ell, tt, nside, seed=s).var() for s in range(3)]
    assert np.mean(variances) == pytest.approx(expected, rel=0.25)


@pytest.mark.parametrize("nside", [0, 3, 100, 512, 2048])
def test_nside_must_be_a_bounded_power_of_two(nside: int) -> None:
    with pytest.raises(ValueError, match="nside"):
        healpix.check_nside(nside)


def test_bad_spectra_are_refused() -> None:
    ell = np.arange(2, 100)
    with pytest.raises(ValueError):
        healpix.simulate_map(ell, -np.ones(98), 16, seed=0)
    with pytest.raises(ValueError):
        healpix.simulate_map(ell, np.ones(5), 16, seed=0)


def test_fits_round_trip_and_degrade_on_read(tmp_path: Path, planck_spectra: pd.DataFrame) -> None:
    ell, tt = planck_spectra["ell"].to_numpy(), planck_spectra["TT"].to_numpy()
    sky = healpix.simulate_map(ell, tt, 16, seed=3)
    path = tmp_path / "sim.fits"
    healpix.write_map(path, sky)
    np.testing.assert_allclose(healpix.read_map(path), sky, rtol=1e-6)
    with pytest.raises(OSError):
        healpix.write_map(path, sky)  # refuses to overwrite unless asked

    big = tmp_path / "big.fits"
    healpix.write_map(big, np.zeros(12 * 512**2))
    assert healpix.read_map(big).size == 12 * healpix.DISPLAY_NSIDE**2


def test_mollview_figure_leaves_no_pyplot_state(planck_spectra: pd.DataFrame) -> None:
    import matplotlib.pyplot as plt

    sky = np.random.default_rng(0).normal(size=12 * 16**2)
    figure = healpix.mollview_figure(sky, title="test")
    assert figure.axes  # the projection and its colour bar
    assert plt.get_fignums() == []
    figure.savefig(Path("/dev/null"), format="png")  # still drawable after unregistering
