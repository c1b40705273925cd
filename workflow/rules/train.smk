# Training: one rule per task over the model × loss × fold grid, plus the random baseline.
from vocflow.config import cell_settings


for _task in TASKS:

    rule:
        name:
            f"train_{_task}"
        input:
            cache=cache("train"),
            folds="results/data/folds.csv",
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
        threads: config["resources"]["train_threads"]
        resources:
            mem_mb=config["resources"]["train_mem_mb"],
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
