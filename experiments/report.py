"""Shared pieces of every study: settings parsing, figures, metrics, reports, expected results.

A study is a frozen ``Settings`` dataclass plus ``main(argv) -> dict`` (the numpyro-examples
and DAPPER shape). ``main`` parses overrides with :func:`parse_settings`, switches on float64
with :func:`enable_float64`, writes its figures with :func:`save_figure`, its numbers with
:func:`write_metrics` and its ``REPORT.md`` with :func:`write_report`, which ends with the
study's expected-results table (DAPPER: an experiment file ends with the results it is
expected to give). The golden test of a study asserts ``failed_expectations(...) == []``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["Expected", "enable_float64", "expected_table", "failed_expectations",
           "markdown_table", "parse_settings", "save_figure", "write_metrics", "write_report"]


def enable_float64() -> None:
    """Switch JAX to float64 (studies call this inside ``main``, never at import)."""
    import jax
    jax.config.update("jax_enable_x64", True)


def _parse_bool(text: str) -> bool:
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def parse_settings(settings_cls, argv: Sequence[str] | None = None, description: str = ""):
    """Parse ``argv`` into an instance of the frozen dataclass ``settings_cls``.

    Every field with a bool/int/float/str default becomes an option ``--field-name VALUE``
    (booleans take true/false; a bare ``--flag`` means true); ``--quick`` starts from ``settings_cls.quick()`` when the
    class defines it (else sets a ``quick`` field); ``--out DIR`` sets the ``out`` field.
    Explicit options override the quick defaults.
    """
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small, fast configuration (CI, demo)")
    kinds = {}
    for f in dataclasses.fields(settings_cls):
        if f.name == "quick":
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        kind = type(default) if isinstance(default, (bool, int, float, str)) else None
        if kind is None and f.name != "out":
            continue
        kinds[f.name] = kind or str
        flag = "--" + f.name.replace("_", "-")
        conv = _parse_bool if kind is bool else (kind or str)
        extra = {"nargs": "?", "const": True} if kind is bool else {}
        p.add_argument(flag, dest=f.name, type=conv, default=None,
                       help=f"default {default!r}", **extra)
    args = p.parse_args(list(argv) if argv is not None else None)
    field_names = {f.name for f in dataclasses.fields(settings_cls)}
    if args.quick and hasattr(settings_cls, "quick"):
        base = settings_cls.quick()
    elif args.quick and "quick" in field_names:
        base = settings_cls(quick=True)
    else:
        base = settings_cls()
    over = {k: getattr(args, k) for k in kinds if getattr(args, k) is not None}
    return dataclasses.replace(base, **over)


def save_figure(fig, out_dir, name: str, figs: list | None = None, dpi: int = 120) -> str:
    """Save ``fig`` as ``out_dir/name`` (PNG; ``.png`` appended when missing), close it and
    append the file name to ``figs``. Returns the file name (relative to ``out_dir``)."""
    import matplotlib.pyplot as plt
    name = name if name.endswith(".png") else name + ".png"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / name, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    if figs is not None:
        figs.append(name)
    return name


def panels(frame: pd.DataFrame, spec, title: str, out_dir, name: str, figs: list | None = None,
           style=None) -> str:
    """Stacked time-series panels of ``frame`` (index = time) saved as ``name``: ``spec`` is
    ``[(ylabel, {column: label})]``, one panel each; ``style`` maps a column to plot
    keywords (e.g. ``{"obs": {"ls": "", "marker": ".", "color": "k"}}``)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(len(spec), 1, figsize=(11, 2.3 * len(spec)), sharex=True, squeeze=False)
    for a, (ylabel, cols) in zip(ax[:, 0], spec):
        for c, label in cols.items():
            a.plot(frame.index, frame[c], **({"lw": 0.8} | (style or {}).get(c, {})), label=label)
        a.set_ylabel(ylabel)
        a.legend(loc="upper left", fontsize=8)
    ax[0, 0].set_title(title)
    return save_figure(fig, out_dir, name, figs)


def _fmt(v, floatfmt: str) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else format(float(v), floatfmt)
    return str(v).replace("|", "/").replace("\n", " ")


