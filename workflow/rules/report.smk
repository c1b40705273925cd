# Report: the standalone results/report/index.html (figures embedded; the PNGs and an editable
# discussion.md beside it) and captions for `snakemake --report results/report.html`.
from vocflow.report.sources import optional_inputs

REPORT = config.get("report") or {}


report: "../report/workflow.rst"


# Every file the report may read. Optional stages (post-processing, attacks) may not exist: the
# report renders what it finds at run time and says "not run" for the rest.
REPORT_PATHS = {
    "leaderboard": "results/leaderboard.csv",
    "metrics": [f for task in TASKS for f in cell_files(task, "metrics.csv", with_baseline=True)],
    "selections": {task: f"results/{task}/selected.yaml" for task in TASKS},
    "train_cache": "results/data/train",
    "test_cache": "results/data/test",
    "folds": "results/data/folds.csv",
    "score": "results/score.yaml",
    "benchmarks": "results/benchmarks",
    "rulegraph": "results/report/rulegraph.dot",
    "dag": "results/report/dag.dot",
    "thresholds": {task: f"results/{task}/thresholds.yaml" for task in TASKS},
    "threshold_curves": {task: f"results/{task}/threshold_curves.csv" for task in TASKS},
    "crf": "results/segmentation/crf.yaml",
    "crf_panels": "results/segmentation/crf_panels",
    "ablation": "results/ablation.csv",
    "class_report": "results/classification/class_report.csv",
    "attacks_summary": "results/attacks/summary.csv",
    "attacks_dir": "results/attacks",
    "repo": workflow.basedir,
}
OPTIONAL_FILES = {
    "post": [
        *REPORT_PATHS["thresholds"].values(),
        *REPORT_PATHS["threshold_curves"].values(),
        REPORT_PATHS["crf"],
        REPORT_PATHS["crf_panels"],
        REPORT_PATHS["ablation"],
        REPORT_PATHS["class_report"],
    ],
    "attacks": [REPORT_PATHS["attacks_summary"]],
}


rule rulegraph:
    output:
        rulegraph=REPORT_PATHS["rulegraph"],
        dag=REPORT_PATHS["dag"],
    log:
        "results/logs/rulegraph.log",
    localrule: True
    conda:
        ENV
    params:
        snakefile=workflow.main_snakefile,
        workdir=".",
        enabled=REPORT.get("rulegraph", True),
        config=config,  # a new config may add or drop stages: redraw
    script:
        "../scripts/report_rulegraph.py"


rule report:
    input:
        # Evaluated when the DAG is built, i.e. after every rule file has been read.
        unpack(lambda w: optional_inputs(config, OPTIONAL_FILES, workflow.rules)),
        leaderboard=report(
            REPORT_PATHS["leaderboard"],
            caption="../report/leaderboard.rst",
            category="Leaderboard",
        ),
        selections=[
            report(f, caption="../report/selected.rst", category="Leaderboard")
            for f in REPORT_PATHS["selections"].values()
        ],
        score=(
            [
                report(
                    REPORT_PATHS["score"],
                    caption="../report/score.rst",
                    category="Test submission",
                )
            ]
            if test_labelled()
            else []
        ),
        metrics=[f for task in TASKS for f in cell_files(task, "metrics.csv")],
        oof=selected_files("oof.npz", *TASKS),
        cache=cache("train") + cache("test"),
        folds=REPORT_PATHS["folds"],
        rulegraph=REPORT_PATHS["rulegraph"],
        dag=REPORT_PATHS["dag"],
    output:
        html=report(
            "results/report/index.html", caption="../report/index.rst", category="Study report"
        ),
        figures=report(
            directory("results/report/figures"),
            patterns=["{section}/{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
            subcategory="{section}",
            labels={"section": "{section}", "figure": "{name}"},
        ),
        discussion=report(
            "results/report/discussion.md",
            caption="../report/discussion.rst",
            category="Study report",
        ),
    log:
        "results/logs/report.log",
    # Reads the small result files and draws figures (~10-40 s): a local rule, so the report
    # is not one more queued job at the end of the chain.
    localrule: True
    conda:
        ENV
    params:
        paths=REPORT_PATHS,
        options={k: v for k, v in REPORT.items() if k != "rulegraph"},
        config=config,
    script:
        "../scripts/report.py"
