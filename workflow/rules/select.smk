# Selection: every cell's metrics -> leaderboard -> best cell per task (a checkpoint: which
# cell's checkpoints and OOF files the later stages read is only known once it has run).


rule leaderboard:
    input:
        [f for task in TASKS for f in cell_files(task, "metrics.csv", with_baseline=True)],
    output:
        "results/leaderboard.csv",
    log:
        "results/logs/leaderboard.log",
    conda:
        ENV
    params:
        monitors={task: config[task]["selection_metric"] for task in TASKS},
    script:
        "../scripts/leaderboard.py"


checkpoint select:
    input:
        "results/leaderboard.csv",
    output:
        "results/{task}/selected.yaml",
    log:
        "results/logs/select_{task}.log",
    conda:
        ENV
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
