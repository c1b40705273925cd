"""Validate one split and pack it into the cache (vocflow.data.ingest.ingest)."""

from pathlib import Path

from vocflow.data.ingest import ingest
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
data = snakemake.params.data
ingest(fmt=data["format"], root=data["root"], split=snakemake.wildcards.split,
       out_dir=Path(snakemake.output[0]).parent, image_size=data["image_size"],
       class_names=data.get("class_names"), labels_root=data.get("test_labels"),
       voc_lists=data.get("voc_lists"), strict_labels=data["strict_labels"],
       min_side=data["min_side"], max_aspect=data["max_aspect"])
