"""xarray edge of VPRM: validate a forcing Dataset, run VPRM chunk by chunk, return a
Dataset of fluxes with units.

The core (:func:`process_models.vprm.simulate`) works on arrays; this module is the only
place where VPRM meets xarray. Regional cubes go through
``xarray.apply_ufunc(..., dask="parallelized")``: each dask chunk is one jitted call, so
memory stays bounded by the chunk size.

Forcing Dataset variables (canonical names and units, see :mod:`process_models.units`):

===================== =============== ==================================================
variable              units           notes
===================== =============== ==================================================
air_temperature       degC            2 m air temperature
par                   umol m-2 s-1    or ``ppfd_in`` (tower PPFD), or ``shortwave_in`` in
                                      W m-2 (PAR = SW / 0.505)
evi, lswi             1               greenness and water index at the model time step
evi_threshold         1               EVImin + 0.55 (EVImax - EVImin), per pixel
lswi_min, lswi_max    1               growing-season LSWI extremes, per pixel
class_fractions       1               dims (..., vprm_class); coordinate = class numbers
soil_water_content    m3 m-3          only for water_stress="soil_moisture"
fapar                 1               only for light="fapar"
===================== =============== ==================================================
"""
from __future__ import annotations

import numpy as np
import jax.numpy as jnp
import xarray as xr

from ..units import DataValidationError, check_range, convert
from .model import simulate_jit
from .params import VPRMForcing, VPRMOptions, VPRMParams

PAR_PER_SW = 1.0 / 0.505
"""umol m-2 s-1 of PAR per W m-2 of shortwave (pyVPRM, emiproc)."""

_SPEC = {  # name -> (canonical units, CANONICAL key for the range check or None)
    "air_temperature": ("degC", "air_temperature"),
    "par": ("umol m-2 s-1", "ppfd_in"),
    "evi": ("1", "evi"),
    "lswi": ("1", "lswi"),
    "evi_threshold": ("1", "evi"),
    "lswi_min": ("1", "lswi"),
    "lswi_max": ("1", "lswi"),
    "class_fractions": ("1", None),
    "soil_water_content": ("m3 m-3", "soil_water_content"),
    "fapar": ("1", "fapar"),
}
_FIELDS = ("air_temperature", "par", "evi", "lswi", "evi_threshold", "lswi_min", "lswi_max",
           "class_fractions", "soil_water_content", "fapar")


def _required(options: VPRMOptions) -> list[str]:
    req = ["air_temperature", "par", "evi", "lswi", "evi_threshold", "lswi_min", "lswi_max",
           "class_fractions"]
    if options.water_stress != "lswi":
        req.append("soil_water_content")
    if options.light == "fapar":
        req.append("fapar")
    return req


