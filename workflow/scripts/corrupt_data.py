"""Rule corrupt_data: the corrupted test sets of the prune_potential family, once per study."""

import time

from prunability.corruptions import PIXEL_MAX, corrupt_all, save_corruptions
from prunability.data import load_split
from prunability.io import redirect_output

redirect_output(snakemake.log[0])
p = snakemake.params
x_test = load_split(snakemake.input.split)["x_test"].numpy()
pixel_max = PIXEL_MAX[p.source]
print(f"{len(x_test)} test images of shape {list(x_test.shape[1:])}, pixel values 0..{pixel_max}; "
      f"table {p.table}, seed {p.seed}; {len(p.corruptions)} corruptions x severities {p.severities}")
started = time.perf_counter()
images = corrupt_all(x_test, p.corruptions, p.severities, p.seed, p.table, pixel_max)
save_corruptions(snakemake.output.corruptions, images, p.corruptions, p.severities, p.seed, p.table, pixel_max)
print(f"{images.shape[0] * images.shape[1]} sets in {time.perf_counter() - started:.1f} s -> {snakemake.output.corruptions}")
