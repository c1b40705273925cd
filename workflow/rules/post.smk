# Post-processing: test prediction with the selected cell's fold ensemble (+ flip TTA).


rule predict:
    input:
        cache=cache("test"),
        selection="results/{task}/selected.yaml",
        checkpoints=lambda w: cell_files(w.task, "best.pt"),
    output:
        "results/{task}/test_predictions.npz",
    conda:
        ENV
    log:
        "results/logs/predict_{task}.log",
    params:
        tta=config["predict"]["tta"],
        batch_size=config["predict"]["batch_size"],
    threads: config["resources"]["train_threads"]
    benchmark:
        "results/benchmarks/predict_{task}.tsv"
    script:
        "../scripts/predict.py"
