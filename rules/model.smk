rule prepare_model:
    """The configured base model as a safetensors folder (GGUF is de-quantized once here)."""
    input:
        spec=str(spec_path("prepare_model")),
    output:
        model=directory("build/models/base"),
        manifest=str(manifest_path("prepare_model")),
    threads: MODEL_THREADS
    benchmark:
        "build/benchmarks/prepare_model.tsv"
    resources:
        mem_mb=INFERENCE_RESOURCES["mem_mb"],
        runtime=20,
    params:
        s2l=S2L,
    log:
        "build/logs/prepare_model.log",
    shell:
        "{params.s2l} prepare-model --spec {input.spec} --out {output.model} --manifest {output.manifest} --threads {threads} --log {log}"
