# Report: a standalone results/report/index.html (figures embedded).


rule report:
    input:
        leaderboard="results/leaderboard.csv",
        metrics=[f for task in TASKS for f in cell_files(task, "metrics.csv")],
        selections=expand("results/{task}/selected.yaml", task=TASKS),
        score=["results/score.yaml"] if test_labelled() else [],
    output:
        "results/report/index.html",
    conda:
        ENV
    log:
        "results/logs/report.log",
    script:
        "../scripts/report.py"
