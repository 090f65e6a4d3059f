rule prepare_model:
    """The configured base model as a safetensors folder (GGUF is de-quantized once here)."""
    input:
        spec=str(spec_path("prepare_model")),
    output:
        model=directory(MODEL),
        manifest=str(manifest_path("prepare_model")),
    threads: MODEL_THREADS
    benchmark:
        benchmark_of("prepare_model")
    resources:
        **resources_of("prepare_model"),
        runtime=20,
    params:
        s2l=S2L,
    log:
        log_of("prepare_model"),
    shell:
        "{params.s2l} prepare-model --spec {input.spec} --out {output.model} --manifest {output.manifest} --threads {threads} --log {log}"
