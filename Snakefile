# vocflow: a PASCAL VOC classification + segmentation study as a Snakemake workflow.
# This file is a table of contents; each stage lives in workflow/rules/, logic in src/vocflow/.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/select.smk"
include: "workflow/rules/post.smk"
include: "workflow/rules/attack.smk"
include: "workflow/rules/submit.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        final_targets(),
    default_target: True
