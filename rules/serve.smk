rule prepare_serving:
    """Every skill's adapter for llama.cpp's OpenAI-compatible server (s2l serve build/serve): each as
    a GGUF LoRA, the server's config file, and the descriptions model 'auto' is routed by. Not kept
    in the store: converting takes seconds."""
    input:
        spec=str(spec_path("prepare_serving")),
        skills=expand(PARSED_SKILL, skill=SKILLS),
        adapters=expand(ADAPTER, skill=SKILLS),
        model=MODEL,
    output:
        serve=directory(SERVING),
        manifest=str(manifest_path("prepare_serving")),
    threads: 1
    resources:
        **resources_of("prepare_serving"),
        runtime=10,
    params:
        s2l=S2L,
    log:
        log_of("prepare_serving"),
    shell:
        "{params.s2l} prepare-serving --spec {input.spec} --skills {input.skills} --adapters {input.adapters}"
        " --model {input.model} --out {output.serve} --manifest {output.manifest} --log {log}"
