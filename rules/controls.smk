rule train_shared:
    """The shared-adapter control: one adapter trained on the union of every skill's training split."""
    input:
        spec=str(spec_path("train_shared")),
        datasets=expand(DATASET, skill=SKILLS),
        model=MODEL,
    output:
        adapter=directory(SHARED_ADAPTER),
        metrics=SHARED_METRICS,
        manifest=str(manifest_path("train_shared")),
    threads: MODEL_THREADS
    benchmark:
        benchmark_of("train_shared")
    resources:
        **resources_of("train_shared"),
        runtime=240,
    params:
        s2l=S2L,
        store=STORE,
    log:
        log_of("train_shared"),
    shell:
        "{params.s2l} train-shared --spec {input.spec} --datasets {input.datasets}"
        " --model {input.model} --out {output.adapter} --metrics {output.metrics} --manifest {output.manifest} {params.store}"
        " --threads {threads} --log {log}"


rule evaluate_controls:
    """The controls on the same prompts: another skill's adapter and the shared adapter."""
    input:
        spec=spec("evaluate_controls"),
        skill=PARSED_SKILL,
        dataset=DATASET,
        model=MODEL,
        report=EVAL_REPORT,
        shared=SHARED_ADAPTER,
        wrong=wrong_adapter,
    output:
        report=CONTROLS_REPORT,
        manifest=manifest("evaluate_controls"),
    threads: MODEL_THREADS
    benchmark:
        benchmark_of("evaluate_controls")
    resources:
        **resources_of("evaluate_controls"),
        runtime=60,
    params:
        s2l=S2L,
        store=STORE,
        wrong=lambda wildcards, input: f"--wrong-adapter {input.wrong}" if input.wrong else "",
    log:
        log_of("evaluate_controls"),
    shell:
        "{params.s2l} evaluate-controls --spec {input.spec} --skill {input.skill} --dataset {input.dataset}"
        " --model {input.model} --report {input.report} --shared-adapter {input.shared} {params.wrong}"
        " --out {output.report} --manifest {output.manifest} {params.store} --threads {threads} --log {log}"
