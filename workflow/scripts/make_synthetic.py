"""Generate the embedded synthetic dataset (vocflow.data.synthetic.make_synthetic)."""

from vocflow.data.synthetic import make_synthetic
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
spec = snakemake.params.spec
make_synthetic(root=snakemake.params.root, class_names=snakemake.params.class_names,
               n_train=spec["n_train"], n_test=spec["n_test"], seed=snakemake.params.seed,
               min_side=spec["min_side"], max_side=spec["max_side"],
               max_objects=spec["max_objects"])
