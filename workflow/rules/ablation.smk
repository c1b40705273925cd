# The ablation on OOF predictions (vocflow.ablation): raw -> +thresholds -> +CRF -> +TTA, and
# +ensemble from the labelled test split; the final pipeline's OOF predictions as a submission.
#   oof_tta (per task) -> ablation_shard x post.shards -> ablation
# oof_tta runs networks over every training image: a GPU job in the "infer" group; the shards
# (thresholds, CRF) and the table are CPU work in the "post" group (predict.smk says why).


rule oof_tta:
    input:
        cache=cache("train"),
        selection="results/{task}/selected.yaml",
        checkpoints=selected_files("best.pt"),
        oof=selected_files("oof.npz"),
    output:
        "results/{task}/oof_tta.npz",
    log:
        "results/logs/oof_tta_{task}.log",
    benchmark:
        "results/benchmarks/oof_tta_{task}.tsv"
    group:
        "infer"
    conda:
        ENV
    threads: config["resources"]["infer_threads"]
    resources:
        **gpu_resources("infer"),
    params:
        batch_size=config["predict"]["batch_size"],
    script:
        "../scripts/oof_tta.py"


rule ablation_shard:
    input:
        **per_task(selection="selected.yaml", tta="oof_tta.npz", thresholds="thresholds.yaml"),
        cache=cache("train"),
        oof=selected_files("oof.npz", *TASKS),
        crf="results/segmentation/crf.yaml",
    output:
        "results/ablation/shard{shard}.npz",
    log:
        "results/logs/ablation/shard{shard}.log",
    benchmark:
        "results/benchmarks/ablation/shard{shard}.tsv"
    group:
        "post"
    conda:
        ENV
    resources:
        **cpu_resources(),
    params:
        reconcile=POST["reconcile"],
        tta=config["predict"]["tta"],
        shards=len(SHARDS),
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
    log:
        "results/logs/ablation.log",
    group:
        "post"
    conda:
        ENV
    resources:
        **cpu_resources(),
    params:
        tta=config["predict"]["tta"],
        refit=REFIT_MODE,
    script:
        "../scripts/ablation.py"
