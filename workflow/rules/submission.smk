# Submission: the Kaggle csv (ours and the random baseline's) and, with labels, their scores;
# the OOF sanity line scores the same pipeline's OOF predictions through the submission format.
# Seconds of CPU each (run-length encoding, scoring): in the "post" group (predict.smk).


rule submission:
    input:
        cache=cache("test"),
        classification="results/classification/test_predictions.npz",
        segmentation="results/segmentation/test_predictions.npz",
        # Read for their partial-grid notes only (the csv format has no room for them).
        selections=[f"results/{t}/selected.yaml" for t in TASKS],
    output:
        "results/submission.csv",
    log:
        "results/logs/submission.log",
    group:
        "post"
    conda:
        ENV
    resources:
        **cpu_resources(),
    script:
        "../scripts/submission.py"


rule random_submission:
    input:
        train=cache("train"),
        test=cache("test"),
    output:
        "results/random_submission.csv",
    log:
        "results/logs/random_submission.log",
    group:
        "post"
    conda:
        ENV
    resources:
        **cpu_resources(),
    params:
        seed=config["seed"],
    script:
        "../scripts/random_submission.py"


rule score:
    input:
        cache=cache("test"),
        ours="results/submission.csv",
        random="results/random_submission.csv",
        selections=[f"results/{t}/selected.yaml" for t in TASKS],
    output:
        "results/score.yaml",
    log:
        "results/logs/score.log",
    group:
        "post"
    conda:
        ENV
    resources:
        **cpu_resources(),
    script:
        "../scripts/score.py"


rule oof_score:
    input:
        cache=cache("train"),
        submission="results/oof_submission.csv",
    output:
        "results/oof_score.yaml",
    log:
        "results/logs/oof_score.log",
    group:
        "post"
    conda:
        ENV
    resources:
        **cpu_resources(),
    script:
        "../scripts/oof_score.py"
