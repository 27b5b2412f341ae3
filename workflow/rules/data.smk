# Stage 1: the data. Library: prunability.data


rule download_cifar10:
    """The official CIFAR-10 archive, verified against its MD5 (only when data.local_dir is unset)."""
    output:
        archive=CIFAR10_ARCHIVE,
    log:
        f"{LOGS}/download_cifar10.log",
    conda:
        "../../envs/torch.yaml"
    params:
        url=config["data"]["url"],
        md5=config["data"]["md5"],
    script:
        "../scripts/download_cifar10.py"


rule prepare_data:
    """The split tensors (uint8 images, labels, training statistics) every later job reads, and the training labels replaced by label noise."""
    input:
        unpack(data_inputs),
    output:
        split=f"{RESULTS}/data/split.pt",
        summary=f"{RESULTS}/data/summary.json",
        label_noise=f"{RESULTS}/data/label_noise.csv",
    log:
        f"{LOGS}/prepare_data.log",
    conda:
        "../../envs/torch.yaml"
    resources:
        # measured 2 s and 350-420 MB for digits and the CIFAR-10 subset
        mem_mb=job_mem_mb,
        runtime=lambda wildcards, attempt: attempt * 10,
    params:
        data={
            k: v
            for k, v in config["data"].items()
            if k not in ("url", "md5", "download_dir")
        },
    script:
        "../scripts/prepare_data.py"
