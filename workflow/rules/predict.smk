# Test prediction with the selected cells (vocflow.predict, vocflow.postprocess):
#   predict (ensemble + TTA probabilities per task) -> post_test_shard x post.shards
#   (thresholds, CRF, reconciliation) -> gather_test (test_predictions.npz per task)
# predict runs networks over the whole test set at original size: a GPU job, grouped with the
# OOF TTA ("infer": one SLURM job for all of them). The shards and the gather are CPU work of
# seconds to minutes: in the "post" group (one SLURM job with the CRF search and the ablation).


rule predict:
    input:
        cache=cache("test"),
        selection="results/{task}/selected.yaml",
        checkpoints=selected_files("best.pt"),
        refit=refit_checkpoints(),
    output:
        probs="results/{task}/test_probs.npz",
        # The models and TTA of this prediction, for `vocflow predict` on new images.
        predictor="results/{task}/predictor.yaml",
    log:
        "results/logs/predict_{task}.log",
    benchmark:
        "results/benchmarks/predict_{task}.tsv"
    group:
        "infer"
    conda:
        ENV
    threads: config["resources"]["infer_threads"]
    resources:
        **gpu_resources("infer"),
    params:
        tta=config["predict"]["tta"],
        batch_size=config["predict"]["batch_size"],
        per_fold=test_labelled(),
        with_folds=REFIT_MODE != "alone",
        reconcile=POST["reconcile"],
    script:
        "../scripts/predict.py"


rule post_test_shard:
    input:
        **per_task(probs="test_probs.npz", thresholds="thresholds.yaml"),
        cache=cache("test"),
        crf="results/segmentation/crf.yaml",
    output:
        "results/post/test_shard{shard}.npz",
    log:
        "results/logs/post_test/shard{shard}.log",
    benchmark:
        "results/benchmarks/post_test/shard{shard}.tsv"
    group:
        "post"
    conda:
        ENV
    resources:
        **cpu_resources(),
    params:
        reconcile=POST["reconcile"],
        shards=len(SHARDS),
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
    log:
        "results/logs/gather_test.log",
    group:
        "post"
    conda:
        ENV
    resources:
        **cpu_resources(),
    script:
        "../scripts/gather_test.py"
