"""BmiVPRM against the BMI 2.0 specification, function by function, on Park Falls 2005
(US-PFa tower + MODIS), and against VPRM's own ``simulate`` on the same forcing."""
from __future__ import annotations

import numpy as np
import pytest
from bmipy import Bmi

from process_models.bmi import BmiVPRM
from process_models.vprm import simulate

GPP = "land_vegetation__gross_primary_productivity"
NEE = "land_ecosystem__net_carbon-dioxide_exchange_flux"
RECO = "land_ecosystem__respiration_carbon-dioxide_flux"
TAIR = "land_surface_air__temperature"
PAR = "land_surface_radiation~incoming~photosynthetic__photon_flux"
LAM = "model_vprm__light_use_efficiency_lambda"

CONFIG = """
[model]
table = "mahadevan2008"
temperatures = "mahadevan2008"
classes = [3]

[forcing]
builder = "park_falls"

[time]
start = "2005-07-01T00:00"
end = "2005-07-04T00:00"
time_step = 3600
"""


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    p = tmp_path_factory.mktemp("bmi") / "vprm.toml"
    p.write_text(CONFIG)
    return p


@pytest.fixture(scope="module")
def bmi(cfg):
    b = BmiVPRM()
    b.initialize(str(cfg))
    return b


@pytest.fixture()
def fresh(cfg):
    b = BmiVPRM()
    b.initialize(str(cfg))
    yield b
    b.finalize()


def test_is_a_bmi_and_names(bmi):
    assert isinstance(bmi, Bmi)
    assert isinstance(bmi.get_component_name(), str) and "VPRM" in bmi.get_component_name()
    ins, outs = bmi.get_input_var_names(), bmi.get_output_var_names()
    assert isinstance(ins, tuple) and isinstance(outs, tuple)
    assert bmi.get_input_item_count() == len(ins) and bmi.get_output_item_count() == len(outs)
    assert {TAIR, PAR, LAM} <= set(ins) and {GPP, NEE, RECO, LAM} <= set(outs)
    assert GPP not in ins                       # fluxes cannot be set
    for name in set(ins) | set(outs):
        assert "__" in name                     # CSDMS object__quantity form
        assert bmi.get_var_type(name) in ("float64", "float32")
        assert isinstance(bmi.get_var_units(name), str)
        assert bmi.get_var_location(name) == "node"
        g = bmi.get_var_grid(name)
        assert isinstance(g, int)
        assert bmi.get_var_nbytes(name) == bmi.get_var_itemsize(name) * bmi.get_grid_size(g)
        assert bmi.get_var_itemsize(name) == np.dtype(bmi.get_var_type(name)).itemsize
    assert bmi.get_var_units(GPP) == "umol m-2 s-1" and bmi.get_var_units(TAIR) == "degC"


def test_time_functions(fresh):
    b = fresh
    assert b.get_time_units() == "s"
    assert b.get_start_time() == 0.0 and b.get_current_time() == 0.0
    assert b.get_time_step() == 3600.0
    assert b.get_end_time() == 72 * 3600.0
    assert str(b.get_start_datetime())[:16] == "2005-07-01T00:00"
    b.update()
    assert b.get_current_time() == 3600.0
    assert str(b.get_current_datetime())[:16] == "2005-07-01T01:00"


def test_update_until_semantics_and_agreement_with_simulate(fresh):
    b = fresh
    setup = b._setup_done
    ref = simulate(setup.params, setup.forcing, setup.info["options"])
    b.update_until(14 * 3600.0)                  # one scan of 14 records
    assert b.get_current_time() == 14 * 3600.0
    out = np.empty(1)
    assert b.get_value(GPP, out) is out
    np.testing.assert_allclose(out, np.asarray(ref.gpp)[13], rtol=1e-12)
    b.update()                                   # a single step continues the same series
    np.testing.assert_allclose(b.get_value(NEE, out), np.asarray(ref.nee)[14], rtol=1e-12)
    b.update_until(b.get_current_time())         # no-op
    assert b.get_current_time() == 15 * 3600.0
    with pytest.raises(ValueError, match="past"):
        b.update_until(3600.0)
    with pytest.raises(ValueError, match="grid"):
        b.update_until(15 * 3600.0 + 10.0)
    with pytest.raises(ValueError, match="end time"):
        b.update_until(b.get_end_time() + 3600.0)
    b.update_until(b.get_end_time())
    with pytest.raises(RuntimeError, match="end time"):
        b.update()
    assert np.isfinite(b.get_value(GPP, out)).all()


def test_outputs_nan_before_first_update_and_ptr_is_live_read_only(fresh):
    b = fresh
    ptr = b.get_value_ptr(GPP)
    assert np.isnan(ptr).all()
    assert not ptr.flags.writeable
    with pytest.raises(ValueError):
        ptr[0] = 1.0
    b.update_until(12 * 3600.0)                  # noon: GPP > 0
    assert ptr[0] > 0                            # the same array was refreshed in place
    assert b.get_value_ptr(GPP) is ptr
    t = b.get_value_ptr(TAIR)
    assert np.isfinite(t).all()


