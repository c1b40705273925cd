# Data: [make_synthetic] -> ingest (validated cache per split) -> folds.
# CPU work of seconds (synthetic, folds) to minutes (decoding a real dataset's photos): the
# "data" group, one SLURM job with the random baseline (train.smk) before training starts.
from pathlib import Path

from vocflow.data.sources import split_sources

if DATA["format"] == "synthetic":

    rule make_synthetic:
        output:
            train=f"{ROOT}/train/train_set.csv",
            test=f"{ROOT}/test/test_set.csv",
            test_labels=f"{ROOT}/test_labels/test_set.csv",
        log:
            "results/logs/make_synthetic.log",
        group:
            "data"
        conda:
            ENV
        resources:
            **cpu_resources(),
        params:
            root=lambda w, output: Path(output.train).parents[1],
            spec=config["synthetic"],
            class_names=DATA.get("class_names"),
            seed=config["seed"],
        script:
            "../scripts/make_synthetic.py"


rule ingest:
    input:
        ingest_inputs,
    output:
        cache("{split}"),
    log:
        "results/logs/ingest_{split}.log",
    benchmark:
        "results/benchmarks/ingest_{split}.tsv"
    group:
        "data"
    conda:
        ENV
    resources:
        **cpu_resources(),
    params:
        data=DATA,
        # Size and mtime of every raw file the split is read from: a changed file changes this
        # parameter, and Snakemake re-runs ingest (vocflow.data.sources).
        sources=lambda w: split_sources(
            DATA["format"], ROOT, w.split, DATA.get("test_labels"), DATA.get("voc_lists")
        ),
    script:
        "../scripts/ingest.py"


rule folds:
    input:
        cache("train"),
    output:
        "results/data/folds.csv",
    log:
        "results/logs/folds.log",
    group:
        "data"
    conda:
        ENV
    resources:
        **cpu_resources(),
    params:
        folds=config["folds"],
        seed=config["seed"],
    script:
        "../scripts/folds.py"
