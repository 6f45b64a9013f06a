"""``ecoflux`` command line: read flux-tower / satellite / reanalysis files, run VPRM on a
forcing NetCDF, list the shipped VPRM parameter tables, and start the studies and
benchmarks.

Subcommands
-----------
``ecoflux read PATH``          read a file with the right reader, print a summary, write NetCDF
``ecoflux vprm FORCING.nc``    run VPRM (process_models.vprm.run) and write the fluxes
``ecoflux tables [NAME]``      list parameter tables, or print one with units and priors
``ecoflux map CONFIG.toml``    regional hourly NEE/GPP/Reco maps into a Zarr store (+ budgets)
``ecoflux study NAME``         run a study (``ecoflux study --help`` lists them)
``ecoflux bench NAME``         run a benchmark (``ecoflux bench --help`` lists them)

Bad input (:class:`process_models.units.DataValidationError`, a missing file, an
unknown table or option) is printed as ``error: <message>`` on stderr with exit code 2
and no traceback. The command line only parses arguments and dispatches: reading, format
detection and summaries are :mod:`process_models.io` (:func:`~process_models.io.read`,
:func:`~process_models.io.detect_format`, :func:`~process_models.io.summarize`), VPRM is
:func:`process_models.vprm.run`; JAX is imported inside the handlers.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "build_parser", "STUDIES", "BENCHMARKS"]

_EXIT_INPUT = 2


class CLIError(Exception):
    """A user error the CLI reports as ``error: <message>`` (exit 2)."""


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("ecoflux-jax")
    except Exception:  # pragma: no cover - not installed
        return "0.1.0"


# ---------------------------------------------------------------------------------------
# subcommand handlers (dispatch to the library)
# ---------------------------------------------------------------------------------------

def _cmd_read(args) -> int:
    from process_models.io import FORMATS, detect_format, read, summarize, write_netcdf

    path = Path(args.path)
    fmt = detect_format(path) if args.format == "auto" else args.format
    print(f"file: {path}")
    print(f"format: {fmt} ({FORMATS[fmt].description}){' [auto-detected]' if args.format == 'auto' else ''}")
    obj = read(path, fmt)
    print(summarize(obj))
    if args.output:
        print(write_netcdf(obj, args.output))
    return 0


def _parse_chunks(text: str | None) -> dict | None:
    if not text:
        return None
    chunks = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise CLIError(f"--chunks {text!r}: expected DIM=SIZE[,DIM=SIZE...], e.g. time=168,y=64.")
        dim, size = (s.strip() for s in part.split("=", 1))
        try:
            n = int(size)
        except ValueError:
            raise CLIError(f"--chunks {text!r}: chunk size {size!r} of {dim!r} is not an integer.")
        if n <= 0 and n != -1:
            raise CLIError(f"--chunks {text!r}: chunk size of {dim!r} must be > 0 (or -1 for all).")
        chunks[dim] = n
    return chunks or None


def _cmd_vprm(args) -> int:
    import numpy as np
    from process_models.vprm import VPRMOptions
    from process_models.vprm.xarray_api import run_file

    chunks = _parse_chunks(args.chunks)
    try:
        options = VPRMOptions(mode=args.mode, sharpness=args.sharpness,
                              pyvprm_compat=args.pyvprm_compat, respiration=args.respiration)
    except ValueError as err:
        raise CLIError(str(err)) from err
    if args.float64:
        import jax
        jax.config.update("jax_enable_x64", True)
    try:
        res = run_file(args.forcing, args.output, options, table=args.table,
                       temperatures=args.temperatures, gourdji_table=args.gourdji_table,
                       chunks=chunks)
    except KeyError as err:
        raise CLIError(str(err.args[0]) if err.args else str(err)) from err
    with res:
        dims = ", ".join(f"{d}={n}" for d, n in res.sizes.items())
        print(f"VPRM {options.mode} (table {args.table}, temperatures {args.temperatures}, "
              f"respiration {args.respiration}) on {Path(args.forcing).name}: {dims}")
        for v in ("gpp", "reco", "nee"):
            a = np.asarray(res[v].values, dtype=float)
            print(f"  {v:5s} [{res[v].attrs.get('units')}]  mean {np.nanmean(a):.4g}  "
                  f"min {np.nanmin(a):.4g}  max {np.nanmax(a):.4g}")
    print(f"wrote {args.output}")
    return 0


def _cmd_tables(args) -> int:
    from process_models.vprm.tables import describe_tables, format_table

    try:
        print(format_table(args.name) if args.name else describe_tables())
    except KeyError as err:
        raise CLIError(str(err.args[0])) from err
    return 0


def _cmd_map(args) -> int:
    import jax

    from assimilation.maps import load_config, run_map
    overrides = {}
    if args.scheduler:
        overrides["run__scheduler"] = args.scheduler
    if args.workers:
        overrides["run__workers"] = args.workers
    if args.store:
        overrides["output__store"] = str(Path(args.store).resolve())
    if args.overwrite:
        overrides["output__overwrite"] = True
    cfg = load_config(args.config, **overrides)
    if cfg.run.precision == "float64":
        jax.config.update("jax_enable_x64", True)
    result = run_map(cfg, progress=not args.no_progress)
    info = result.info
    print(f"store: {result.store} ({'resumed' if result.resumed else 'new'}; "
          f"{info['tiles_run']} of {info['tiles']} tiles run, {info['pixel_hours']:.3g} pixel-hours "
          f"in {info['run_s']:.1f} s)")
    if not result.budgets.empty:
        cols = ["region", "class", "area_km2", "nee_g_c_m2", "nee_sd_independent", "nee_sd_correlated",
                "gpp_g_c_m2", "reco_g_c_m2"]
        print(result.budgets[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print(f"budgets: {str(result.store).rstrip('/')}.budgets.csv (g C m-2 over the period)")
    return 0


def _rc(result) -> int:
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _import_runner(name: str):
    """Import a study/benchmark module lazily; a missing module is a CLIError."""
    import importlib
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and name.startswith(err.name):
            raise CLIError(f"{name} is not available in this checkout ({err}).") from err
        raise


STUDIES = {
    "vprm-first": ("experiments.vprm_first_study",
                   "VPRM at Park Falls (tower + MODIS) and Munich (MODIS + ERA5)"),
    "coupled": ("experiments.coupled_study",
                "coupled soil-water/photosynthesis model at CH-Dav, FR-Hes, BE-Vie, FR-Aqui"),
    "bmi-coupling": ("experiments.bmi_coupling_study",
                     "BMI couplings: coupled model + VPRM at AT-Neu; surface + soil components"),
    "flux-processing": ("experiments.flux_processing_study",
                        "u*, MDS gap filling, partitioning, random error at CH-Dav and DE-Tha"),
    "fusion": ("experiments.fusion_study",
               "multi-sensor Kalman fusion of MODIS series, withheld-data evaluation"),
    "emulator": ("experiments.emulator_study", "train and evaluate the neural emulators"),
    "calibration-vprm": ("experiments.calibration_vprm",
                         "NumPyro calibration of VPRM at Park Falls and European sites"),
    "calibration-coupled": ("experiments.calibration_coupled",
                            "calibration of the coupled model at CH-Dav and FR-Hes"),
    "da-lorenz": ("experiments.da_lorenz", "ensemble DA twin experiments on Lorenz-63/96"),
    "da-twin-coupled": ("experiments.da_twin_coupled",
                        "twin experiment: recover hidden coupled-model parameters with an ETKF"),
    "da-coupled-real": ("experiments.da_coupled_real",
                        "ensemble DA of NEE and soil water with the coupled model at a tower"),
    "map": ("experiments.map_study",
            "hourly flux maps with uncertainty: Romania S2, Munich MODIS+ERA5, Park Falls pixel"),
    "upscaling": ("experiments.upscaling_study",
                  "cross-site upscaling of tower fluxes: LightGBM vs deep ensemble vs hybrid VPRM, CH-Dav drought"),
    "nox": ("experiments.nox_study",
            "NOx emissions from TROPOMI-like NO2: flux divergence, CSF, 4D-Var, U-Net; Matimba, SMARTCARB"),
    "pivot": ("experiments.pivot_study",
              "daily multi-sensor pivot: multi-resolution Kalman vs learned, withheld S2 dates"),
}
"""Study name -> (module, one-line description); each module has ``main(argv)`` with
``--out`` and ``--quick``."""

BENCHMARKS = {
    "vprm": ("experiments.benchmarks.vprm_throughput", "VPRM pixel-hours per second, JAX vs NumPy"),
    "coupled": ("experiments.benchmarks.coupled_throughput",
                "coupled model site-years per second, ensemble and gradient cost"),
    "da": ("experiments.benchmarks.da_analysis", "ensemble analysis steps, JAX vs NumPy"),
    "calibration": ("experiments.benchmarks.calibration_nuts_vs_rwm",
                    "NUTS vs random-walk Metropolis, ESS per second"),
}


def _cmd_study(args) -> int:
    runner = _import_runner(STUDIES[args.study][0])
    argv = []
    if args.out:
        argv += ["--out", str(args.out)]
    if args.quick:
        argv.append("--quick")
    return _rc(runner.main(argv))


def _cmd_bench(args) -> int:
    runner = _import_runner(BENCHMARKS[args.bench][0])
    argv = []
    if args.quick:
        argv.append("--quick")
    if args.write_results:
        argv.append("--write-results")
    return _rc(runner.main(argv))


# ---------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------

class _Fmt(argparse.RawDescriptionHelpFormatter):
    """Wraps prose paragraphs, keeps indented blocks and example lists as written, and
    shows non-trivial defaults."""

    def _fill_text(self, text, width, indent):
        import textwrap
        out = []
        for para in text.split("\n\n"):
            lines = para.split("\n")
            if len(lines) > 1 and any(ln.startswith(" ") for ln in lines[1:]):
                out.append("\n".join(indent + ln for ln in lines))
            else:
                out.append(textwrap.fill(" ".join(ln.strip() for ln in lines), width,
                                         initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(out)

    def _get_help_string(self, action):
        help = action.help or ""
        if ("%(default)" not in help and action.default not in (None, False, argparse.SUPPRESS)
                and action.option_strings):
            help += " (default: %(default)s)"
        return help


def build_parser() -> argparse.ArgumentParser:
    from process_models.io.registry import FORMATS

    ap = argparse.ArgumentParser(
        prog="ecoflux", formatter_class=_Fmt,
        description="ecoflux: differentiable JAX toolkit for CO2 fluxes from flux-tower and "
                    "satellite data.",
        epilog="examples:\n"
               "  ecoflux read FLX_CH-Cha_FLUXNET2015_FULLSET_HH_2005-2020.csv --output cha.nc\n"
               "  ecoflux vprm forcing.nc --output fluxes.nc --table eu2007\n"
               "  ecoflux tables eu2007\n"
               "  ecoflux study vprm-first --quick\n"
               "  ecoflux bench vprm --quick\n"
               "Run 'ecoflux COMMAND --help' for the options of each command.")
    ap.add_argument("--version", action="version", version=f"ecoflux {_version()}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # read
    p = sub.add_parser(
        "read", formatter_class=_Fmt,
        help="read a flux-tower, MODIS or ERA5 file and summarise it (optionally to NetCDF)",
        description="Read a flux-tower, satellite or reanalysis file with the matching "
                    "process_models.io reader, print a summary table (variable, units, "
                    "long_name, % missing, min, max), the time span, the time convention and "
                    "the UTC offset, and optionally write it to NetCDF.\n\n"
                    "Formats (the reader process_models.io.read_<format>):\n" + "\n".join(
                        f"  {f.name:22s} {f.description}" for f in FORMATS.values()) + "\n\n"
                    "Auto-detection (--format auto) by file name and extension first (MOD09A1, "
                    "*.parquet, *.RData, FULLSET, europe-fluxdata, *.stm), then by content "
                    "(netCDF variables, header columns); the rules are listed in "
                    "process_models.io.registry.",
        epilog="examples:\n"
               "  ecoflux read experiments/data/de-tha_1996-1998/Example_DETha98.txt\n"
               "  ecoflux read merged_BE-Vie_data.csv --output be-vie.nc\n"
               "  ecoflux read experiments/data/munich_2022_modis-era5_pyvprm/modis "
               "--format mod09a1\n"
               "Bad input exits with status 2 and 'error: <message>' on stderr.")
    p.add_argument("path", help="file to read (gzip is fine), or a folder of MOD09A1 crops")
    p.add_argument("--format", default="auto", choices=["auto", *FORMATS],
                   help="file format; 'auto' detects it from the name, extension and content")
    p.add_argument("--output", "-o", metavar="OUT.nc", default=None,
                   help="write the Dataset(s) to this NetCDF file")
    p.set_defaults(func=_cmd_read)

    # vprm
    p = sub.add_parser(
        "vprm", formatter_class=_Fmt,
        help="run VPRM on a forcing NetCDF and write GPP, Reco and NEE",
        description="Run the VPRM model (process_models.vprm.run) on a forcing NetCDF and "
                    "write gpp, reco and nee (umol m-2 s-1, NEE = Reco - GPP) to NetCDF.\n\n"
                    "The forcing needs air_temperature (degC), par (umol m-2 s-1) or "
                    "shortwave_in (W m-2), evi, lswi, evi_threshold, lswi_min, lswi_max (1) "
                    "and class_fractions (1) with a 'vprm_class' dimension whose coordinate "
                    "holds the class numbers (1..9); every variable needs a 'units' "
                    "attribute. Parameters are loaded for those classes, in that order.",
        epilog="examples:\n"
               "  ecoflux vprm forcing.nc --output fluxes.nc\n"
               "  ecoflux vprm cube.nc -o fluxes.nc --table eu2007 --mode smooth "
               "--sharpness 4 --chunks time=168,y=64\n"
               "Invalid forcing (missing variable, wrong units, gaps) exits with status 2.")
    p.add_argument("forcing", metavar="FORCING.nc", help="forcing NetCDF file")
    p.add_argument("--output", "-o", metavar="FLUXES.nc", required=True,
                   help="NetCDF file for the fluxes")
    p.add_argument("--table", default="pyvprm_modis",
                   help="parameter table (see 'ecoflux tables')")
    p.add_argument("--temperatures", default="copernicus",
                   choices=["copernicus", "mahadevan2008", "wrf"],
                   help="temperature-constant scheme (Tmin, Topt, Tmax, Tlow)")
    p.add_argument("--mode", default="exact", choices=["exact", "smooth"],
                   help="exact pyVPRM switches, or smooth differentiable twins")
    p.add_argument("--sharpness", type=float, default=1.0,
                   help="sharpness of the smooth switches (smooth mode)")
    p.add_argument("--respiration", default="linear", choices=["linear", "gourdji"],
                   help="respiration model: Mahadevan (2008) linear or Gourdji et al. (2022)")
    p.add_argument("--gourdji-table", default="emiproc_example",
                   help="Gourdji coefficient table (only with --respiration gourdji)")
    p.add_argument("--pyvprm-compat", action="store_true",
                   help="reproduce pyVPRM 6.0.1 bit for bit (unclipped Wscale; exact mode only)")
    p.add_argument("--float64", action="store_true",
                   help="compute in float64 (sets jax_enable_x64); default float32 unless "
                        "JAX_ENABLE_X64 is set")
    p.add_argument("--chunks", metavar="DIM=N[,DIM=N]", default=None,
                   help="dask chunks, e.g. time=168,y=64, to run large cubes chunk by chunk")
    p.set_defaults(func=_cmd_vprm)

    # tables
    p = sub.add_parser(
        "tables", formatter_class=_Fmt,
        help="list the shipped VPRM parameter tables, or print one with units and priors",
        description="Without NAME: list the shipped VPRM parameter tables with their "
                    "citation. With NAME: print its parameters per vegetation class (class, "
                    "name, units, value, prior) as used for calibration.",
        epilog="examples:\n  ecoflux tables\n  ecoflux tables eu2007")
    p.add_argument("name", nargs="?", metavar="NAME", help="table name, e.g. eu2007")
    p.set_defaults(func=_cmd_tables)

    # map
    p = sub.add_parser(
        "map", formatter_class=_Fmt,
        help="regional hourly NEE/GPP/Reco maps with uncertainty into a Zarr store (+ budgets)",
        description="Run the map engine (assimilation.maps.run_map) on a TOML configuration: "
                    "satellite cube -> cloud mask -> daily Kalman pivot with sd -> VPRM -> "
                    "hourly fluxes and sd in a chunked CF/Zarr store, budgets per land-cover "
                    "class and region in <store>.budgets.csv. Tiles run on a dask LocalCluster "
                    "(or a cluster address); an interrupted run resumes where it stopped. "
                    "See assimilation/maps/README.md for the configuration keys.",
        epilog="examples:\n  ecoflux map experiments/configs/romania_s2.toml\n"
               "  ecoflux map experiments/configs/munich_modis.toml --scheduler inprocess\n"
               "  ecoflux map my.toml --scheduler tcp://10.0.0.5:8786")
    p.add_argument("config", type=Path, help="map configuration (TOML)")
    p.add_argument("--scheduler", default=None,
                   help="'inprocess', 'local' (LocalCluster) or a dask scheduler address")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster workers")
    p.add_argument("--store", default=None, help="output Zarr store (overrides output.store)")
    p.add_argument("--overwrite", action="store_true", help="replace a store of another configuration")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_map)

    # study
    p = sub.add_parser(
        "study", formatter_class=_Fmt,
        help="run a study (figures, metrics and REPORT.md in --out)",
        description="Run a study of the experiments package:\n" + "\n".join(
            f"  {k:20s} {v[1]}" for k, v in STUDIES.items()),
        epilog="examples:\n  ecoflux study vprm-first --quick\n"
               "  ecoflux study coupled --out results/coupled")
    p.add_argument("study", choices=list(STUDIES), help="which study")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default: the study's own)")
    p.add_argument("--quick", action="store_true", help="small, fast run (smoke test)")
    p.set_defaults(func=_cmd_study)

    # bench
    p = sub.add_parser(
        "bench", formatter_class=_Fmt,
        help="run a benchmark (ratios against a reference measured in the same run)",
        description="Run a benchmark of experiments/benchmarks:\n" + "\n".join(
            f"  {k:12s} {v[1]}" for k, v in BENCHMARKS.items()),
        epilog="examples:\n  ecoflux bench vprm --quick\n  ecoflux bench vprm --write-results")
    p.add_argument("bench", choices=list(BENCHMARKS), help="which benchmark")
    p.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    p.add_argument("--write-results", action="store_true",
                   help="write the results file of the benchmark")
    p.set_defaults(func=_cmd_bench)
    return ap


def main(argv=None) -> int:
    """Entry point of the ``ecoflux`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from process_models.units import DataValidationError
    try:
        return args.func(args)
    except (DataValidationError, CLIError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return _EXIT_INPUT
    except KeyboardInterrupt:  # pragma: no cover
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # pragma: no cover - e.g. `ecoflux read ... | head`
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
