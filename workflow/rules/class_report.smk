# The original study's per-class classification table (vocflow.class_report): precision,
# recall, F1, support, ROC-AUC and AP per class of the selected cell's OOF predictions at the
# tuned thresholds.


rule class_report:
    input:
        cache=cache("train"),
        selection="results/classification/selected.yaml",
        oof=selected_files("oof.npz", "classification"),
        thresholds="results/classification/thresholds.yaml",
    output:
        "results/classification/class_report.csv",
    log:
        "results/logs/class_report.log",
    group:
        "post"  # seconds of CPU on the OOF files: with the rest of the post-processing
    conda:
        ENV
    resources:
        **cpu_resources(),
    script:
        "../scripts/class_report.py"
