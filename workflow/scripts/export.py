"""Rule export: a finished study as results/<study>/export/<study>-<version>.tar.gz."""

import dataclasses
from pathlib import Path

from prunability.export import StudyFiles, export_study
from prunability.io import redirect_output

redirect_output(snakemake.log[0])
p = snakemake.params
inp = snakemake.input
# results/<study>, above its table; platform.json only where it is an input
files = dataclasses.replace(
    StudyFiles.of(Path(inp.table).parent), platform=Path(inp.platform) if "platform" in inp.keys() else None
)
export_study(snakemake.output.export, p.study, dict(p.config), p.cells, p.families, files, log=print)
