# Refit (predict.refit): the selected cell's recipe trained once more on every training image,
# for the epoch count its folds chose, one job per seed; test prediction then uses it.
#   select -> refit x predict.refit_seeds -> predict
# A training job: one GPU job per seed, like the grid's cells.

if REFIT_SEEDS:

    rule refit:
        input:
            cache=cache("train"),
            selection="results/{task}/selected.yaml",
            metrics=selected_files("metrics.csv"),
            # The weights of every model of the task's grid (fetched for its training already):
            # which one the selected cell needs is only known once select has run.
            weights=lambda w: sorted(
                {f for m in config[w.task]["models"] for f in WEIGHT_MARKERS[m]}
            ),
        output:
            checkpoint="results/{task}/refit/seed{seed}/best.pt",
            metrics="results/{task}/refit/seed{seed}/metrics.csv",
        log:
            "results/logs/refit/{task}/seed{seed}.log",
        benchmark:
            "results/benchmarks/refit/{task}/seed{seed}.tsv"
        conda:
            ENV
        threads: config["resources"]["train_threads"]
        resources:
            **gpu_resources("train"),
        params:
            # Every cell's settings; the script takes the selected cell's.
            settings=lambda w: {
                f"{m}/{l}": cell_settings(config, w.task, m, l) for m, l in cells(w.task)
            },
            # Resume state (vocflow.resume), as for the grid's cells.
            state_dir="results/state/{task}/refit/seed{seed}",
            state_root="results/state",
        script:
            "../scripts/refit.py"
