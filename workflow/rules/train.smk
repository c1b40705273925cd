# Training: one rule per task over the model × loss × fold grid, plus the random baseline.
from vocflow.config import cell_settings


for _task in TASKS:

    rule:
        name:
            f"train_{_task}"
        input:
            cache=cache("train"),
            folds="results/data/folds.csv",
            weights=lambda w: WEIGHT_MARKERS[w.model],
        output:
            checkpoint=f"results/{_task}/{{model}}/{{loss}}/fold{{fold}}/best.pt",
            metrics=f"results/{_task}/{{model}}/{{loss}}/fold{{fold}}/metrics.csv",
            oof=f"results/{_task}/{{model}}/{{loss}}/fold{{fold}}/oof.npz",
        conda:
            ENV
        log:
            f"results/logs/train/{_task}/{{model}}/{{loss}}/fold{{fold}}.log",
        benchmark:
            f"results/benchmarks/train/{_task}/{{model}}/{{loss}}/fold{{fold}}.tsv"
        wildcard_constraints:
            model=alternation(config[_task]["models"]),
            loss=alternation(config[_task]["losses"]),
        params:
            settings=lambda w, task=_task: cell_settings(config, task, w.model, w.loss),
            # Resume state (vocflow.resume): not an output, so Snakemake keeps it when a killed
            # or requeued job restarts; train_cell deletes it once the outputs are written.
            state_dir=f"results/state/{_task}/{{model}}/{{loss}}/fold{{fold}}",
            state_root="results/state",
        threads: config["resources"]["train_threads"]
        # One GPU per cell (CPU fallback where CUDA is absent). Time and memory grow with the
        # attempt, so a retry after TIMEOUT/OUT_OF_MEMORY gets more (the profile's `retries`);
        # site names (partition, GPU model, account) are overridden in profiles/slurm/.
        resources:
            gpu=1,
            cpus_per_gpu=config["resources"]["train_threads"],
            mem_mb=lambda w, attempt: config["resources"]["train_mem_mb"] * attempt,
            runtime=lambda w, attempt: config["resources"]["train_runtime"] * attempt,
            slurm_partition="gpu",
        script:
            "../scripts/train.py"


rule baseline:
    input:
        cache=cache("train"),
        folds="results/data/folds.csv",
    output:
        metrics=f"results/{{task}}/{BASELINE_MODEL}/{BASELINE_LOSS}/fold{{fold}}/metrics.csv",
        oof=f"results/{{task}}/{BASELINE_MODEL}/{BASELINE_LOSS}/fold{{fold}}/oof.npz",
    conda:
        ENV
    log:
        f"results/logs/train/{{task}}/{BASELINE_MODEL}/fold{{fold}}.log",
    params:
        seed=config["seed"],
    script:
        "../scripts/baseline.py"


# Pretrained weights, fetched into the torch hub cache ($TORCH_HOME) by the login node (local
# rules: compute nodes often have no internet). One marker per weights file, so adding a model
# re-runs no other cell; `snakemake fetch_weights` fetches what the whole grid needs.
from vocflow.models.weights import cell_weights, grid_weights

WEIGHTS = grid_weights(config)
# Grid model name -> the marker of the weights it needs ([] from scratch); a training rule takes
# `weights=lambda w: WEIGHT_MARKERS[w.model]` as input so its cell waits for the fetch.
WEIGHT_MARKERS = {
    m: [f"results/weights/{key}.yaml" for key in cell_weights(config, m)]
    for t in TASKS
    for m in config[t]["models"]
}


localrules:
    fetch_weights,
    fetch_weight,


rule fetch_weights:
    input:
        [f"results/weights/{key}.yaml" for key in WEIGHTS],


rule fetch_weight:
    output:
        "results/weights/{key}.yaml",
    conda:
        ENV
    log:
        "results/logs/weights/{key}.log",
    wildcard_constraints:
        key=alternation(WEIGHTS) if WEIGHTS else "(?!)",
    script:
        "../scripts/fetch_weights.py"