def prepare_forcing(ds: xr.Dataset, options: VPRMOptions = VPRMOptions(), *,
                    class_dim: str = "vprm_class", check_gaps: bool = True) -> xr.Dataset:
    """Validate a forcing Dataset and bring it to canonical units.

    Raises :class:`DataValidationError` (naming the variable, the problem and the fix)
    for: a missing variable, a missing or unknown ``units`` attribute, a unit that
    cannot be converted, implausible ranges (e.g. temperature in K), gaps (NaN) in a
    forcing, class fractions outside [0, 1] or summing to more than 1.
    """
    src = ds.attrs.get("source_file", "forcing dataset")
    ds = ds.copy()
    if "par" not in ds and "ppfd_in" in ds:           # tower PPFD (reader name) is PAR
        ds["par"] = ds["ppfd_in"]
    if "par" not in ds and "shortwave_in" in ds:
        sw = ds["shortwave_in"]
        units = sw.attrs.get("units")
        if units != "W m-2":
            raise DataValidationError(f"units {units!r}, expected 'W m-2'.", source=src,
                                      variable="shortwave_in", fix="convert shortwave to W m-2.")
        ds["par"] = (sw * PAR_PER_SW).assign_attrs(units="umol m-2 s-1",
                                                  long_name="PAR = shortwave_in / 0.505")
    out = {}
    for name in _required(options):
        if name not in ds:
            raise DataValidationError(
                "required forcing variable is missing.", source=src, variable=name,
                fix=f"add {name!r} in {_SPEC[name][0]!r} (see process_models.vprm.xarray_api).")
        da = ds[name]
        units, key = _SPEC[name]
        given = da.attrs.get("units")
        if given is None:
            raise DataValidationError(
                "has no 'units' attribute.", source=src, variable=name,
                fix=f"set ds[{name!r}].attrs['units'] = {units!r} after checking the values.")
        if given != units:
            da = convert(da, given, units, source=src, variable=name).assign_attrs(units=units)
        if check_gaps:
            n_nan = int(da.isnull().sum())
            if n_nan:
                first = np.argwhere(np.asarray(da.isnull()))[0]
                where = {d: (str(da[d].values[i]) if d in da.coords else int(i))
                         for d, i in zip(da.dims, first)}
                raise DataValidationError(
                    f"{n_nan} missing values (NaN), first at {where}.", source=src, variable=name,
                    fix="gap-fill the forcing (e.g. MDS for met, the Kalman smoother for "
                        "satellite indices) or drop the affected time steps.")
        if key is not None:
            # dask-backed cubes: units errors are systematic, so a strided sample of at most
            # 64 points per dimension finds them without a pass over the whole cube
            sample = da if da.chunks is None else da.isel(
                {d: slice(None, None, max(1, -(-n // 64))) for d, n in da.sizes.items()})
            check_range(np.asarray(sample.values), key, source=src, column=name)
        out[name] = da
    frac = out["class_fractions"]
    if class_dim not in frac.dims:
        raise DataValidationError(f"has no {class_dim!r} dimension.", source=src,
                                  variable="class_fractions",
                                  fix=f"give fractions with a {class_dim!r} dim (class numbers as coordinate).")
    if frac.chunks is None:
        fv = frac.values
        if np.any(fv < -1e-9) or np.any(fv > 1 + 1e-9) or np.any(fv.sum(axis=frac.get_axis_num(class_dim)) > 1 + 1e-6):
            raise DataValidationError("fractions must lie in [0, 1] and sum to at most 1 per pixel.",
                                      source=src, variable="class_fractions",
                                      fix="normalise the land-cover fractions.")
    return xr.Dataset(out, attrs=ds.attrs)


def _kernel(params, options, dtype, names):
    def f(*arrays):
        fields = dict(zip(names, arrays))
        forcing = VPRMForcing(
            temperature=jnp.asarray(fields["air_temperature"], dtype),
            par=jnp.asarray(fields["par"], dtype),
            evi=jnp.asarray(fields["evi"], dtype),
            lswi=jnp.asarray(fields["lswi"], dtype),
            evi_threshold=jnp.asarray(fields["evi_threshold"], dtype),
            lswi_min=jnp.asarray(fields["lswi_min"], dtype),
            lswi_max=jnp.asarray(fields["lswi_max"], dtype),
            class_fractions=jnp.asarray(fields["class_fractions"], dtype),
            soil_water_content=(jnp.asarray(fields["soil_water_content"], dtype)
                                if "soil_water_content" in fields else None),
            fapar=jnp.asarray(fields["fapar"], dtype) if "fapar" in fields else None,
        )
        out = simulate_jit(params, forcing, options)
        return tuple(np.asarray(x) for x in (out.gpp, out.reco, out.nee))
    return f


def run(ds: xr.Dataset, params: VPRMParams, options: VPRMOptions = VPRMOptions(), *,
        class_dim: str = "vprm_class", dtype=None, validate: bool = True) -> xr.Dataset:
    """Run VPRM on a forcing Dataset of any dimensions (e.g. (time,), (time, y, x)).

    With dask-backed inputs (``ds.chunk(...)``) the computation is lazy and runs chunk
    by chunk through ``xarray.apply_ufunc(..., dask="parallelized")``; call
    ``.compute()`` or ``.to_netcdf()`` on the result. The class order of ``params`` must
    match the ``class_dim`` coordinate.

    Returns
    -------
    xarray.Dataset with ``gpp``, ``reco``, ``nee`` in umol m-2 s-1 (NEE = Reco - GPP).
    """
    f = prepare_forcing(ds, options, class_dim=class_dim, check_gaps=validate) if validate else ds
    if class_dim in f.coords:
        ids = tuple(int(c) for c in f[class_dim].values)
        if ids != tuple(params.rules.class_ids):
            raise DataValidationError(
                f"class order {ids} differs from the parameters' {params.rules.class_ids}.",
                source=ds.attrs.get("source_file", "forcing dataset"), variable=class_dim,
                fix="load parameters with classes=ds[class_dim].values.")
    dtype = dtype or f["air_temperature"].dtype
    if dtype == np.float64:
        import jax
        if not jax.config.jax_enable_x64:
            dtype = np.float32
    names = [n for n in _FIELDS if n in f]
    core = [[class_dim] if n == "class_fractions" else [] for n in names]
    gpp, reco, nee = xr.apply_ufunc(
        _kernel(params, options, dtype, names), *[f[n] for n in names],
        input_core_dims=core, output_core_dims=[[], [], []],
        dask="parallelized", output_dtypes=[dtype] * 3,
    )
    attrs = lambda ln: {"units": "umol m-2 s-1", "long_name": ln}
    out = xr.Dataset({
        "gpp": gpp.assign_attrs(attrs("gross primary production (>= 0)")),
        "reco": reco.assign_attrs(attrs("ecosystem respiration (>= 0)")),
        "nee": nee.assign_attrs(attrs("net ecosystem exchange, Reco - GPP (positive = source)")),
    })
    out.attrs.update({"model": "VPRM (Mahadevan et al. 2008), ecoflux JAX implementation",
                      "vprm_options": repr(options), "sign_convention": "NEE = Reco - GPP"})
    return out


def run_file(forcing_path, output_path, options: VPRMOptions = VPRMOptions(), *,
             table: str = "pyvprm_modis", temperatures: str = "copernicus",
             gourdji_table: str | None = None, chunks: dict | None = None) -> xr.Dataset:
    """Run VPRM on a forcing NetCDF file and write the fluxes to ``output_path`` (NetCDF).

    The forcing file holds the variables of this module's table and a ``vprm_class``
    coordinate on ``class_fractions``; parameters come from the packaged ``table``
    (:func:`process_models.vprm.load_parameters`) for those classes, in float64 when JAX
    runs in float64. ``chunks`` (e.g. ``{"time": 168, "y": 64}``) runs dask chunk by chunk.
    Returns the written file, opened (gpp, reco, nee in umol m-2 s-1).
    """
    from pathlib import Path
    import jax
    from ..io.summary import netcdf_safe
    from .tables import load_parameters
    path = Path(forcing_path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file.")
    try:
        ds = xr.open_dataset(path)
    except Exception as err:
        raise DataValidationError(f"could not open as NetCDF ({type(err).__name__}: {err}).",
                                  source=str(path), fix="pass a forcing NetCDF file.") from err
    with ds:
        ds.attrs.setdefault("source_file", path.name)
        if "vprm_class" not in ds.coords:
            raise DataValidationError(
                "has no 'vprm_class' coordinate.", source=str(path), variable="vprm_class",
                fix="give class_fractions a 'vprm_class' dimension with the class numbers "
                    "(1..9) as coordinate.")
        if chunks:
            unknown = [d for d in chunks if d not in ds.dims]
            if unknown:
                raise DataValidationError(
                    f"chunks name dimension(s) {unknown} that the forcing does not have "
                    f"(dimensions: {list(ds.dims)}).", source=str(path), variable="chunks",
                    fix="chunk only over the forcing's dimensions (--chunks time=168,y=64).")
            ds = ds.chunk(chunks)
        classes = [int(c) for c in np.asarray(ds["vprm_class"].values)]
        pdtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
        params = load_parameters(table, temperatures=temperatures, classes=classes, dtype=pdtype,
                                 gourdji=gourdji_table if options.respiration == "gourdji" else None)
        out = run(ds, params, options)
        out.attrs.update({"forcing_file": path.name, "parameter_table": table,
                          "temperature_constants": temperatures})
        if options.respiration == "gourdji":
            out.attrs["gourdji_table"] = gourdji_table
        netcdf_safe(out).to_netcdf(output_path)
    return xr.open_dataset(output_path)
