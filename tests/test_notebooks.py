"""The tutorials: each runs headlessly, top to bottom, offline, within its time and memory budget, and
asserts the facts it teaches; every figure survives a static HTML export; the published exports in
docs/notebooks/ are current; the committed notebooks carry no outputs.

Each notebook is executed once per test session (``notebooks/export_html.py`` does the running and
the export, exactly as for the published pages) and the tests below read that one run.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# the budget: 90 s on a 2-core machine, checked as the kernel's CPU time (a busy machine stretches the wall
# time, not the CPU time: the notebooks run torch on one thread with tiny-random)
CPU_BUDGET_S = 90
MEMORY_LIMIT_MIB = 1536  # the kernel's peak resident memory
HTML_LIMIT_MIB = 3.0
MIN_FIGURES = 3  # static figures per published page
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def _load_exporter():
    spec = importlib.util.spec_from_file_location("notebooks_export_html", REPO / "notebooks" / "export_html.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


EXPORT = _load_exporter()
_RUNS: dict[Path, object] = {}


@pytest.fixture(scope="module")
def run(smplx_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """``run(path)``: the notebook executed once (cached), with its own empty TMPDIR to check for leftovers."""

    import matplotlib.font_manager  # noqa: F401  (a fresh install builds its font cache here, not on a notebook's stderr)

    def get(path: Path):
        if path not in _RUNS:
            tmp = tmp_path_factory.mktemp(f"tmp_{path.stem}")
            env = EXPORT.tutorial_environment(smplx_dir)  # offline viewer assets, the SMPL-X stand-in, tiny-random
            env.update(TMPDIR=str(tmp), TEMP=str(tmp), TMP=str(tmp))
            before = sorted(p.name for p in (REPO / "notebooks").iterdir())
            result = EXPORT.execute(path, env)  # raises CellExecutionError, with the failing cell, on any error or failed assert
            result.leftovers = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
            result.new_files = sorted(set(p.name for p in (REPO / "notebooks").iterdir()) - set(before))
            _RUNS[path] = result
        return _RUNS[path]

    return get


def _outputs(notebook: nbformat.NotebookNode) -> list:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def test_the_notebooks_are_the_eight_listed() -> None:
    assert [p.stem for p in NOTEBOOKS] == [
        "00_quickstart", "01_detection_tokens", "02_human_prompts", "03_state_rollout", "04_tracking",
        "05_outputs_and_geometry", "06_what_is_trained", "07_evaluation",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path, run) -> None:
    notebook = run(path).notebook
    outputs = _outputs(notebook)
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("UNTRAINED" in o.get("text", "") for o in outputs)  # the random-weights warning is shown
    # no red boxes: warnings and tracebacks would land on stderr
    assert not [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_stays_within_budget_and_leaves_nothing_behind(path: Path, run) -> None:
    result = run(path)
    print(f"{path.stem}: {result.seconds:.1f} s wall, {result.cpu_seconds:.1f} s CPU, peak {result.peak_rss_mib:.0f} MiB")
    assert result.peak_rss_mib < MEMORY_LIMIT_MIB
    assert result.cpu_seconds < CPU_BUDGET_S
    assert result.leftovers == [], f"temporary files left behind: {result.leftovers[:10]}"
    assert result.new_files == [], f"files written next to the notebooks: {result.new_files}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_survives_a_static_html_export(path: Path, run) -> None:
    notebook = run(path).notebook
    figures = EXPORT.figure_cells(notebook)
    assert figures, "every tutorial draws at least one figure"
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        pngs = EXPORT.png_outputs(cell)
        if i in figures:
            assert pngs >= 1, f"cell {i} is tagged as a figure but left no static image:\n{cell.source[:200]}"
        else:
            assert pngs == 0, f"cell {i} draws a figure but is not tagged '{EXPORT.FIGURE_TAG}':\n{cell.source[:200]}"
        kinds = {mime for o in cell.outputs for mime in o.get("data", {})}
        assert PLOTLY_MIME not in kinds, f"cell {i}: plotly output has no static image offline"
        if WIDGET_MIME in kinds:  # a live widget (viewer, slider) gets a static picture just before it
            previous = [j for j in range(i) if notebook.cells[j].cell_type == "code"][-1]
            assert previous in figures, f"cell {i} shows a live widget with no static figure before it"
    html = EXPORT.to_html(notebook)
    embedded = len(EXPORT.PNG_IN_HTML.findall(html))
    assert embedded == sum(EXPORT.png_outputs(notebook.cells[i]) for i in figures)
    assert embedded >= MIN_FIGURES, f"the page shows {embedded} static figures; each tutorial shows its idea in {MIN_FIGURES} or more"
    assert not re.search(r'<img [^>]*src="(?!data:)', html), "every image is embedded in the page"
    assert WIDGET_MIME not in html and "plotly" not in html.lower()
    assert len(html.encode()) < HTML_LIMIT_MIB * 2**20


def _headings(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>|¶", "", h).strip() for h in re.findall(r"<h[1-3][^>]*>(.*?)</h[1-3]>", html, re.S)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_published_html_export_is_current(path: Path, run) -> None:
    """docs/notebooks/<name>.html (linked from the README) matches the notebook: same sections, same figures.

    Regenerate with ``.venv/bin/python notebooks/export_html.py``.
    """
    published = REPO / "docs" / "notebooks" / f"{path.stem}.html"
    assert published.is_file(), f"{published.relative_to(REPO)} is missing: run notebooks/export_html.py"
    old = published.read_text(encoding="utf-8")
    new = EXPORT.to_html(run(path).notebook)
    assert _headings(old) == _headings(new), "the notebook changed: run notebooks/export_html.py"
    assert len(EXPORT.PNG_IN_HTML.findall(old)) == len(EXPORT.PNG_IN_HTML.findall(new))
    assert len(old.encode()) < HTML_LIMIT_MIB * 2**20


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_are_stripped(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert "widgets" not in notebook.metadata, f"{path.name}: widget state committed"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs not stripped"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_opens_with_the_papers_equations_and_ends_with_exercises(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    opening = notebook.cells[0].source
    assert "**What this notebook teaches.**" in opening and "**Runtime:**" in opening
    assert len(re.findall(r"\$[^$]+\$", opening)) >= 5, "the paper's equations, in LaTeX"
    assert "| symbol |" in opening and "human3r_demo/" in opening, "a table from each symbol to the code"
    assert "departs from the paper" in opening
    assert notebook.cells[-1].cell_type == "markdown" and "## Exercises" in notebook.cells[-1].source
    assert len(re.findall(r"^\d+\. ", notebook.cells[-1].source, re.M)) in (2, 3)


# The released freeze rule (fanegg/Human3R@e313921 src/dust3r/model.py, set_freeze with
# freeze='encoder_and_decoder_and_head'), written here on the official key prefixes, independently of the
# notebook, which counts the parameters of the models it builds.
_FREEZE_RULE = {  # part -> (trained?, official key prefixes)
    "CUT3R encoder": (False, ("patch_embed.", "enc_blocks.", "enc_norm.")),
    "CUT3R decoders, state, pose memory": (False, ("register_tokens.", "decoder_embed.", "decoder_embed_state.", "dec_blocks.",
                                                   "dec_blocks_state.", "dec_norm.", "dec_norm_state.", "pose_retriever.",
                                                   "pose_token")),
    "CUT3R heads (points, colour, camera)": (False, tuple(f"downstream_head.{m}." for m in (
        "dpt_self", "dpt_cross", "dpt_rgb", "final_transform", "pose_head"))),
    "Multi-HMR DINOv2 encoder": (False, ("backbone.encoder.",)),
    "Multi-HMR detection MLPs (score, offset)": (False, ("downstream_head.mlp_classif.", "downstream_head.mlp_offset.")),
    "prompt fusion (Head_projection)": (True, ("downstream_head.mlp_fuse.",)),
    "mask head": (True, ("downstream_head.mlp_msk.",)),
    "SMPL-X read-out MLPs": (True, tuple(f"downstream_head.{m}." for m in ("decpose", "decshape", "decexpression", "deccam"))),
}


def test_what_is_trained_counts_match_the_official_manifests(shared_dir: Path, run) -> None:
    """Notebook 6's parameter budget (models built on the meta device) equals the official checkpoints' key manifests."""
    import json
    import math

    from human3r_demo.checkpoints.official import UNUSED_AT_INFERENCE, is_alias

    notebook = run(REPO / "notebooks" / "06_what_is_trained.ipynb").notebook
    text = "".join(o.text for o in _outputs(notebook) if o.output_type == "stream")
    variants = re.search(r"^part +trained +(.+)$", text, re.M).group(1).split()
    assert variants == ["human3r_672S", "human3r_672B", "human3r_672L", "human3r_896L"]
    printed = {}
    for part, (trained, _) in _FREEZE_RULE.items():
        row = re.search(rf"^{re.escape(part)} +(yes|no) +([\d, ]+)$", text, re.M)
        assert row, f"notebook 6 prints no row for {part!r}"
        assert row.group(1) == ("yes" if trained else "no")
        printed[part] = [int(n.replace(",", "")) for n in row.group(2).split()]
    for k, variant in enumerate(variants):
        manifest = json.loads((shared_dir / "reference" / f"manifest_{variant.split('_')[1]}.json").read_text())
        expected, training_only = dict.fromkeys(_FREEZE_RULE, 0), 0
        for key, entry in manifest["keys"].items():
            if entry["kind"] != "parameter" or is_alias(key):
                continue
            if UNUSED_AT_INFERENCE.match(key):  # stored, read by training only, not built by the model
                training_only += math.prod(entry["shape"])
                continue
            parts = [part for part, (_, prefixes) in _FREEZE_RULE.items() if key.startswith(prefixes)]
            assert len(parts) == 1, (key, parts)
            expected[parts[0]] += math.prod(entry["shape"])
        assert sum(expected.values()) + training_only == manifest["total_params_unique"]
        assert {part: counts[k] for part, counts in printed.items()} == expected, variant
