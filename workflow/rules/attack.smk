# Attacks: each task's selected model (its fold-0 checkpoint) × every method of attacks.methods
# -> a table and an example panel per job; then one summary table and a success-vs-ε plot.
# An empty (or absent) attacks.methods adds no rule and no target.
from vocflow.attacks.registry import attack_settings, check_attacks

ATTACK_METHODS = check_attacks(config)

if ATTACK_METHODS:

    rule attack:
        input:
            train=cache("train"),
            test=cache("test"),
            folds="results/data/folds.csv",
            selection="results/{task}/selected.yaml",
            checkpoints=lambda w: cell_files(w.task, "best.pt"),
            # The post-processing's tuned DenseCRF setting, for CRF-aware segmentation scores.
            crf=lambda w: (["results/segmentation/crf.yaml"]
                           if w.task == "segmentation" and config["attacks"].get("crf") else []),
        output:
            table="results/attacks/{task}/{method}.csv",
            panel="results/attacks/panels/{task}_{method}.png",
        conda:
            ENV
        log:
            "results/logs/attacks/{task}/{method}.log",
        benchmark:
            "results/benchmarks/attacks/{task}/{method}.tsv"
        wildcard_constraints:
            method=alternation(ATTACK_METHODS),
        params:
            settings=lambda w: attack_settings(config, w.task, w.method),
        threads: config["resources"]["train_threads"]
        # Like a training cell: one GPU (CPU fallback), more time and memory on a retry.
        resources:
            gpu=1,
            cpus_per_gpu=config["resources"]["train_threads"],
            mem_mb=lambda w, attempt: config["resources"]["train_mem_mb"] * attempt,
            runtime=lambda w, attempt: config["resources"]["train_runtime"] * attempt,
            slurm_partition="gpu",
        script:
            "../scripts/attack.py"

    rule attack_summary:
        input:
            expand("results/attacks/{task}/{method}.csv", task=TASKS, method=ATTACK_METHODS),
        output:
            table="results/attacks/summary.csv",
            plot="results/attacks/success_vs_eps.png",
        conda:
            ENV
        log:
            "results/logs/attacks/summary.log",
        script:
            "../scripts/attack_summary.py"

    EXTRA_TARGETS += ["results/attacks/summary.csv", "results/attacks/success_vs_eps.png"]
    EXTRA_TARGETS += expand("results/attacks/panels/{task}_{method}.png", task=TASKS,
                            method=ATTACK_METHODS)
