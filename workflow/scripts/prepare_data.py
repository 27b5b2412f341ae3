"""Rule prepare_data: build the split file every later job reads."""

import pandas as pd

from prunability.data import build_split, describe, save_split
from prunability.io import redirect_output, save_csv, save_json

redirect_output(snakemake.log[0])
split = build_split(snakemake.params.data, archive=snakemake.input.get("archive"))
save_split(snakemake.output.split, split)
summary = describe(split)
save_json(snakemake.output.summary, summary)
noise = split["label_noise"]
save_csv(
    snakemake.output.label_noise,
    pd.DataFrame({"train_index": noise["indices"].numpy(), "original_label": noise["original"].numpy(),
                  "new_label": noise["new"].numpy()}),
)
print(f"{summary['source']}: {summary['n_train']} train / {summary['n_test']} test images of shape {summary['image_shape']}")
print(f"label noise: {len(noise['indices'])} training labels replaced (fraction {noise['fraction']}, seed {noise['seed']})")
