rule merge:
    """The base model with the skill's adapter merged into its weights (export.merged: true). Not
    kept in the store: each is the size of the base model, and merging takes seconds."""
    input:
        spec=spec("merge"),
        model="build/models/base",
        adapter="build/adapters/{skill}",
    output:
        merged=directory("build/merged/{skill}"),
        manifest=manifest("merge"),
    threads: MODEL_THREADS
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "{S2L} merge --spec {input.spec} --model {input.model} --adapter {input.adapter} --out {output.merged}"
        " --manifest {output.manifest} --threads {threads}"
