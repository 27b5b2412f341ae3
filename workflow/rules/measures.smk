# Stage 3: the measures, one rule per family (measure_pruning, measure_norms, ...),
# each a job per group of cells (resources.axes_within_job) and one JSON per family
# and model. Library: prunability.measures (one module per family). Each rule's params
# hold only its family's settings, so changing one reruns that family's jobs only.


for family in config["measures"]["families"]:

    rule:
        name:
            f"measure_{family}"
        input:
            **family_input_files(family),
            split=rules.prepare_data.output.split,
            init=rules.train_model.output.init,
            final=rules.train_model.output.final,
            summary=rules.train_model.output.summary,
        output:
            job_files(f"{MEASURES}/{{cell}}/{family}.json"),
        log:
            f"{LOGS}/measure_{family}/{JOB}.log",
        benchmark:
            f"{BENCHMARKS}/measure_{family}/{JOB}.tsv"
        # On a cluster, a family that declares a group (the quick ones) goes with the
        # training job as one cluster job (ignored when run locally).
        group:
            FAMILY_SPECS[family]["cluster_group"]
        conda:
            "../../envs/torch.yaml"
        threads: 1
        resources:
            gpu=config["resources"]["gpus_per_job"],
            mem_mb=job_mem_mb,
            runtime=job_runtime(FAMILY_SPECS[family]["cost"]),
        params:
            family=family,
            settings=family_settings(family),
            model=config["model"],
            device=config["device"],
            numerics={
                "deterministic": config["train"]["deterministic"],
                "fp32_precision": config["measures"]["fp32_precision"],
            },
            kept=kept_measure_records,
        script:
            "../scripts/measure.py"
