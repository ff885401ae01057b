"""Offline quality metrics: one module per metric, each declaring its `METRIC` (see docs/metrics.md).

- `metric`: what a metric declares (`Metric`) and is given (`ScoreContext`);
- `registry`: `METRICS`, the metrics `facegan eval`, `--eval-every`, compare, the report and the page know;
- `swd`: multi-scale sliced Wasserstein distance of Karras et al. 2018 (Laplacian-pyramid patches);
- `facedetect`: OpenCV Haar-cascade face-detection rate of fakes vs reals;
- `facefd`: Fréchet distance / KID of dlib's 128-d face descriptors (optional extra `facegan[faces]`);
- `inception` + `fid`: FID / KID with pytorch-fid's Inception-v3, given the user's weights file;
- `frechet`: the Fréchet-distance and KID formulas shared by `facefd` and `fid`;
- `memorisation`: nearest training image of every fake, and how suspiciously close it is;
- `imagesets`: image folders and prepared datasets as uint8 arrays of one shape;
- `evaluation`: `evaluate(run, n, metrics)` → RUN/eval/<step>.json, and `compare_sets(real_dir, fake_dir)`;
- `during_training`: the `--eval-every` hook that keeps RUN/checkpoints/best.pt by SWD.
"""
