# Post-processing of the selected cells (logic in vocflow.thresholds, .crf, .predict, .ablation):
#   thresholds (OOF) -> crf_search_shard x N -> crf_tune
#   predict (test probabilities) -> post_test_shard x N -> gather_test (test_predictions.npz)
#   oof_tta -> ablation_shard x N -> ablation (results/ablation.csv + OOF submission)
POST = config["post"]
SHARDS = list(range(POST["shards"]))
CRF = POST["crf"]
# Rules that read the selected cell's OOF or checkpoints list every cell's: which cell wins is
# only known once selected.yaml exists. Per-task inputs are named "{task}_{kind}".


rule thresholds:
    input:
        cache=cache("train"),
        selection="results/{task}/selected.yaml",
        oof=lambda w: cell_files(w.task, "oof.npz"),
    output:
        thresholds="results/{task}/thresholds.yaml",
        curves="results/{task}/threshold_curves.csv",
    conda:
        ENV
    log:
        "results/logs/thresholds_{task}.log",
    params:
        grid=lambda w: POST["thresholds"][w.task],
        objective=POST["thresholds"].get("objective", "dice"),
    benchmark:
        "results/benchmarks/thresholds_{task}.tsv"
    script:
        "../scripts/thresholds.py"


rule crf_search_shard:
    input:
        cache=cache("train"),
        selection="results/segmentation/selected.yaml",
        oof=cell_files("segmentation", "oof.npz"),
        thresholds="results/segmentation/thresholds.yaml",
    output:
        "results/segmentation/crf_search/shard{shard}.csv",
    conda:
        ENV
    log:
        "results/logs/crf_search/shard{shard}.log",
    wildcard_constraints:
        shard=r"\d+",
    params:
        search=CRF["search"],
        sample=CRF["sample"],
        seed=config["seed"],
        shards=len(SHARDS),
    benchmark:
        "results/benchmarks/crf_search/shard{shard}.tsv"
    script:
        "../scripts/crf_search.py"


rule crf_tune:
    input:
        expand("results/segmentation/crf_search/shard{shard}.csv", shard=SHARDS)
        if CRF["enabled"]
        else [],
    output:
        "results/segmentation/crf.yaml",
    conda:
        ENV
    log:
        "results/logs/crf_tune.log",
    params:
        search=CRF["search"],
        min_gain=CRF["min_gain"],
    script:
        "../scripts/crf_tune.py"


rule crf_panels:
    input:
        cache=cache("train"),
        selection="results/segmentation/selected.yaml",
        oof=cell_files("segmentation", "oof.npz"),
        thresholds="results/segmentation/thresholds.yaml",
        crf="results/segmentation/crf.yaml",
    output:
        directory("results/segmentation/crf_panels"),
    conda:
        ENV
    log:
        "results/logs/crf_panels.log",
    params:
        n=CRF.get("panels", 3),
        seed=config["seed"],
    script:
        "../scripts/crf_panels.py"


rule predict:
    input:
        cache=cache("test"),
        selection="results/{task}/selected.yaml",
        checkpoints=lambda w: cell_files(w.task, "best.pt"),
    output:
        "results/{task}/test_probs.npz",
    conda:
        ENV
    log:
        "results/logs/predict_{task}.log",
    params:
        tta=config["predict"]["tta"],
        batch_size=config["predict"]["batch_size"],
        per_fold=test_labelled(),
    threads: config["resources"]["train_threads"]
    benchmark:
        "results/benchmarks/predict_{task}.tsv"
    script:
        "../scripts/predict.py"


rule post_test_shard:
    input:
        unpack(lambda w: {f"{t}_{k}": f"results/{t}/{name}" for t in TASKS
                          for k, name in (("probs", "test_probs.npz"),
                                          ("thresholds", "thresholds.yaml"))}),
        cache=cache("test"),
        crf="results/segmentation/crf.yaml",
    output:
        "results/post/test_shard{shard}.npz",
    conda:
        ENV
    log:
        "results/logs/post_test/shard{shard}.log",
    wildcard_constraints:
        shard=r"\d+",
    params:
        reconcile=POST["reconcile"],
        shards=len(SHARDS),
    benchmark:
        "results/benchmarks/post_test/shard{shard}.tsv"
    script:
        "../scripts/post_test_shard.py"


rule gather_test:
    input:
        shards=expand("results/post/test_shard{shard}.npz", shard=SHARDS),
        cache=cache("test"),
        classification="results/classification/test_probs.npz",
    output:
        classification="results/classification/test_predictions.npz",
        segmentation="results/segmentation/test_predictions.npz",
        summary="results/test_ensemble.yaml",
    conda:
        ENV
    log:
        "results/logs/gather_test.log",
    script:
        "../scripts/gather_test.py"


rule oof_tta:
    input:
        cache=cache("train"),
        selection="results/{task}/selected.yaml",
        checkpoints=lambda w: cell_files(w.task, "best.pt"),
        oof=lambda w: cell_files(w.task, "oof.npz"),
    output:
        "results/{task}/oof_tta.npz",
    conda:
        ENV
    log:
        "results/logs/oof_tta_{task}.log",
    params:
        batch_size=config["predict"]["batch_size"],
    threads: config["resources"]["train_threads"]
    benchmark:
        "results/benchmarks/oof_tta_{task}.tsv"
    script:
        "../scripts/oof_tta.py"


rule ablation_shard:
    input:
        unpack(lambda w: {f"{t}_{k}": f"results/{t}/{name}" for t in TASKS
                          for k, name in (("selection", "selected.yaml"),
                                          ("tta", "oof_tta.npz"),
                                          ("thresholds", "thresholds.yaml"))}),
        cache=cache("train"),
        oof=[f for task in TASKS for f in cell_files(task, "oof.npz")],
        crf="results/segmentation/crf.yaml",
    output:
        "results/ablation/shard{shard}.npz",
    conda:
        ENV
    log:
        "results/logs/ablation/shard{shard}.log",
    wildcard_constraints:
        shard=r"\d+",
    params:
        reconcile=POST["reconcile"],
        tta=config["predict"]["tta"],
        shards=len(SHARDS),
    benchmark:
        "results/benchmarks/ablation/shard{shard}.tsv"
    script:
        "../scripts/ablation_shard.py"


rule ablation:
    input:
        shards=expand("results/ablation/shard{shard}.npz", shard=SHARDS),
        cache=cache("train"),
        crf="results/segmentation/crf.yaml",
        test="results/test_ensemble.yaml",
    output:
        table="results/ablation.csv",
        oof_submission="results/oof_submission.csv",
    conda:
        ENV
    log:
        "results/logs/ablation.log",
    params:
        tta=config["predict"]["tta"],
    script:
        "../scripts/ablation.py"


EXTRA_TARGETS += [
    "results/ablation.csv",
    "results/segmentation/crf.yaml",
    *[f"results/{task}/{name}" for task in TASKS
      for name in ("thresholds.yaml", "threshold_curves.csv")],
]
