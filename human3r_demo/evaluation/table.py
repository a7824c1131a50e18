"""The results in the paper's layout: per benchmark, the paper's metric columns, the paper's row and ours.

Tables 1-2 and Fig. 8 of the paper group the metrics as below (mm unless said; lower is better except
delta < 1.25 and the detection scores). A cell with no value says why: ``n/a`` for a paper figure not
found (see :mod:`.paper`), ``-`` for a metric our run could not compute (the notes say why).
"""

from __future__ import annotations

from typing import Any

from .paper import NOT_FOUND, PAPER, figure

__all__ = ["COLUMNS", "format_table"]

# benchmark -> [(metric key, column title)], in the paper's order
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "3dpw": [("pa_mpjpe", "PA-MPJPE"), ("mpjpe", "MPJPE"), ("pve", "PVE")],
    "emdb1": [("pa_mpjpe", "PA-MPJPE"), ("mpjpe", "MPJPE"), ("pve", "PVE")],
    "emdb2": [("wa_mpjpe", "WA-MPJPE"), ("w_mpjpe", "W-MPJPE"), ("rte", "RTE %")],
    "rich": [("wa_mpjpe", "WA-MPJPE"), ("w_mpjpe", "W-MPJPE"), ("rte", "RTE %")],
    "tum": [("ate", "ATE m"), ("rpe_trans", "RPE trans m"), ("rpe_rot", "RPE rot deg")],
    "bonn": [("abs_rel", "AbsRel"), ("delta_1_25", "d<1.25"), ("abs_rel_metric", "AbsRel metric"),
             ("delta_1_25_metric", "d<1.25 metric")],
}
EXTRA = {"3dpw": [("precision", "Prec %"), ("recall", "Rec %"), ("f1", "F1 %")],
         "emdb1": [("precision", "Prec %"), ("recall", "Rec %"), ("f1", "F1 %")],
         "emdb2": [("jitter", "Jitter"), ("foot_sliding", "Foot sl."), ("recall", "Rec %")],
         "rich": [("jitter", "Jitter"), ("foot_sliding", "Foot sl."), ("recall", "Rec %")],
         "bonn": [("ate", "ATE m")]}
WHERE = {"3dpw": "Table 1, 14 joints", "emdb1": "Table 1, 24 joints", "emdb2": "Table 2, 24 joints",
         "rich": "Table 2, 24 joints", "tum": "Table 2, Sim(3)-aligned", "bonn": "Fig. 8, per-sequence scale / metric"}


def _cell(value: float | None, missing: str) -> str:
    if value is None:
        return missing
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def format_table(results: dict[str, Any]) -> str:
    """The text table of one ``eval`` results dict (what ``results.json`` holds)."""
    name = results["benchmark"]
    columns = COLUMNS[name] + EXTRA.get(name, [])
    ours = results.get("dataset", {})
    label = f"ours ({results['model']})"
    rows = [["Human3R (paper)"] + [_cell(f.value if (f := figure(name, key)) else None, "n/a") for key, _ in columns],
            [label] + [_cell(ours.get(key), "-") for key, _ in columns]]
    header = ["", *[title for _, title in columns]]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    done = results.get("sequences_scored", 0)
    out = [f"{results['title']} ({WHERE[name]}): {done} of {results.get('sequences_total', done)} sequence(s) scored, "
           f"{results.get('frames_scored', 0)} frame(s)", line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    if results.get("untrained"):
        out.append(f"WARNING: {results['model']} is untrained (random weights): these numbers are meaningless, "
                   "they only show the evaluation runs end to end")
    if not any(figure(name, key) for key, _ in columns):
        out.append(f"paper: {NOT_FOUND}")
    else:
        sources = sorted({f.source for key, _ in columns if (f := figure(name, key))})
        out.append(f"paper: {PAPER} ({'; '.join(sources)})")
    out.append(f"run settings (the reference's, then any you overrode): {results['settings']}")
    for note in results.get("notes", []):
        out.append(f"note: {note}")
    return "\n".join(out)
