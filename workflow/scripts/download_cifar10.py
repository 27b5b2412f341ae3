"""Rule download_cifar10: fetch the official archive and verify its MD5."""

from prunability.data import download_cifar10
from prunability.io import redirect_output

redirect_output(snakemake.log[0])
download_cifar10(snakemake.params.url, snakemake.output.archive, snakemake.params.md5)
