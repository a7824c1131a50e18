"""Execute the tutorials headlessly, as the tests do, and write their HTML exports to docs/notebooks/.

    .venv/bin/python notebooks/export_html.py           # every notebook
    .venv/bin/python notebooks/export_html.py 01 05     # those whose name starts with 01 or 05

The notebooks run offline on ``tiny-random`` with the synthetic SMPL-X stand-in
(``tests/smplx_standin.py``, written to a temporary folder and removed afterwards). Each export is
one self-contained HTML file that renders without a kernel and without the network: every figure is
a PNG embedded in it, and the equations are converted to MathML (``latex2mathml``), which browsers
draw natively. Live widgets (the Rerun viewer, sliders) are dropped from the export: each has a
static figure beside it in the notebook.

``tests/test_notebooks.py`` imports :func:`execute` and :func:`to_html` from here, so the tests run
the notebooks exactly as the published exports were made.
"""

from __future__ import annotations

import os
import re
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
DOCS = REPO / "docs" / "notebooks"
FIGURE_TAG = "figure"  # the tag of every cell that draws a figure (each must leave a PNG)
PNG_IN_HTML = re.compile(r'<img [^>]*src="data:image/png;base64,')  # an embedded PNG figure
_PEAK_MARKER = "__peak_rss_mib__"
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.S)  # $$display$$ or $inline$
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)


@dataclass
class Executed:
    """A notebook after a headless run: the notebook with its outputs, the wall time and the peak memory."""

    notebook: nbformat.NotebookNode
    seconds: float
    peak_rss_mib: float
    cpu_seconds: float


def tutorial_environment(smplx_dir: str | os.PathLike) -> dict[str, str]:
    """The environment the notebooks run in: offline viewer assets, the SMPL-X stand-in, tiny-random."""
    env = dict(os.environ, RERUN_NOTEBOOK_ASSET="inline", HUMAN3R_SMPLX_DIR=str(smplx_dir))
    env.pop("HUMAN3R_MODEL", None)
    env.setdefault("PYTHONPATH", str(REPO))
    return env


def execute(path: str | os.PathLike, env: dict[str, str] | None = None, timeout: int = 600) -> Executed:
    """Run a notebook top to bottom in a fresh kernel (started in the notebook's folder).

    The peak resident memory and the CPU time of the kernel are read by one extra cell at the end,
    which is removed again; the wall time includes the kernel's start. The peak is the kernel's own
    (Linux's VmHWM): ``ru_maxrss`` would also count the memory of the process that started the kernel,
    which Linux carries across ``exec``.
    """
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    probe = nbformat.v4.new_code_cell(
        "import resource as _r; _u = _r.getrusage(_r.RUSAGE_SELF); _peak = _u.ru_maxrss / 1024\n"
        "try:\n"
        "    _peak = next(int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
        "except OSError:\n"
        "    pass\n"
        f"print('{_PEAK_MARKER}', _peak, _u.ru_utime + _u.ru_stime)"
    )
    notebook.cells.append(probe)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute(**({"env": env} if env is not None else {}))
    seconds = time.perf_counter() - start
    notebook.cells.pop()
    _, peak, cpu = probe.outputs[0]["text"].split()
    return Executed(notebook, seconds, float(peak), float(cpu))


def math_to_mathml(markdown: str) -> str:
    """Replace ``$...$`` and ``$$...$$`` outside code spans by MathML, so no script is needed to read them."""
    from latex2mathml.converter import convert

    def one(match: re.Match) -> str:
        display = match.group(1) is not None
        mathml = convert(match.group(1) if display else match.group(2), display="block" if display else "inline")
        mathml = mathml.replace("|", "&#124;")  # a bar would split a markdown table's cell
        return f"\n\n{mathml}\n\n" if display else mathml

    parts, last = [], 0
    for code in _CODE_SPAN.finditer(markdown):  # code spans keep their dollars
        parts += [_MATH.sub(one, markdown[last : code.start()]), code.group(0)]
        last = code.end()
    return "".join(parts + [_MATH.sub(one, markdown[last:])])


def to_html(notebook: nbformat.NotebookNode) -> str:
    """One self-contained HTML page of an executed notebook (PNG figures embedded, MathML, widgets dropped)."""
    from nbconvert import HTMLExporter

    notebook = nbformat.from_dict(notebook)  # a copy
    notebook.metadata.pop("widgets", None)  # live widget state: megabytes of viewer assets, no use offline
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if "application/vnd.jupyter.widget-view+json" not in o.get("data", {})]
        else:
            cell.source = math_to_mathml(cell.source)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    return body


def figure_cells(notebook: nbformat.NotebookNode) -> list[int]:
    """Indices of the cells tagged as drawing a figure."""
    return [i for i, c in enumerate(notebook.cells) if FIGURE_TAG in c.get("metadata", {}).get("tags", [])]


def png_outputs(cell: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def main(prefixes: list[str]) -> int:
    sys.path.insert(0, str(REPO))
    from tests.smplx_standin import write

    paths = [p for p in sorted(NOTEBOOKS.glob("*.ipynb")) if not prefixes or p.name.startswith(tuple(prefixes))]
    DOCS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="human3r_smplx_standin_") as smplx_dir:
        write(Path(smplx_dir))
        env = tutorial_environment(smplx_dir)
        for path in paths:
            run = execute(path, env)
            html = to_html(run.notebook)
            out = DOCS / f"{path.stem}.html"
            out.write_text(html, encoding="utf-8")
            print(f"{path.name}: {run.seconds:5.1f} s ({run.cpu_seconds:5.1f} s CPU), peak {run.peak_rss_mib:6.0f} MiB, "
                  f"{len(PNG_IN_HTML.findall(html))} figures, {out.relative_to(REPO)} {out.stat().st_size / 2**20:.2f} MiB")
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
