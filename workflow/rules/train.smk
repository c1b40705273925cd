# Training: pretrained weights (fetched on the login node), one rule per task over the
# model × loss × fold grid, and the random baseline.
from vocflow.grid import cell_settings, cell_weights, grid_weights

# Weights come into the torch hub cache ($TORCH_HOME) from the login node: compute nodes often
# have no internet, hence local rules. One marker per weights file, so adding a model re-runs
# no other cell; `snakemake fetch_weights` fetches what the whole grid needs.
WEIGHTS = grid_weights(config)
# Grid model name -> the markers of the weights it needs ([] from scratch): a training cell
# waits for its fetch (its script reads the weights file itself, from the cache).
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
    log:
        "results/logs/weights/{key}.log",
    wildcard_constraints:
        key=alternation(WEIGHTS) if WEIGHTS else "(?!)",
    conda:
        ENV
    script:
        "../scripts/fetch_weights.py"


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
        log:
            f"results/logs/train/{_task}/{{model}}/{{loss}}/fold{{fold}}.log",
        benchmark:
            f"results/benchmarks/train/{_task}/{{model}}/{{loss}}/fold{{fold}}.tsv"
        wildcard_constraints:
            model=alternation(config[_task]["models"]),
            loss=alternation(config[_task]["losses"]),
        conda:
            ENV
        threads: config["resources"]["train_threads"]
        resources:
            **gpu_resources("train"),
        params:
            settings=lambda w, task=_task: cell_settings(config, task, w.model, w.loss),
            # Resume state (vocflow.resume): not an output, so Snakemake keeps it when a killed
            # or requeued job restarts; train_cell deletes it once the outputs are written.
            state_dir=f"results/state/{_task}/{{model}}/{{loss}}/fold{{fold}}",
            state_root="results/state",
        script:
            "../scripts/train.py"


rule baseline:
    input:
        cache=cache("train"),
        folds="results/data/folds.csv",
    output:
        metrics=f"results/{{task}}/{BASELINE_MODEL}/{BASELINE_LOSS}/fold{{fold}}/metrics.csv",
        oof=f"results/{{task}}/{BASELINE_MODEL}/{BASELINE_LOSS}/fold{{fold}}/oof.npz",
    log:
        f"results/logs/train/{{task}}/{BASELINE_MODEL}/fold{{fold}}.log",
    group:
        "data"  # seconds of CPU: with the data preparation, not one queued job per fold
    conda:
        ENV
    resources:
        **cpu_resources(),
    params:
        seed=config["seed"],
    script:
        "../scripts/baseline.py"
