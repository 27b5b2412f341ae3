"""Rule report_front: the report's first page, the study's answer above the description of what was run."""

from pathlib import Path

import pandas as pd

from prunability.io import redirect_output
from prunability.results_page import answer_rst

redirect_output(snakemake.log[0])
claims = pd.read_csv(snakemake.input.claims)
description = Path(snakemake.input.description).read_text()
Path(snakemake.output[0]).write_text(answer_rst(claims, snakemake.params.level, snakemake.params.study) + description)
print(f"wrote {snakemake.output[0]}: {len(claims)} claims")
