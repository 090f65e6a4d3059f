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
        mem_mb=4000,
        runtime=20,
    shell:
        "{S2L} prepare-model --spec {input.spec} --out {output.model} --manifest {output.manifest} --threads {threads}"
