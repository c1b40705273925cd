# Selection: every cell's metrics -> leaderboard -> best cell per task, whose fold files select
# links under results/{task}/selected/ (so every later job is known before selection runs).
# Both rules take seconds and read small csv files: local rules, no SLURM job (and no queue wait
# between the last training job and the post-processing).


rule leaderboard:
    input:
        [f for task in TASKS for f in cell_files(task, "metrics.csv", with_baseline=True)],
    output:
        "results/leaderboard.csv",
    log:
        "results/logs/leaderboard.log",
    localrule: True
    conda:
        ENV
    params:
        monitors={task: config[task]["selection_metric"] for task in TASKS},
        # Partial mode: the unfinished cells' folds, listed as failed rows ([] otherwise).
        missing=missing_cells(),
    script:
        "../scripts/leaderboard.py"


rule select:
    input:
        leaderboard="results/leaderboard.csv",
        # Every cell's fold files, although only the selected cell's are linked: Snakemake only
        # re-runs a job for outputs someone asks for, and a fold killed after writing its
        # metrics.csv must be trained again before anything is selected from it.
        cells=lambda w: cell_files(w.task, "best.pt") + cell_files(w.task, "oof.npz"),
    output:
        selection="results/{task}/selected.yaml",
        checkpoints=selected_files("best.pt"),
        oof=selected_files("oof.npz"),
        metrics=selected_files("metrics.csv"),
    log:
        "results/logs/select_{task}.log",
    localrule: True
    conda:
        ENV
    params:
        cells=lambda w: {
            f"{m}/{l}": {
                name: [f"{cell_dir(w.task, m, l, k)}/{file}" for k in FOLDS]
                for name, file in [
                    ("checkpoints", "best.pt"),
                    ("oof", "oof.npz"),
                    ("metrics", "metrics.csv"),
                ]
            }
            for m, l in cells(w.task)
        },
        partial=PARTIAL,
    script:
        "../scripts/select.py"
