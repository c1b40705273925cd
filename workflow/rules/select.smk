# Selection: every cell's metrics -> leaderboard -> best cell per task.


rule leaderboard:
    input:
        [f for task in TASKS for f in cell_files(task, "metrics.csv", with_baseline=True)],
    output:
        "results/leaderboard.csv",
    conda:
        ENV
    log:
        "results/logs/leaderboard.log",
    params:
        monitors={task: config[task]["selection_metric"] for task in TASKS},
    script:
        "../scripts/leaderboard.py"


rule select:
    input:
        "results/leaderboard.csv",
    output:
        "results/{task}/selected.yaml",
    conda:
        ENV
    log:
        "results/logs/select_{task}.log",
    params:
        cells=lambda w: {
            f"{m}/{l}": {
                "checkpoints": [f"results/{w.task}/{m}/{l}/fold{k}/best.pt" for k in FOLDS],
                "oof": [f"results/{w.task}/{m}/{l}/fold{k}/oof.npz" for k in FOLDS],
            }
            for m, l in cells(w.task)
        },
    script:
        "../scripts/select.py"
