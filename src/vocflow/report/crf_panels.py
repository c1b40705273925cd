"""Before/after PNGs of the searched DenseCRF setting on out-of-fold images, for the report.

Uses the best searched parameters even when CRF was not kept, so the report shows why.
"""

from __future__ import annotations

import logging
from pathlib import Path

from vocflow import metrics
from vocflow.artifacts import Selection, class_names_for
from vocflow.atomic import atomic_path
from vocflow.crf import read_crf
from vocflow.data.cache import load_cache
from vocflow.postprocess import sample_positions, segment
from vocflow.report.figures import plt
from vocflow.report.panels import crf_panel
from vocflow.thresholds import read_thresholds

log = logging.getLogger(__name__)


def write_crf_panels(selection_yaml: str | Path, train_cache_dir: str | Path,
                     thresholds_yaml: str | Path, crf_yaml: str | Path, n: int, seed: int,
                     out_dir: str | Path, dpi: int = 80) -> None:
    """``crf_{id}.png`` for ``n`` seeded OOF images of the selected segmentation cell."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _, params = read_crf(crf_yaml)
    if params is None:
        log.info("no CRF parameters in %s: no panels", crf_yaml)
        return
    oof = Selection.read(selection_yaml).load_oof()
    cache = load_cache(train_cache_dir)
    thresholds = read_thresholds(thresholds_yaml, class_names_for("segmentation",
                                                                   cache.class_names))
    c = len(cache.class_names)
    for pos in sample_positions(len(oof["index"]), n, seed):
        i = int(oof["index"][pos])
        image, truth = cache.original_image(i), cache.original_mask(i)
        before, after = (segment(image, oof["probs"][pos], oof["scale"], thresholds, p)
                         for p in (None, params))
        scores = (metrics.kaggle_segmentation_dice(before, truth, c),
                  metrics.kaggle_segmentation_dice(after, truth, c))
        fig = crf_panel(image, truth, before, after, scores, f"OOF image {cache.ids[i]}",
                        cache.class_names)
        with atomic_path(out / f"crf_{cache.ids[i]}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
        plt.close(fig)
    log.info("CRF panels of %d OOF images written to %s", min(n, len(oof["index"])), out)
