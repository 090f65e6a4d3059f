rule train:
    """Rank-16 LoRA adapter (4-bit QLoRA on CUDA, fp32 LoRA on CPU) as a standard PEFT folder."""
    input:
        spec=spec("train"),
        skill=PARSED_SKILL,
        dataset=DATASET,
        model=MODEL,
    output:
        adapter=directory(ADAPTER),
        metrics=METRICS,
        manifest=manifest("train"),
    threads: MODEL_THREADS
    benchmark:
        benchmark_of("train")
    resources:
        **resources_of("train"),
        runtime=120,
    params:
        s2l=S2L,
        store=STORE,
    log:
        log_of("train"),
    shell:
        "{params.s2l} train --spec {input.spec} --skill {input.skill} --dataset {input.dataset}"
        " --model {input.model} --out {output.adapter} --metrics {output.metrics} --manifest {output.manifest} {params.store}"
        " --threads {threads} --log {log}"
