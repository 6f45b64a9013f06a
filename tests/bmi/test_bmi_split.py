"""The coupled model as two BMI components (surface/canopy and soil/carbon) coupled through
BMI calls only: the pair equals the single coupled model to round-off on real FR-Hes
forcing, each component passes the BMI basics, and the exchange is what drives them."""
from __future__ import annotations

import numpy as np
import pytest

from process_models import coupled
from process_models.bmi import BmiCoupled
from process_models.bmi.split import (EXCHANGE_TO_SOIL, EXCHANGE_TO_SURFACE, BmiCoupledSoil,
                                      BmiCoupledSurface, run_split)

CONFIG = """
[model]
pft = "DBF"
soil_texture = "loam"

[forcing]
reader = "europe_fluxdata"
path = "fr-hes_2016_europe-fluxdata/FR-Hes_europe-fluxdata_2016.txt.gz"
latitude = 48.6742
longitude = 7.0656
lai = "pool"

[time]
start = "2016-06-20T00:00"
end = "2016-07-04T00:00"
time_step = 1800
"""


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    p = tmp_path_factory.mktemp("split") / "coupled.toml"
    p.write_text(CONFIG)
    return p


@pytest.fixture(scope="module")
def reference(cfg):
    one = BmiCoupled()
    one.initialize(str(cfg))
    s = one._setup_done
    return coupled.simulate(s.params, s.forcing, s.initial_state(s.params, s.forcing),
                            checkpoint_every=0)


def test_split_components_equal_the_single_model(cfg, reference):
    """Two weeks of half-hours (672 steps; a rain event on 2016-06-23): every flux and the
    soil water equal the single model to round-off; water closes for the pair."""
    ds = run_split(cfg)
    ref = reference
    assert ds.sizes["time"] == ref.gpp.shape[0] == 672
    for k in ("gpp", "reco", "nee", "ra", "rh", "le"):
        np.testing.assert_allclose(ds[k].values, np.asarray(getattr(ref, k)), rtol=1e-10, atol=1e-10,
                                   err_msg=k)
    for k in ("et", "runoff", "drainage"):     # mm s-1 in BMI, mm per step in the model
        np.testing.assert_allclose(ds[k].values * 1800.0, np.asarray(getattr(ref, k)), rtol=1e-10,
                                   atol=1e-12, err_msg=k)
    np.testing.assert_allclose(ds.soil_water_content.values, np.asarray(ref.soil_water_content),
                               rtol=0, atol=1e-12)
    assert float(np.asarray(ref.runoff).sum() + np.asarray(ref.et).sum()) > 0
    assert ds.nee.attrs["units"] == "umol m-2 s-1" and ds.et.attrs["units"] == "mm s-1"


def test_each_component_is_a_bmi_with_the_exchange_as_inputs_and_outputs(cfg):
    surface, soil = BmiCoupledSurface(), BmiCoupledSoil()
    surface.initialize(str(cfg))
    soil.initialize(str(cfg))
    for name in EXCHANGE_TO_SURFACE:
        assert name in surface.get_input_var_names() and name in soil.get_output_var_names()
        assert surface.get_var_units(name) == soil.get_var_units(name)
        assert surface.get_grid_size(surface.get_var_grid(name)) == soil.get_grid_size(soil.get_var_grid(name))
    for name in EXCHANGE_TO_SOIL:
        assert name in soil.get_input_var_names() and name in surface.get_output_var_names()
        assert surface.get_var_units(name) == soil.get_var_units(name)
    assert surface.get_time_step() == soil.get_time_step() == 1800.0
    assert surface.get_end_time() == soil.get_end_time()
    assert "soil_water__volume_fraction" not in surface.get_output_var_names()
    assert "atmosphere_water__precipitation_leq-volume_flux" in surface.get_input_var_names()
    assert "atmosphere_water__precipitation_leq-volume_flux" not in soil.get_input_var_names()


def test_a_drier_soil_given_through_bmi_reduces_transpiration(cfg):
    """The surface component reads soil water only through its BMI input: a dry profile
    set there lowers the water-stress factor and transpiration at noon."""
    out = {}
    for label, theta in (("default", None), ("dry", 0.12)):
        surface = BmiCoupledSurface()
        surface.initialize(str(cfg))
        surface.update_until(24 * 1800.0)          # to noon (exchange inputs at defaults)
        n = surface.get_grid_size(surface.get_var_grid("soil_water__volume_fraction"))
        if theta is not None:
            surface.set_value("soil_water__volume_fraction", np.full(n, theta))
        surface.update()
        out[label] = {k: surface.get_value(k, np.empty(1))[0] for k in
                      ("land_vegetation__water_stress_factor", "land_vegetation_water__transpiration_volume_flux")}
    assert out["dry"]["land_vegetation__water_stress_factor"] < 0.5 * out["default"]["land_vegetation__water_stress_factor"]
    assert out["dry"]["land_vegetation_water__transpiration_volume_flux"] < out["default"]["land_vegetation_water__transpiration_volume_flux"]
