"""Rule prepare_data: build the split file every later job reads."""

from prunability.data import build_split, describe, save_split
from prunability.io import redirect_output, save_json

redirect_output(snakemake.log[0])
split = build_split(snakemake.params.data, archive=snakemake.input.get("archive"))
save_split(snakemake.output.split, split)
summary = describe(split)
save_json(snakemake.output.summary, summary)
print(f"{summary['source']}: {summary['n_train']} train / {summary['n_test']} test images of shape {summary['image_shape']}")
