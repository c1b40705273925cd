"""vocflow: PASCAL VOC classification + segmentation study as a Snakemake workflow."""
