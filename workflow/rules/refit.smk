# Refit (predict.refit): the selected cell's recipe trained once more on every training image,
# for the epoch count its folds chose, one job per seed; test prediction then uses it.
#   select -> refit x predict.refit_seeds -> predict

if REFIT_SEEDS:

    rule refit:
        input:
            cache=cache("train"),
            selection="results/{task}/selected.yaml",
            metrics=selected_metrics,
            weights=lambda w: WEIGHT_MARKERS[selected(w.task).model],
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
            **gpu_resources(),
        params:
            settings=lambda w: cell_settings(
                config, w.task, selected(w.task).model, selected(w.task).loss
            ),
            # Resume state (vocflow.resume), as for the grid's cells.
            state_dir="results/state/{task}/refit/seed{seed}",
            state_root="results/state",
        script:
            "../scripts/refit.py"
