# Tuning on the selected cells' out-of-fold (OOF) predictions (vocflow.thresholds,
# vocflow.crf_search): per-class thresholds per task, then the DenseCRF search over
# post.shards jobs and the keep/drop decision, and before/after panels for the report.
# All CPU work of seconds to minutes on the selected cells' OOF files: the "post" group, one
# SLURM job with the test shards and the ablation (predict.smk), instead of one queued job each.


rule thresholds:
    input:
        cache=cache("train"),
        selection="results/{task}/selected.yaml",
        oof=selected_files("oof.npz"),
    output:
        thresholds="results/{task}/thresholds.yaml",
        curves="results/{task}/threshold_curves.csv",
    log:
        "results/logs/thresholds_{task}.log",
    benchmark:
        "results/benchmarks/thresholds_{task}.tsv"
    group:
        "post"
    conda:
        ENV
    resources:
        **cpu_resources(),
    params:
        grid=lambda w: POST["thresholds"][w.task],
        objective=POST["thresholds"].get("objective", "dice"),
    script:
        "../scripts/thresholds.py"


rule crf_search_shard:
    input:
        cache=cache("train"),
        selection="results/segmentation/selected.yaml",
        oof=selected_files("oof.npz", "segmentation"),
        thresholds="results/segmentation/thresholds.yaml",
    output:
        "results/segmentation/crf_search/shard{shard}.csv",
    log:
        "results/logs/crf_search/shard{shard}.log",
    benchmark:
        "results/benchmarks/crf_search/shard{shard}.tsv"
    group:
        "post"
    conda:
        ENV
    resources:
        **cpu_resources(),
    params:
        search=CRF["search"],
        sample=CRF["sample"],
        seed=config["seed"],
        shards=len(SHARDS),
    script:
        "../scripts/crf_search.py"


rule crf_tune:
    input:
        expand("results/segmentation/crf_search/shard{shard}.csv", shard=SHARDS)
        if CRF["enabled"]
        else [],
    output:
        "results/segmentation/crf.yaml",
    log:
        "results/logs/crf_tune.log",
    group:
        "post"
    conda:
        ENV
    resources:
        **cpu_resources(),
    params:
        search=CRF["search"],
        min_gain=CRF["min_gain"],
    script:
        "../scripts/crf_tune.py"


rule crf_panels:
    input:
        cache=cache("train"),
        selection="results/segmentation/selected.yaml",
        oof=selected_files("oof.npz", "segmentation"),
        thresholds="results/segmentation/thresholds.yaml",
        crf="results/segmentation/crf.yaml",
    output:
        directory("results/segmentation/crf_panels"),
    log:
        "results/logs/crf_panels.log",
    group:
        "post"
    conda:
        ENV
    resources:
        **cpu_resources(),
    params:
        n=CRF.get("panels", 3),
        seed=config["seed"],
    script:
        "../scripts/crf_panels.py"
