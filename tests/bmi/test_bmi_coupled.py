"""BmiCoupled against the BMI 2.0 specification on real FR-Hes 2016 forcing: grids (site
points, soil profile, scalar parameters), agreement with ``coupled.simulate``, and the
data-assimilation use case: overwrite soil water, then fluxes respond."""
from __future__ import annotations

import numpy as np
import pytest

coupled = pytest.importorskip("process_models.coupled")
from process_models.bmi import BmiCoupled  # noqa: E402

SWC = "soil_water__volume_fraction"
GPP = "land_vegetation__gross_primary_productivity"
ET = "land_surface_water__evapotranspiration_volume_flux"
TR = "land_vegetation_water__transpiration_volume_flux"
STRESS = "land_vegetation__water_stress_factor"
PREC = "atmosphere_water__precipitation_leq-volume_flux"
VCMAX = "land_vegetation_leaf__max_carboxylation_rate_at_25C"
LAI = "land_vegetation__leaf-area_index"

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
start = "2016-07-01T00:00"
end = "2016-07-04T00:00"
time_step = 1800
"""
NOON = 24 * 1800.0          # 2016-07-01 12:00 local standard time


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    p = tmp_path_factory.mktemp("bmi") / "coupled.toml"
    p.write_text(CONFIG)
    return p


@pytest.fixture(scope="module")
def pair(cfg):
    """Two instances at noon of the first day (same compiled functions)."""
    a, b = BmiCoupled(), BmiCoupled()
    a.initialize(str(cfg))
    b.initialize(str(cfg))
    a.update_until(NOON)
    b.update_until(NOON)
    return a, b


def test_names_units_and_sizes(pair):
    a, _ = pair
    ins, outs = a.get_input_var_names(), a.get_output_var_names()
    assert a.get_input_item_count() == len(ins) and a.get_output_item_count() == len(outs)
    assert SWC in ins and SWC in outs                     # state: input and output
    assert PREC in ins and PREC not in outs
    assert GPP in outs and GPP not in ins
    assert len(set(ins) | set(outs)) == len(a._vars)      # unique names
    for name in set(ins) | set(outs):
        g = a.get_var_grid(name)
        assert a.get_var_nbytes(name) == a.get_var_itemsize(name) * a.get_grid_size(g)
        assert a.get_value(name, np.empty(a.get_grid_size(g))).shape == (a.get_grid_size(g),)
    assert a.get_var_units(SWC) == "m3 m-3" and a.get_var_units(ET) == "mm s-1"


def test_grids(pair):
    a, _ = pair
    gs = a.get_var_grid(SWC)
    n = a._setup_done.params.n_layers
    assert a.get_grid_type(gs) == "rectilinear" and a.get_grid_rank(gs) == 1
    assert a.get_grid_size(gs) == n
    shape = np.empty(1, dtype=np.int64)
    assert a.get_grid_shape(gs, shape)[0] == n
    z = a.get_grid_z(gs, np.empty(n))
    assert np.all(z < 0) and np.all(np.diff(z) < 0)       # layer centres, downward
    assert z[-1] == pytest.approx(-(2.0 - 0.25))          # centre of the 0.5 m bottom layer
    with pytest.raises(NotImplementedError):
        a.get_grid_spacing(gs, np.empty(1))
    gp = a.get_var_grid(VCMAX)
    assert a.get_grid_type(gp) == "scalar" and a.get_grid_rank(gp) == 0
    assert a.get_grid_size(gp) == 1
    assert a.get_grid_shape(gp, np.empty(0, dtype=np.int64)).size == 0
    g0 = a.get_var_grid(GPP)
    assert a.get_grid_type(g0) == "points"
    assert a.get_grid_y(g0, np.empty(1))[0] == pytest.approx(48.6742)


def test_agrees_with_simulate(pair):
    a, _ = pair
    s = a._setup_done
    ref = coupled.simulate(s.params, s.forcing, s.initial_state(s.params, s.forcing),
                          checkpoint_every=0)
    k = int(NOON / 1800.0)
    np.testing.assert_allclose(a.get_value(GPP, np.empty(1)), np.asarray(ref.gpp)[k - 1], rtol=1e-9)
    np.testing.assert_allclose(a.get_value(SWC, np.empty(s.params.n_layers)),
                               np.asarray(ref.soil_water_content)[k - 1], rtol=1e-9)
    np.testing.assert_allclose(a.get_value(ET, np.empty(1)) * 1800.0, np.asarray(ref.et)[k - 1],
                               rtol=1e-9, atol=1e-15)


def test_set_soil_water_round_trip_then_fluxes_respond(pair):
    a, b = pair
    n = b._setup_done.params.n_layers
    soil = b._setup_done.params.soil
    dry = np.full(n, float(soil.theta_res) + 0.02)
    b.set_value(SWC, dry)
    np.testing.assert_allclose(b.get_value(SWC, np.empty(n)), dry)       # round trip
    # per-layer data assimilation: set only the top layer, others unchanged
    b.set_value_at_indices(SWC, np.array([0]), np.array([dry[0] + 0.01]))
    assert b.get_value_at_indices(SWC, np.empty(1), np.array([0]))[0] == pytest.approx(dry[0] + 0.01)
    a.update()
    b.update()
    one = np.empty(1)
    assert b.get_value(STRESS, one)[0] < a.get_value(STRESS, np.empty(1))[0]
    assert b.get_value(GPP, one)[0] < a.get_value(GPP, np.empty(1))[0]
    assert b.get_value(TR, one)[0] < a.get_value(TR, np.empty(1))[0]
    assert a.get_current_time() == b.get_current_time() == NOON + 1800.0


def test_parameter_and_precipitation_inputs(pair):
    a, _ = pair
    v = a.get_value(VCMAX, np.empty(1))
    a.set_value(VCMAX, v * 0.5)
    assert a.get_value(VCMAX, np.empty(1))[0] == pytest.approx(0.5 * v[0])
    assert float(a._params.leaf.vcmax25) == pytest.approx(0.5 * v[0])
    a.set_value(VCMAX, v)
    # 10 mm in one half-hour entered as a rate reaches the soil
    n = a._setup_done.params.n_layers
    before = a.get_value(SWC, np.empty(n)).copy()
    a.set_value(PREC, np.array([10.0 / 1800.0]))
    a.update()
    after = a.get_value(SWC, np.empty(n))
    assert after[0] > before[0]
    lai = a.get_value(LAI, np.empty(1))
    assert 0 < lai[0] < 15


def test_missing_precipitation_needs_a_config_value(tmp_path):
    p = tmp_path / "vie.toml"
    p.write_text("""
[model]
pft = "DBF"
[forcing]
reader = "pyrealm_merged"
path = "be-vie_2014_pyrealm/merged_BE-Vie_data.csv"
latitude = 50.305
longitude = 5.998
[time]
start = "2014-06-01"
end = "2014-06-02"
""")
    with pytest.raises(Exception, match="precipitation"):
        BmiCoupled().initialize(str(p))