def test_set_value_parameter_round_trip_and_linear_response(fresh):
    b = fresh
    b.update_until(12 * 3600.0)
    lam = b.get_value(LAM, np.empty(1))
    gpp_ref = float(b.get_value(GPP, np.empty(1))[0])
    # GPP is linear in lambda (Mahadevan 2008, eq. 1): doubling lambda doubles GPP
    b.set_value(LAM, 2 * lam)
    np.testing.assert_array_equal(b.get_value(LAM, np.empty(1)), 2 * lam)   # round trip
    b.set_value(TAIR, b.get_value(TAIR, np.empty(1)))                          # no-op override
    b.update()
    gpp2 = float(b.get_value(GPP, np.empty(1))[0])
    b.set_value(LAM, lam)
    # compare with the same record at the original lambda via the model itself
    s = b._setup_done
    ref = simulate(s.params, s.forcing, s.info["options"])
    assert gpp2 == pytest.approx(2 * float(np.asarray(ref.gpp)[12]), rel=1e-12)
    assert gpp_ref == pytest.approx(float(np.asarray(ref.gpp)[11]), rel=1e-12)


def test_forcing_override_applies_to_next_record_only(fresh):
    b = fresh
    b.update_until(12 * 3600.0)
    s = b._setup_done
    file_t = np.asarray(s.forcing.temperature)
    cur = b.get_value(TAIR, np.empty(1))
    assert cur[0] == pytest.approx(file_t[12])   # forcing inputs show the next record
    b.set_value(TAIR, np.array([-20.0]))          # below Tmin: no photosynthesis
    assert b.get_value(TAIR, np.empty(1))[0] == -20.0
    b.update()
    assert b.get_value(GPP, np.empty(1))[0] == 0.0
    assert b.get_value(TAIR, np.empty(1))[0] == pytest.approx(file_t[13])   # override cleared
    b.update()
    assert b.get_value(GPP, np.empty(1))[0] > 0


def test_indices_functions(fresh):
    b = fresh
    b.update_until(12 * 3600.0)
    dest = np.empty(1)
    assert b.get_value_at_indices(LAM, dest, np.array([0])) is dest
    lam = dest[0]
    b.set_value_at_indices(LAM, np.array([0]), np.array([lam * 3]))
    assert b.get_value_at_indices(LAM, np.empty(1), np.array([0]))[0] == pytest.approx(3 * lam)
    with pytest.raises(IndexError):
        b.set_value_at_indices(LAM, np.array([5]), np.array([1.0]))


def test_bad_calls(fresh):
    b = fresh
    with pytest.raises(KeyError, match="no variable"):
        b.get_var_units("no_such__variable")
    with pytest.raises(ValueError, match="output only"):
        b.set_value(GPP, np.array([1.0]))
    with pytest.raises(ValueError, match="values given"):
        b.set_value(LAM, np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="finite"):
        b.set_value(TAIR, np.array([np.nan]))
    b.finalize()
    with pytest.raises(RuntimeError, match="initialize"):
        b.get_current_time()


def test_grid_functions(bmi):
    g = bmi.get_var_grid(GPP)
    assert bmi.get_grid_type(g) == "points" and bmi.get_grid_rank(g) == 2
    assert bmi.get_grid_size(g) == 1 and bmi.get_grid_node_count(g) == 1
    x, y = np.empty(1), np.empty(1)
    assert bmi.get_grid_x(g, x) is x and bmi.get_grid_y(g, y) is y
    assert x[0] == pytest.approx(-90.2723) and y[0] == pytest.approx(45.9459)
    for fn in (bmi.get_grid_shape, bmi.get_grid_spacing, bmi.get_grid_origin, bmi.get_grid_z):
        with pytest.raises(NotImplementedError):
            fn(g, np.empty(2))
    for fn in (bmi.get_grid_edge_count, bmi.get_grid_face_count):
        with pytest.raises(NotImplementedError):
            fn(g)
    for fn in (bmi.get_grid_edge_nodes, bmi.get_grid_face_edges, bmi.get_grid_face_nodes,
               bmi.get_grid_nodes_per_face):
        with pytest.raises(NotImplementedError):
            fn(g, np.empty(1, dtype=np.int64))
    gp = bmi.get_var_grid(LAM)
    assert bmi.get_grid_type(gp) == "vector" and bmi.get_grid_rank(gp) == 1
    shape = np.empty(1, dtype=np.int64)
    assert bmi.get_grid_shape(gp, shape) is shape and shape[0] == 1
    with pytest.raises(KeyError):
        bmi.get_grid_type(99)


@pytest.mark.parametrize("text,err,match", [
    ("[forcing]\nbuilder='park_falls'\n[time]\ntime_step=1800\n", Exception, "time_step"),
    ("[forcing]\nbuilder='park_falls'\n[time]\nstart='2010-01-01'\nend='2010-02-01'\n", Exception,
     "no forcing records"),
    ("[forcing]\nbuilder='nowhere'\n", ValueError, "unknown forcing builder"),
    ("[forcing]\n", ValueError, "builder"),
    ("[forcing\nbuilder='park_falls'\n", ValueError, "TOML"),
])
def test_initialize_errors(tmp_path, text, err, match):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(err, match=match):
        BmiVPRM().initialize(str(p))
    with pytest.raises(FileNotFoundError):
        BmiVPRM().initialize(str(tmp_path / "missing.toml"))
