"""Offline quality metrics: one module per metric, `runner` ties them together (see docs/metrics.md).

- `swd`: multi-scale sliced Wasserstein distance of Karras et al. 2018 (Laplacian-pyramid patches);
- `facedetect`: OpenCV Haar-cascade face-detection rate of fakes vs reals;
- `facefd`: Fréchet distance / KID of dlib's 128-d face descriptors (optional extra `facegan[faces]`);
- `inception` + `fid`: FID / KID with pytorch-fid's Inception-v3, given the user's weights file;
- `frechet`: the Fréchet-distance and KID formulas shared by `facefd` and `fid`;
- `memorisation`: nearest training image of every fake, and how suspiciously close it is;
- `runner`: `evaluate(run, n, metrics)` → RUN/eval/<step>.json, and `compare_sets(real_dir, fake_dir)`;
- `during_training`: the `--eval-every` hook that keeps RUN/checkpoints/best.pt by SWD.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ALL_METRICS", "compare_sets", "evaluate", "load_evals"]


def __getattr__(name: str) -> Any:
    # The runner pulls in torch and the models; importing one metric module should not.
    if name in __all__:
        from facegan.metrics import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'facegan.metrics' has no attribute {name!r}")
