# vocflow: a PASCAL VOC classification + segmentation study as a Snakemake workflow.
# This file is a table of contents; each stage lives in workflow/rules/, logic in src/vocflow/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"  # config checks -> grid, paths, resources, final targets
include: "workflow/rules/data.smk"  # raw data -> validated caches -> folds
include: "workflow/rules/train.smk"  # weights; model × loss × fold cells; baseline
include: "workflow/rules/select.smk"  # leaderboard -> selected cell per task
include: "workflow/rules/refit.smk"  # the selected recipe on every training image
include: "workflow/rules/tune.smk"  # OOF thresholds, DenseCRF search
include: "workflow/rules/class_report.smk"  # per-class precision/recall/F1/ROC-AUC table
include: "workflow/rules/predict.smk"  # test prediction through the post-processing
include: "workflow/rules/ablation.smk"  # what each post-processing step adds, on OOF
include: "workflow/rules/submission.smk"  # Kaggle submission and scores
include: "workflow/rules/attack.smk"  # adversarial attacks on the selected models
include: "workflow/rules/report.smk"  # the study report


rule all:
    default_target: True
    input:
        final_targets(),
