"""CMB toolkit: CAMB power spectra from cosmological parameters."""

from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from envapp import cmb, paths, settings
from envapp.caching import DEFAULT_LMAX, cached_spectra


def spectra_figure(frame: pd.DataFrame, log_y: bool) -> go.Figure:
    figure = make_subplots(rows=2, cols=2, subplot_titles=("TT", "EE", "TE", "BB"))
    for index, name in enumerate(("TT", "EE", "TE", "BB")):
        row, col = divmod(index, 2)
        figure.add_scatter(x=frame["ell"], y=frame[name], name=name, mode="lines",
                           row=row + 1, col=col + 1)
        # TE changes sign, so it stays linear whatever the toggle says.
        if log_y and name != "TE":
            figure.update_yaxes(type="log", row=row + 1, col=col + 1)
    figure.update_xaxes(title_text="ℓ")
    figure.update_yaxes(title_text="D_ℓ [μK²]")
    figure.update_layout(height=650, showlegend=False, margin={"t": 40})
    return figure


st.title("CMB power spectra")
st.caption("Lensed (or unlensed) D_ℓ = ℓ(ℓ+1)C_ℓ/2π in μK², computed with CAMB. "
           "Defaults are the Planck 2018 best fit.")

defaults = cmb.CosmoParams()
controls, plot = st.columns([1, 3])
with controls, st.form("cmb-params", border=False):
    b = cmb.BOUNDS
    h0 = st.number_input("H₀ [km/s/Mpc]", *b["H0"], value=defaults.H0, step=0.5)
    ombh2 = st.number_input("Ω_b h²", *b["ombh2"], value=defaults.ombh2, step=0.0001,
                            format="%.5f")
    omch2 = st.number_input("Ω_c h²", *b["omch2"], value=defaults.omch2, step=0.001,
                            format="%.4f")
    ns = st.number_input("n_s", *b["ns"], value=defaults.ns, step=0.001, format="%.4f")
    ln_as = st.number_input("ln(10¹⁰ A_s)", *b["ln10_10_As"], value=defaults.ln10_10_As,
                            step=0.01, format="%.3f")
    tau = st.number_input("τ (reionization)", *b["tau"], value=defaults.tau, step=0.001,
                          format="%.4f")
    r = st.number_input("r (tensor-to-scalar)", *b["r"], value=defaults.r, step=0.01,
                        format="%.3f")
    lmax = st.slider("ℓ_max", cmb.LMAX_MIN, cmb.LMAX_MAX, value=DEFAULT_LMAX, step=50,
                     help=f"Bounded at {cmb.LMAX_MAX} so a result comes back in seconds.")
    lensed = st.checkbox("Lensed spectra", value=True)
    st.form_submit_button("Compute", type="primary")

params = cmb.CosmoParams(H0=h0, ombh2=ombh2, omch2=omch2, ns=ns, ln10_10_As=ln_as,
                         tau=tau, r=r)
with plot:
    try:
        with st.spinner("Running CAMB…"):
            frame, seconds = cached_spectra(params, int(lmax), lensed)
    except Exception as exc:  # CAMB raises its own error types for odd combinations
        st.error(f"CAMB could not compute these spectra: {exc}")
        st.stop()

    log_y = st.toggle("Logarithmic D_ℓ for TT, EE and BB")
    st.plotly_chart(spectra_figure(frame, log_y))
    st.caption(f"A_s = {params.As:.4e} · ℓ = 2…{int(lmax)} · computed in {seconds:.1f} s "
               "(repeat requests come from the cache)")

    csv_bytes = cmb.spectra_csv(frame)
    file_name = f"camb_spectra_Dl_muK2_lmax{int(lmax)}.csv"
    download, save = st.columns(2)
    download.download_button("Download CSV", data=csv_bytes, file_name=file_name,
                             mime="text/csv", on_click="ignore")
    if save.button("Save CSV to workspace/spectra"):
        target_rel = f"spectra/{datetime.now():%Y%m%d-%H%M%S}-{file_name}"
        try:
            target = paths.resolve_within(settings.workspace_dir(), target_rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(csv_bytes)
            st.success(f"Saved {target_rel}; the HEALPix page can simulate a map from it.")
        except (paths.UnsafePathError, OSError) as exc:
            st.error(f"Could not save: {exc}")

    with st.expander("Table"):
        st.dataframe(frame, hide_index=True)
