"""CAMB spectra: shape, physics sanity, parameter bounds, CSV."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from envapp import cmb
from envapp.cmb import CosmoParams


def test_frame_shape_and_columns(planck_spectra: pd.DataFrame) -> None:
    assert list(planck_spectra.columns) == ["ell", "TT", "EE", "BB", "TE"]
    assert planck_spectra["ell"].iloc[0] == 2 and planck_spectra["ell"].iloc[-1] == 2000
    assert len(planck_spectra) == 1999
    assert np.all(np.isfinite(planck_spectra[["TT", "EE", "BB", "TE"]].to_numpy()))


def test_first_acoustic_peak_is_near_ell_220(planck_spectra: pd.DataFrame) -> None:
    low = planck_spectra[planck_spectra["ell"] < 500]
    peak = low.loc[low["TT"].idxmax()]
    assert 200 <= peak["ell"] <= 240
    # Planck's first peak is about 5700 muK^2.
    assert 5000 < peak["TT"] < 6500


def test_polarization_is_physical(planck_spectra: pd.DataFrame) -> None:
    assert (planck_spectra[["TT", "EE"]] > 0).all().all()
    # With lensing and r=0, BB is the small lensing B-mode (peak ~0.1 muK^2 near ell~1000).
    assert 0.05 < planck_spectra["BB"].max() < 0.2
    # TE changes sign; EE is much smaller than TT.
    assert planck_spectra["TE"].min() < 0 < planck_spectra["TE"].max()
    assert planck_spectra["EE"].max() < planck_spectra["TT"].max() / 50


def test_tensors_add_primordial_bb_and_unlensed_r0_has_none() -> None:
    unlensed = cmb.compute_spectra(CosmoParams(r=0.1), 300, lensed=False)
    assert len(unlensed) == 299
    at_80 = unlensed.loc[unlensed["ell"] == 80, "BB"].item()
    assert 0.005 < at_80 < 0.05  # the recombination bump for r=0.1 is ~0.02 muK^2


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"H0": 10.0}, "H0"), ({"ombh2": -1.0}, "ombh2"), ({"tau": float("nan")}, "tau"),
     ({"r": 2.0}, "r"), ({"ln10_10_As": 10.0}, "ln10_10_As")],
)
def test_out_of_bounds_parameters_are_named(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cmb.compute_spectra(CosmoParams(**changes), 500)


@pytest.mark.parametrize("lmax", [10, 3001, 100_000])
def test_lmax_is_bounded(lmax: int) -> None:
    with pytest.raises(ValueError, match="lmax"):
        cmb.compute_spectra(CosmoParams(), lmax)


def test_as_from_log_amplitude() -> None:
    assert CosmoParams(ln10_10_As=3.044).As == pytest.approx(2.0989e-9, rel=1e-4)


def test_csv_round_trips(planck_spectra: pd.DataFrame) -> None:
    parsed = pd.read_csv(io.BytesIO(cmb.spectra_csv(planck_spectra)))
    assert list(parsed.columns) == ["ell", "TT", "EE", "BB", "TE"]
    np.testing.assert_allclose(parsed.to_numpy(), planck_spectra.to_numpy(), rtol=1e-7)
