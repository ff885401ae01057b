"""examples/quickstart.ipynb runs top to bottom in a real Jupyter kernel (nbclient), with a small budget, and shows
what it promises: a widget progress bar while training, pictures of faces and plots, a model folder."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
# A few seconds of training on 1,000 faces: the whole notebook then runs in about a minute on 2 busy cores.
BUDGET = {"FACEGAN_NOTEBOOK_MINUTES": "0.15", "FACEGAN_NOTEBOOK_FACES": "1000"}


def test_the_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    text = "\n".join(cell.source for cell in notebook.cells)
    for promise in ("FACEGAN_NOTEBOOK_MINUTES", "interrupt", "jupyter lab examples/quickstart.ipynb", "Colab"):
        assert promise in text, promise


def _mime_types(cell: nbformat.NotebookNode) -> set[str]:
    return {mime for output in cell.get("outputs", []) for mime in output.get("data", {})}


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel imports this checkout's facegan (whatever is installed), with the small budget, on one thread.
    env = {**os.environ, **BUDGET, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    client = NotebookClient(notebook, timeout=600, startup_timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)  # a cell that raises fails the test with its traceback
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    stderr = [o.text for cell in code for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not any("Warning" in text or "Traceback" in text for text in stderr), stderr
    shown = [_mime_types(cell) for cell in code]
    training = next(i for i, cell in enumerate(code) if "facegan.train(" in cell.source)
    assert "application/vnd.jupyter.widget-view+json" in shown[training]  # tqdm's notebook bar
    assert "text/html" in shown[training]  # the FaceGAN: its faces with its description
    pictures = sum("image/png" in mimes for mimes in shown)
    assert pictures >= 6  # the real faces, 64 fakes, two plots, an interpolation, the reloaded model's faces
    model = next(tmp_path.glob("quickstart/quickstart-*"))
    assert {p.name for p in model.iterdir()} == {"model.safetensors", "config.json", "README.md", "samples.png"}
    assert "## Evaluation" in (model / "README.md").read_text() and "swd_1k" in (model / "README.md").read_text()
