"""The result of a lab run: the records, their table, verdicts, files and plots."""

from __future__ import annotations

import csv
import io
import json
import math
import os

from .measure import TIMING_FIELDS


def _clean(v):
    """JSON-safe: NaN and inf become None (strict JSON has neither); tuples become lists."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    return v


def fmt(v, digits=2) -> str:
    """A number for the table: 3 significant digits, scientific when far from 1."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    a = abs(v)
    if a != 0 and (a < 1e-2 or a >= 1e4):
        return f"{v:.{digits - 1}e}".replace("e-0", "e-").replace("e+0", "e+")
    return f"{v:.{digits}g}" if a < 1 else f"{v:.{digits + 1}g}"


class LabResult:
    """The records of a lab run, their verdicts, and their table, files and plots.

    What fastact.lab.run returns.

    Parameters
    ----------
    records : iterable of dict
        One per configuration (the fields: fastact.lab.measure's module docstring).
    preset : str, optional
        The preset's name, or None.
    verdicts : sequence of str, default ()
        The lines computed from the records.
    notes : sequence of str, default ()
        Remarks on the run as a whole (e.g. that under FASTACT_PUREPYTHON=1 the
        speed-up compares NumPy with itself).
    elapsed : float, optional
        The seconds the run took.
    meta : dict, optional
        The run's metadata (versions, machine), written into the JSON.

    See Also
    --------
    fastact.lab.run : Makes one.

    Examples
    --------
    >>> import fastact.lab
    >>> res = fastact.lab.run(["sigmoid", "relu"], depths=[2, 10], steps=0,
    ...                       timing=False, progress=False)
    >>> res
    LabResult(4 records, preset=None, 4 verdicts)
    >>> print(res.table())  # doctest: +ELLIPSIS
    activation  init           depth  variant  |dW1|/|dWL|  |dz1|/|dzL|  ...
    ----------  -------------  -----  -------  -----------  -----------  ...
    sigmoid     auto:xavier_u  2      plain    ...
    sigmoid     auto:xavier_u  10     plain    ...
    relu        auto:he_n      2      plain    ...
    relu        auto:he_n      10     plain    ...
    >>> import os
    >>> [os.path.basename(p) for p in res.save("out", plots=False)]
    ['results.json', 'results.csv']
    """

    def __init__(self, records, *, preset=None, verdicts=(), notes=(), elapsed=None, meta=None):
        self.records = list(records)
        self.preset = preset
        self.verdicts = list(verdicts)
        self.notes = list(notes)
        self.elapsed = elapsed
        self.meta = dict(meta or {})

    def __len__(self):
        return len(self.records)

    def __repr__(self):
        return (
            f"LabResult({len(self.records)} records, preset={self.preset!r}, "
            f"{len(self.verdicts)} verdicts)"
        )

    # -- files --
    def to_json(self, path=None, *, indent=None) -> str | None:
        """Write the records (and the run's metadata) as strict JSON (NaN and inf as null).

        Parameters
        ----------
        path : str or os.PathLike, optional
            The file to write; None returns the text instead.
        indent : int, optional
            json.dumps's indent.

        Returns
        -------
        str or None
            The JSON text when path is None.
        """
        doc = {
            "preset": self.preset,
            "meta": _clean(self.meta),
            "verdicts": self.verdicts,
            "notes": self.notes,
            "records": _clean(self.records),
        }
        text = json.dumps(doc, indent=indent, allow_nan=False)
        if path is None:
            return text
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        return None

    def columns(self) -> list:
        """Return the records' field names, in order of first appearance.

        Returns
        -------
        list of str
            The columns of to_csv and to_pandas.
        """
        cols = []
        for r in self.records:
            for k in r:
                if k not in cols:
                    cols.append(k)
        return cols

    def to_csv(self, path=None) -> str | None:
        """Write the records as CSV: one row per record, list fields as JSON arrays.

        Parameters
        ----------
        path : str or os.PathLike, optional
            The file to write; None returns the text instead.

        Returns
        -------
        str or None
            The CSV text when path is None.
        """
        buf = io.StringIO()
        cols = self.columns()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in self.records:
            row = []
            for c in cols:
                v = _clean(r.get(c))
                row.append(json.dumps(v) if isinstance(v, list) else ("" if v is None else v))
            w.writerow(row)
        if path is None:
            return buf.getvalue()
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
        return None

    def to_pandas(self):
        """Return the records as a pandas DataFrame (needs pandas).

        Returns
        -------
        pandas.DataFrame
            One row per record, the columns of columns().

        Raises
        ------
        ImportError
            If pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "LabResult.to_pandas needs pandas: pip install pandas "
                "(to_json and to_csv need nothing)."
            ) from None
        return pd.DataFrame.from_records(self.records, columns=self.columns())

    def comparable(self) -> list:
        """Return the records without their timing fields: what equal seeds make equal.

        Returns
        -------
        list of dict
            The records less fastact.lab.TIMING_FIELDS.
        """
        return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in self.records]

    # -- terminal --
    def table(self) -> str:
        """Return the terminal table: one line per configuration.

        Returns
        -------
        str
            Activation, init, depth, variant, the gradient ratios, activation spread,
            saturated and dead shares; training and timing columns when measured.
        """
        trained = any(r.get("final_loss") is not None for r in self.records)
        timed = any(r.get("step_time_fastact") is not None for r in self.records)
        labelled = any(r.get("label") for r in self.records)
        multi_opt = len({r.get("optimizer") for r in self.records}) > 1
        lead = (["row"] if labelled else []) + (["optimizer"] if multi_opt else [])
        head = lead + [
            "activation",
            "init",
            "depth",
            "variant",
            "|dW1|/|dWL|",
            "|dz1|/|dzL|",
            "act std 1/L",
            "sat",
            "dead",
        ]
        if trained:
            head += ["loss 0->end", "test acc"]
        if timed:
            head += ["fastact", "reference", "speed-up"]
        rows = []
        for r in self.records:
            std = r["activation_std"]
            row = ([r.get("label") or ""] if labelled else []) + (
                [r.get("optimizer") or "-"] if multi_opt else []
            )
            row += [
                r["activation"],
                r["init"] if r["init"] != "auto" else f"auto:{_short(r['init_scheme'])}",
                str(r["depth"]),
                r["variant"],
                fmt(r["weight_grad_ratio"]),
                fmt(r["backprop_grad_ratio"]),
                f"{fmt(std[0])}/{fmt(std[-1])}",
                _pct(_mean(r["saturated_fraction"])),
                _pct(_mean(r["dead_fraction"])),
            ]
            if trained:
                if r.get("final_loss") is None:
                    row += ["-", "-"]
                else:
                    end = "diverged" if r["diverged"] else fmt(r["final_loss"])
                    row += [f"{fmt(r['initial_loss'])}->{end}", fmt(r["accuracy"])]
            if timed:
                if r.get("step_time_fastact") is None:
                    row += ["-", "-", "-"]
                else:
                    row += [
                        _ms(r["step_time_fastact"]),
                        _ms(r["step_time_reference"]),
                        f"{r['speedup']:.1f}x",
                    ]
            rows.append(row)
        widths = [
            max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)
        ]
        left = len(lead) + 4  # the text columns; numbers are right-aligned
        lines = [
            "  ".join(
                h.ljust(w) if i < left else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths))
            )
        ]
        lines.append("  ".join("-" * w for w in widths))
        for row in rows:
            lines.append(
                "  ".join(
                    c.ljust(w) if i < left else c.rjust(w)
                    for i, (c, w) in enumerate(zip(row, widths))
                )
            )
        return "\n".join(lines)

    def report(self) -> str:
        """Return the table, a legend, the notes and the verdicts: what `fastact lab` prints.

        Returns
        -------
        str
            The report.
        """
        parts = [self.table(), ""]
        legend = (
            "|dW1|/|dWL|: weight-gradient norm of the first hidden layer over the last "
            "hidden layer's; |dz1|/|dzL|: the same for the gradient at the "
            "pre-activations (what back-propagation delivers); measured at "
            "initialisation on one batch, float64.  sat/dead: mean share of saturated "
            "entries / dead units per hidden layer."
        )
        if any(r.get("step_time_fastact") is not None for r in self.records):
            legend += (
                "  fastact / reference: one training step of fastact.MLP / "
                "fastact.reference.MLP (pure NumPy), same configuration and batch, one thread, "
                "best of 7 interleaved samples."
            )
        parts.append(_wrap(legend))
        for n in self.notes:
            parts.append(_wrap("note: " + n))
        if self.verdicts:
            parts += ["", "Verdicts (computed from the numbers above):"]
            parts += [_wrap("- " + v, indent="  ") for v in self.verdicts]
        if self.elapsed is not None:
            parts += ["", f"{len(self.records)} configurations in {self.elapsed:.1f} s."]
        return "\n".join(parts)

    # -- plots --
    def plot(self, out_dir) -> list:
        """Write the PNG plots into out_dir (needs matplotlib).

        Parameters
        ----------
        out_dir : str or os.PathLike
            The folder (made if missing).

        Returns
        -------
        list of str
            The paths written.
        """
        from .plots import plot_all

        return plot_all(self, out_dir)

    def save(self, out_dir, *, plots=True) -> list:
        """Write results.json, results.csv and the plots into out_dir.

        Parameters
        ----------
        out_dir : str or os.PathLike
            The folder (made if missing).
        plots : bool, default True
            Also write the PNG plots (needs matplotlib: an ImportError without it).

        Returns
        -------
        list of str
            The paths written.

        Notes
        -----
        Over an earlier lab run (a folder that holds results.json and results.csv) the
        folder then holds this run's files only: a plot of the lab's that the earlier
        run left there and this one does not make (training.png after a run with
        steps=0, say) is removed.  In any other folder nothing but the files written is
        touched.
        """
        from .plots import PLOT_NAMES

        os.makedirs(out_dir, exist_ok=True)
        paths = [os.path.join(out_dir, "results.json"), os.path.join(out_dir, "results.csv")]
        earlier_run = all(os.path.isfile(p) for p in paths)
        self.to_json(paths[0], indent=1)
        self.to_csv(paths[1])
        if plots:
            paths += self.plot(out_dir)
        written = {os.path.basename(p) for p in paths}
        for name in PLOT_NAMES if earlier_run else ():
            stale = os.path.join(out_dir, name)
            if name not in written and os.path.isfile(stale):
                os.remove(stale)
        return paths


def _short(scheme):
    return {
        "xavier_uniform": "xavier_u",
        "xavier_normal": "xavier_n",
        "he_normal": "he_n",
        "he_uniform": "he_u",
        "lecun_normal": "lecun",
    }.get(scheme, scheme)


def _mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def _pct(v):
    return "-" if v is None or math.isnan(v) else f"{100 * v:.0f}%"


def _ms(s):
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def _wrap(text, width=100, indent=""):
    import textwrap

    return textwrap.fill(text, width=width, subsequent_indent=indent + "  ")
