# Attacks: each task's selected model (its fold-0 checkpoint) × every method of attacks.methods
# -> a table and an example panel per job; then one summary table and a success-vs-ε plot.
# An empty (or absent) attacks.methods adds no rule and no target.
# The attacks run networks (and train generators) on the GPU: one SLURM job for all of them (the
# "attack" group, after the post-processing because CRF-aware scores read crf.yaml); the summary
# reads small csv files: a local rule.
from vocflow.attack_config import attack_settings

if ATTACK_METHODS:

    rule attack:
        input:
            train=cache("train"),
            test=cache("test"),
            folds="results/data/folds.csv",
            selection="results/{task}/selected.yaml",
            checkpoints=selected_files("best.pt")[:1],
            # The post-processing's tuned DenseCRF setting, for CRF-aware segmentation scores.
            crf=lambda w: (
                ["results/segmentation/crf.yaml"]
                if w.task == "segmentation" and config["attacks"].get("crf")
                else []
            ),
        output:
            table="results/attacks/{task}/{method}.csv",
            panel="results/attacks/panels/{task}_{method}.png",
        log:
            "results/logs/attacks/{task}/{method}.log",
        benchmark:
            "results/benchmarks/attacks/{task}/{method}.tsv"
        wildcard_constraints:
            method=alternation(ATTACK_METHODS),
        group:
            "attack"
        conda:
            ENV
        threads: config["resources"]["infer_threads"]
        resources:
            **gpu_resources("infer"),
        params:
            settings=lambda w: attack_settings(config, w.task, w.method),
        script:
            "../scripts/attack.py"

    rule attack_summary:
        input:
            expand("results/attacks/{task}/{method}.csv", task=TASKS, method=ATTACK_METHODS),
        output:
            table="results/attacks/summary.csv",
            plot="results/attacks/success_vs_eps.png",
        log:
            "results/logs/attacks/summary.log",
        localrule: True
        conda:
            ENV
        script:
            "../scripts/attack_summary.py"