def markdown_table(df: pd.DataFrame, floatfmt: str = ".3g", index: bool = False) -> str:
    """A GitHub-markdown table of ``df`` (no tabulate dependency)."""
    d = df.reset_index() if index else df
    cols = [str(c) for c in d.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in d.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, floatfmt) for v in row) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Expected:
    """One expected result of a study: ``metrics[key]`` should be ``value +- tolerance``.

    ``tolerance`` is absolute, in the unit of the metric; ``description`` names the
    quantity and its unit for the report."""

    key: str
    value: float
    tolerance: float
    description: str = ""


def _lookup(metrics: Mapping, key: str):
    obj: Any = metrics
    for part in key.split("/"):
        if not isinstance(obj, Mapping) or part not in obj:
            return None
        obj = obj[part]
    return obj


def expected_table(expected: Sequence[Expected], metrics: Mapping) -> pd.DataFrame:
    """Columns quantity, key, expected, tolerance, measured, ok (``key`` may be a
    ``/``-joined path into nested metrics)."""
    rows = []
    for e in expected:
        m = _lookup(metrics, e.key)
        mv = float(m) if isinstance(m, (int, float, np.integer, np.floating)) else math.nan
        ok = bool(np.isfinite(mv) and abs(mv - e.value) <= e.tolerance)
        rows.append({"quantity": e.description or e.key, "key": e.key, "expected": e.value,
                     "tolerance": e.tolerance, "measured": mv, "ok": ok})
    return pd.DataFrame(rows, columns=["quantity", "key", "expected", "tolerance", "measured", "ok"])


def failed_expectations(expected: Sequence[Expected], metrics: Mapping) -> list[str]:
    """Human-readable lines for every expected result that is missing or out of tolerance."""
    t = expected_table(expected, metrics)
    return [f"{r.key}: measured {r.measured!r}, expected {r.expected} +- {r.tolerance}"
            for r in t.itertuples() if not r.ok]


def _jsonable(x):
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else float(x)
    if hasattr(x, "shape") and getattr(x, "shape", None) == ():
        return _jsonable(np.asarray(x).item())
    if hasattr(x, "tolist"):
        return _jsonable(np.asarray(x).tolist())
    return x


def write_metrics(out_dir, metrics: Mapping) -> Path:
    """Write ``metrics`` (nested dicts of numbers/strings; NaN -> null) to ``metrics.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    path.write_text(json.dumps(_jsonable(metrics), indent=1, sort_keys=True))
    return path


def is_quick(settings) -> bool:
    """True when ``settings`` is its class's ``quick()`` configuration, up to the output
    folder ``out`` and the fields the class lists in ``RESULT_NEUTRAL`` (options that do not
    change the results, e.g. ignoring checkpoints)."""
    cls = type(settings)
    if not hasattr(cls, "quick"):
        return False
    q = cls.quick()
    fields = {f.name for f in dataclasses.fields(cls)}
    same = {k: getattr(q, k) for k in ("out", *getattr(cls, "RESULT_NEUTRAL", ())) if k in fields}
    return dataclasses.replace(settings, **same) == q


def write_report(out_dir, title: str, sections: Sequence[str], figures: Sequence[str] = (),
                 expected: Sequence[Expected] = (), metrics: Mapping | None = None,
                 expected_label: str = "quick configuration", settings=None) -> Path:
    """Write ``REPORT.md``: title, the markdown ``sections``, the figures, and last the
    expected-results table of ``expected`` against ``metrics``. With ``settings`` that are
    not the quick configuration (:func:`is_quick`) the table is replaced by a line saying
    that the expected results are stated for ``--quick`` (they do not apply to this run)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", ""]
    for s in sections:
        parts += [s.rstrip(), ""]
    if figures:
        parts += ["## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures] + [""]
    if expected and settings is not None and not is_quick(settings):
        parts += [f"## Expected results ({expected_label})", "",
                  "The expected results are stated for the quick configuration (`--quick`); this run "
                  "used other settings, so they do not apply (run with `--quick` to check them).", ""]
    elif expected:
        t = expected_table(expected, metrics or {})
        parts += [f"## Expected results ({expected_label})", "",
                  "Each row: the value this study is expected to give, its tolerance and the value "
                  "measured in this run.", "", markdown_table(t, ".4g"), ""]
    path = out / "REPORT.md"
    path.write_text("\n".join(parts))
    return path
